"""PostgreSQL's migration lock: a session-level advisory lock, scoped to the
database, keyed by a hash of the version table's name, polled so that the wait can be
bounded and reported."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storelayer.backend import Migrations
from storelayer.backend.concerns import (
    POLL_SECONDS,
    WAITING,
    finish_transaction,
    lock_key,
    release_lock,
    timed_out,
)


class PostgreSQLMigrations(Migrations):
    """A session-level advisory lock, polled so that the wait can be bounded and told."""

    @contextmanager
    def lock(
        self, connection: Connection, name: str, timeout: float, report: Callable[[str], None]
    ) -> Iterator[None]:
        params = {"key": lock_key(name)}

        def attempt() -> bool:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), params).scalar()
            finish_transaction(connection)
            return bool(taken)

        if not attempt():
            report(WAITING)
            deadline = time.monotonic() + timeout
            while not attempt():
                if time.monotonic() >= deadline:
                    raise timed_out(name, timeout)
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            release_lock(connection, "SELECT pg_advisory_unlock(:key)", params)

"""PostgreSQL's migration lock: a session-level advisory lock, scoped to the
database, keyed by a hash of the version table's name, polled so that the wait can be
bounded and reported. Behind a pooler in transaction mode a session lock would stay with
the server connection when it changes hands: there the lock is transaction-scoped
(``pg_advisory_xact_lock``), and the whole run is that one transaction."""

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
from storelayer_postgresql.pooler import is_pooled_per_transaction

Report = Callable[[str], None]


class PostgreSQLMigrations(Migrations):
    """A session-level advisory lock, polled so that the wait can be bounded and told."""

    @contextmanager
    def lock(
        self, connection: Connection, name: str, timeout: float, report: Callable[[str], None]
    ) -> Iterator[None]:
        if is_pooled_per_transaction(connection):
            with transaction_lock(connection, name, timeout, report):
                yield
            return
        params = {"key": lock_key(name)}

        def attempt() -> bool:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), params).scalar()
            finish_transaction(connection)
            return bool(taken)

        wait_for(attempt, name, timeout, report)
        try:
            yield
        finally:
            release_lock(connection, "SELECT pg_advisory_unlock(:key)", params)


def wait_for(attempt: Callable[[], bool], name: str, timeout: float, report: Report) -> None:
    """Call ``attempt`` until it takes the lock, for at most ``timeout`` seconds."""
    if attempt():
        return
    report(WAITING)
    deadline = time.monotonic() + timeout
    while not attempt():
        if time.monotonic() >= deadline:
            raise timed_out(name, timeout)
        time.sleep(POLL_SECONDS)


@contextmanager
def transaction_lock(
    connection: Connection, name: str, timeout: float, report: Report
) -> Iterator[None]:
    """The lock as the first statement of one transaction around the block, committed
    when the block ends (released with the COMMIT), rolled back when it fails."""
    if connection.in_transaction():
        finish_transaction(connection)
    statement, params = text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": lock_key(name)}
    with connection.begin():
        wait_for(
            lambda: bool(connection.execute(statement, params).scalar()), name, timeout, report
        )
        yield

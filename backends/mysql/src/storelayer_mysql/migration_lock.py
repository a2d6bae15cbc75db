"""MySQL/MariaDB's migration lock: a named user lock (``GET_LOCK``) whose name
includes the database (user locks are server-wide); it survives commits. On a Galera
node, where ``GET_LOCK`` is local to the node, a lock row instead (``galera_lock``)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storelayer.backend import Migrations
from storelayer.backend.concerns import WAITING, finish_transaction, release_lock, timed_out
from storelayer_mysql.galera import is_galera
from storelayer_mysql.galera_lock import galera_migration_lock


def mysql_lock_name(connection: Connection, name: str) -> str:
    """A user-lock name unique to this database and version table (at most 64 chars)."""
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
    finish_transaction(connection)
    digest = hashlib.sha256(f"{database}:{name}".encode()).hexdigest()[:40]
    return f"storelayer_migrate_{digest}"


class MySQLMigrations(Migrations):
    """``GET_LOCK``: held by the session until ``RELEASE_LOCK``, whatever commits."""

    @contextmanager
    def lock(
        self, connection: Connection, name: str, timeout: float, report: Callable[[str], None]
    ) -> Iterator[None]:
        lock_name = mysql_lock_name(connection, name)
        if is_galera(connection.connection.dbapi_connection):
            with galera_migration_lock(connection, lock_name, name, timeout, report):
                yield
            return
        params: dict[str, Any] = {"name": lock_name, "timeout": 0}
        statement = text("SELECT GET_LOCK(:name, :timeout)")
        taken = connection.execute(statement, params).scalar()
        if taken != 1:
            report(WAITING)
            params["timeout"] = max(1, math.ceil(timeout))
            taken = connection.execute(statement, params).scalar()
        finish_transaction(connection)
        if taken != 1:
            raise timed_out(name, timeout)
        try:
            yield
        finally:
            release_lock(connection, "SELECT RELEASE_LOCK(:name)", {"name": params["name"]})

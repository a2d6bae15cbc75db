"""Database-wide locks that serialize migration runs.

Two processes that run ``storelayer migrate upgrade`` at the same moment must not both
apply a migration: the first takes the lock and migrates; the second waits, then reads
the version table and finds nothing to do. The lock is taken before Alembic reads the
version table and released after the last migration is committed.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``), scoped to the
  database, keyed by a hash of the version table's name.
* MySQL/MariaDB: a named user lock (``GET_LOCK``), whose name includes the database
  (user locks are server-wide).
* SQLite: one write transaction around the whole run (``BEGIN IMMEDIATE``, or
  ``BEGIN EXCLUSIVE`` on an engine that does not begin transactions itself), with
  foreign keys off for Alembic's batch table rebuilds and checked before the commit.

Each backend plugin supplies its strategy as ``Backend.migration_lock(connection, name,
timeout, report)``; this module holds what they share and the entry point.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc, text
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from storelayer.backend import Backend

from storelayer.migrations.errors import MigrationLockTimeout

logger = logging.getLogger("storelayer.migrations")

Report = Callable[[str], None]
LockStrategy = Callable[[Connection, str, float, Report], AbstractContextManager[None]]

#: Seconds a migrator waits for another one to finish.
DEFAULT_LOCK_TIMEOUT = 600.0
#: Seconds between two attempts to take a lock that cannot be waited on natively.
POLL_SECONDS = 0.2
WAITING = "waiting for the migration lock: another process is migrating this database"


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"storelayer-migrate:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def timed_out(name: str, timeout: float) -> MigrationLockTimeout:
    return MigrationLockTimeout(
        f"gave up after {timeout:g} s waiting for the migration lock {name!r}: another "
        "process is still migrating this database (or died holding a lock); try again later"
    )


def finish_transaction(connection: Connection) -> None:
    """End whatever transaction the lock statement began, keeping session locks."""
    if connection.in_transaction():
        connection.commit()


def release_lock(connection: Connection, statement: str, params: dict[str, Any]) -> None:
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text(statement), params)
        finish_transaction(connection)
    except exc.SQLAlchemyError as error:  # a lost connection has released the lock
        logger.warning("could not release the migration lock: %s", error)


@contextmanager
def no_lock(connection: Connection, name: str, timeout: float, report: Report) -> Iterator[None]:
    """For a database without a known lock: run one migrator at a time yourself."""
    logger.warning(
        "no migration lock for dialect %r: do not run two migrations at once",
        connection.dialect.name,
    )
    yield


def migration_lock(
    connection: Connection,
    *,
    name: str = "alembic_version",
    backend: Backend | None = None,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    report: Report | None = None,
) -> AbstractContextManager[None]:
    """Hold the database's migration lock named ``name`` (the version table) for the
    block, waiting at most ``timeout`` seconds; ``report`` is told when it has to wait.

    Start outside a transaction; PostgreSQL and MySQL locks survive commits, the SQLite
    lock *is* the block's transaction (committed when the block ends)."""
    if backend is None:
        from storelayer.plugins import get_plugin_manager

        backend = get_plugin_manager().resolve(connection.engine.url.drivername)
    return backend.migration_lock(connection, name, timeout, report or logger.info)

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

The strategies are chosen by ``connection.dialect.name`` for now; they belong in the
backend plugins as ``Backend.migration_lock(connection, name, timeout, report)``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import exc, text
from sqlalchemy.engine import Connection

from storelayer.migrations.errors import MigrationError, MigrationLockTimeout

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


def _timed_out(name: str, timeout: float) -> MigrationLockTimeout:
    return MigrationLockTimeout(
        f"gave up after {timeout:g} s waiting for the migration lock {name!r}: another "
        "process is still migrating this database (or died holding a lock); try again later"
    )


def _finish(connection: Connection) -> None:
    """End whatever transaction the lock statement began, keeping session locks."""
    if connection.in_transaction():
        connection.commit()


def _release(connection: Connection, statement: str, params: dict[str, Any]) -> None:
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text(statement), params)
        _finish(connection)
    except exc.SQLAlchemyError as error:  # a lost connection has released the lock
        logger.warning("could not release the migration lock: %s", error)


@contextmanager
def postgresql_lock(
    connection: Connection, name: str, timeout: float, report: Report
) -> Iterator[None]:
    """A session-level advisory lock, polled so that the wait can be bounded and told."""
    params = {"key": lock_key(name)}

    def attempt() -> bool:
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), params).scalar()
        _finish(connection)
        return bool(taken)

    if not attempt():
        report(WAITING)
        deadline = time.monotonic() + timeout
        while not attempt():
            if time.monotonic() >= deadline:
                raise _timed_out(name, timeout)
            time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        _release(connection, "SELECT pg_advisory_unlock(:key)", params)


def mysql_lock_name(connection: Connection, name: str) -> str:
    """A user-lock name unique to this database and version table (at most 64 chars)."""
    database = connection.exec_driver_sql("SELECT DATABASE()").scalar() or ""
    _finish(connection)
    digest = hashlib.sha256(f"{database}:{name}".encode()).hexdigest()[:40]
    return f"storelayer_migrate_{digest}"


@contextmanager
def mysql_lock(connection: Connection, name: str, timeout: float, report: Report) -> Iterator[None]:
    """``GET_LOCK``: held by the session until ``RELEASE_LOCK``, whatever commits."""
    params: dict[str, Any] = {"name": mysql_lock_name(connection, name), "timeout": 0}
    statement = text("SELECT GET_LOCK(:name, :timeout)")
    taken = connection.execute(statement, params).scalar()
    if taken != 1:
        report(WAITING)
        params["timeout"] = max(1, math.ceil(timeout))
        taken = connection.execute(statement, params).scalar()
    _finish(connection)
    if taken != 1:
        raise _timed_out(name, timeout)
    try:
        yield
    finally:
        _release(connection, "SELECT RELEASE_LOCK(:name)", {"name": params["name"]})


def _sqlite_pragma(raw: Any, name: str) -> Any:
    return raw.execute(f"PRAGMA {name}").fetchone()[0]


def _sqlite_write_lock_free(raw: Any) -> bool:
    """Whether no other connection holds the write lock right now (does not keep it)."""
    raw.execute("PRAGMA busy_timeout=0")
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    raw.execute("ROLLBACK")
    return True


def check_foreign_keys(connection: Connection) -> None:
    """Raise when rows break a foreign key (SQLite checks none while they are off)."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        where = ", ".join(f"{row[0]} rowid {row[1]} -> {row[2]}" for row in broken[:10])
        raise MigrationError(
            f"the migration left {len(broken)} row(s) that break foreign keys ({where}); "
            "it was rolled back"
        )


@contextmanager
def sqlite_lock(
    connection: Connection, name: str, timeout: float, report: Report
) -> Iterator[None]:
    """The database's write lock, held by one transaction around the whole run."""
    if connection.in_transaction():
        raise MigrationError("a SQLite migration must start outside a transaction")
    raw: Any = connection.connection.driver_connection
    foreign_keys, busy = _sqlite_pragma(raw, "foreign_keys"), _sqlite_pragma(raw, "busy_timeout")
    # Batch mode rebuilds a table by copy, drop and rename: with foreign keys on, the
    # drop would delete (or cascade to) the rows that reference it.
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        if not _sqlite_write_lock_free(raw):
            report(WAITING)
        raw.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        with connection.begin():  # storelayer's SQLite backend: BEGIN IMMEDIATE
            if not raw.in_transaction:
                raw.execute("BEGIN EXCLUSIVE")
            yield
            check_foreign_keys(connection)
    except (sqlite3.OperationalError, exc.OperationalError) as error:
        if "database is locked" in str(error):
            raise _timed_out(name, timeout) from error
        raise
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(busy)}")
        raw.execute(f"PRAGMA foreign_keys={int(foreign_keys)}")


@contextmanager
def no_lock(connection: Connection, name: str, timeout: float, report: Report) -> Iterator[None]:
    """For a database without a known lock: run one migrator at a time yourself."""
    logger.warning(
        "no migration lock for dialect %r: do not run two migrations at once",
        connection.dialect.name,
    )
    yield


#: Lock strategies by SQLAlchemy dialect name.
STRATEGIES: dict[str, LockStrategy] = {
    "postgresql": postgresql_lock,
    "mysql": mysql_lock,
    "mariadb": mysql_lock,
    "sqlite": sqlite_lock,
}


def migration_lock(
    connection: Connection,
    *,
    name: str = "alembic_version",
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    report: Report | None = None,
) -> AbstractContextManager[None]:
    """Hold the database's migration lock named ``name`` (the version table) for the
    block, waiting at most ``timeout`` seconds; ``report`` is told when it has to wait.

    Start outside a transaction; PostgreSQL and MySQL locks survive commits, the SQLite
    lock *is* the block's transaction (committed when the block ends)."""
    strategy = STRATEGIES.get(connection.dialect.name, no_lock)
    return strategy(connection, name, timeout, report or logger.info)

"""SQLite tuned for an application: WAL, enforced foreign keys, and write transactions
that take the write lock up front and wait for it. Reasons: docs/backends/sqlite.md."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import event, exc, pool
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import URL, AdaptedConnection

from storelayer import Backend, Features
from storelayer.backend import (
    AUTOCOMMIT_OPTION,
    BackupStrategy,
    Errors,
    Operations,
    Provisioning,
    on_conflict_upsert,
)
from storelayer_sqlite import backup as backup_strategy
from storelayer_sqlite import types
from storelayer_sqlite.client import SQLiteClient
from storelayer_sqlite.migration_lock import SQLiteMigrations
from storelayer_sqlite.units import begin_as_asked, plan_begin

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from storelayer import Settings

#: Seconds a connection waits for a lock before SQLite reports "database is locked".
BUSY_TIMEOUT_SECONDS = 30.0
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (constants only in Python 3.11+)


def is_memory(url: URL) -> bool:
    """Whether ``url`` names a private in-memory database."""
    return url.database in (None, "", ":memory:") or bool(url.query.get("mode") == "memory")


def commit_if_open(connection: Any) -> None:
    """The dialect's ``do_commit``: commit only where a transaction is open (an
    autocommit read has none), sparing aiosqlite a trip to its thread for nothing."""
    raw = getattr(connection, "dbapi_connection", connection)
    driver = raw.driver_connection if isinstance(raw, AdaptedConnection) else raw
    if driver.in_transaction:
        connection.commit()


class SQLiteErrors(Errors):
    """Busy and locked are transient; a file that cannot be opened is not."""

    def is_transient(self, exc_: BaseException) -> bool:
        if super().is_transient(exc_):
            return True
        orig = getattr(exc_, "orig", exc_)
        if not isinstance(orig, sqlite3.OperationalError):
            return False
        code = getattr(orig, "sqlite_errorcode", None)
        return code in _BUSY_CODES or "locked" in str(orig) or "busy" in str(orig)

    def is_connection_refused_for_good(self, exc_: BaseException) -> bool:
        return True  # a file that cannot be opened will not open on retry

    def is_read_only(self, exc_: BaseException) -> bool:
        # SQLITE_READONLY: a read-only file or mode=ro, or PRAGMA query_only.
        return "readonly database" in str(getattr(exc_, "orig", exc_))

    def constraint_name(self, error: exc.IntegrityError) -> str | None:
        # SQLite names the columns, not the constraint: "UNIQUE constraint failed: t.c".
        message = str(error.orig)
        return message.split(":", 1)[1].strip() if ":" in message else None


class SQLiteOperations(Operations):
    """``INSERT ... ON CONFLICT``, and the library's version."""

    # A read-write unit takes the database's write lock when it begins (BEGIN
    # IMMEDIATE, see configure_engine): such units run one at a time, so each level is
    # serializable as it is, with nothing to switch (docs/backends/sqlite.md).
    isolation_levels: ClassVar[Mapping[str, str | None]] = dict.fromkeys(
        ("read_committed", "repeatable_read", "serializable")
    )
    upsert = staticmethod(partial(on_conflict_upsert, insert))
    multirow_values = True

    def server_version(self, connection: Connection) -> str:
        return sqlite3.sqlite_version


class SQLiteProvisioning(Provisioning):
    """A test database is a new file."""

    def embedded_test_url(self, directory: Path, name: str) -> URL:
        return URL.create("sqlite+pysqlite", database=str(directory / f"{name}.db"))


class SQLiteBackend(Backend):
    """The embedded default backend."""

    name = "sqlite"
    schemes = ("sqlite",)
    dialect = "sqlite"
    default_driver = "pysqlite"
    async_driver = "aiosqlite"
    install_hint = "storelayer-sqlite (installed with storelayer)"
    # The others as by default: row_locks by the write lock a write unit takes when it
    # begins, constraint_names by the columns SQLite names.
    features = Features(
        returning=True,
        upsert=True,
        transactional_ddl=True,
        batch_alter=True,
        server=False,
        backup_format="sqlite-online",
    )
    errors = SQLiteErrors()
    ops = SQLiteOperations()
    backups: ClassVar[BackupStrategy] = backup_strategy
    provisioning = SQLiteProvisioning()
    migrations = SQLiteMigrations()
    client = SQLiteClient()

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "check_same_thread": False,
            "timeout": BUSY_TIMEOUT_SECONDS,
            # The driver's own transaction handling begins DEFERRED and too late; turn it
            # off so configure_engine() can issue BEGIN IMMEDIATE itself.
            "isolation_level": None,
        }
        # A file cannot go away like a server: no pre-ping.
        options = {
            "poolclass": pool.QueuePool,
            "pool_pre_ping": False,
            "connect_args": connect_args,
        }
        if is_memory(url):
            # One connection holds the whole database: share it between threads, one
            # unit of work at a time, and never recycle it (that would drop the data).
            timeout = settings.pool_timeout or BUSY_TIMEOUT_SECONDS
            return {
                **options,
                "pool_size": 1,
                "max_overflow": 0,
                "pool_timeout": timeout,
                "pool_recycle": -1,
            }
        return {**options, "pool_size": 5, "max_overflow": 10, **settings.pool_overrides()}

    def on_connect(self, dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        finally:
            cursor.close()
        types.register_collation(dbapi_connection)

    def autocommit_read_options(self) -> dict[str, Any]:
        return {AUTOCOMMIT_OPTION: True}

    def configure_engine(self, engine: Engine) -> None:
        super().configure_engine(engine)  # SQLite keeps no offset: aware values as UTC
        types.adapt_engine(engine)  # exact decimals
        # How units begin, and PRAGMA query_only so that read_session() units cannot
        # write (units.py). The dialect's do_begin sends the BEGIN straight to the driver
        # (a full statement execution would cost as much as the read itself).
        event.listen(engine, "begin", plan_begin)
        engine.dialect.do_begin = begin_as_asked  # type: ignore[method-assign, assignment]
        engine.dialect.do_commit = commit_if_open  # type: ignore[method-assign, assignment]

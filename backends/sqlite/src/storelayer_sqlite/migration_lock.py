"""SQLite's migration lock: one write transaction around the whole run
(``BEGIN IMMEDIATE``, or ``BEGIN EXCLUSIVE`` on an engine that does not begin
transactions itself), with foreign keys off for Alembic's batch table rebuilds and
checked before the commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection

from storelayer.backend import Migrations
from storelayer.backend.concerns import WAITING, timed_out
from storelayer.errors import MigrationError
from storelayer_sqlite.units import writable


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


class SQLiteMigrations(Migrations):
    """The database's write lock, held by one transaction around the whole run."""

    @contextmanager
    def lock(
        self, connection: Connection, name: str, timeout: float, report: Callable[[str], None]
    ) -> Iterator[None]:
        if connection.in_transaction():
            raise MigrationError("a SQLite migration must start outside a transaction")
        writable(connection.connection)  # a read unit may have left it read-only
        raw: Any = connection.connection.driver_connection
        foreign_keys = _sqlite_pragma(raw, "foreign_keys")
        busy = _sqlite_pragma(raw, "busy_timeout")
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
                raise timed_out(name, timeout) from error
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(busy)}")
            raw.execute(f"PRAGMA foreign_keys={int(foreign_keys)}")

"""How a SQLite unit of work begins: ``BEGIN IMMEDIATE`` for a read-write unit,
``BEGIN DEFERRED`` for a ``read_session()``, none for an autocommit read, and
``PRAGMA query_only`` so that a read unit cannot write.

The read-only mode stays on a connection between units: it is switched (on for a read
unit, off for any other transaction) only when the connection is in the other mode,
and the switch goes out with the BEGIN, in one call into the driver. A run of reads
then sends no PRAGMA at all, and a unit that switches pays no extra trip to
aiosqlite's thread. Raw uses of a pooled connection that SQLAlchemy does not begin
(the backup API, the migration lock's probe) call :func:`writable` first."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.engine import AdaptedConnection

from storelayer.backend import AUTOCOMMIT_OPTION, READ_ONLY_OPTION, SELECTS_ONLY_OPTION

#: Pool record ``info`` key: the statements the next ``do_begin`` sends, and the mode
#: of ``PRAGMA query_only`` they leave the connection in (None: they leave it as it is).
_BEGIN_KEY = "storelayer.sqlite.begin"
#: Pool record ``info`` key: whether ``PRAGMA query_only`` is on (missing: off, as a
#: new connection is; None: unknown after a failed switch, so the next unit switches).
_QUERY_ONLY_KEY = "storelayer.sqlite.query_only"


def query_only_sql(on: bool) -> str:
    """The statement that refuses (or allows again) every write on a connection."""
    return f"PRAGMA query_only={'ON' if on else 'OFF'}"


def run_sql(connection: Any, *statements: str) -> None:
    """Run ``statements`` (no result) on a pooled connection or its DBAPI connection,
    straight on the driver: calls into sqlite3, or one trip to aiosqlite's thread
    where a cursor would take three per statement (open, execute, close)."""
    raw = getattr(connection, "dbapi_connection", connection)
    if not isinstance(raw, AdaptedConnection):
        for sql in statements:
            raw.execute(sql)
    elif len(statements) == 1 or raw.driver_connection.in_transaction:
        # executescript() would first COMMIT an open transaction: never inside one.
        for sql in statements:
            raw.run_async(partial(_execute, sql))
    else:
        raw.run_async(partial(_execute_script, ";".join(statements)))


async def _execute(sql: str, driver: Any) -> None:
    await driver.execute(sql)


async def _execute_script(script: str, driver: Any) -> None:
    await driver.executescript(script)


def plan_begin(conn: Any) -> None:
    """The engine's ``begin`` listener: choose what the dialect's ``do_begin``
    (:func:`begin_as_asked`) sends next. IMMEDIATE takes the write lock now and waits
    busy_timeout for it, so a read-then-write unit cannot lose an update or fail fast
    with "database is locked" when it later writes; read units stay DEFERRED and,
    under WAL, never block writers. ``read_session(autocommit=True)`` sends no BEGIN
    (the driver's isolation_level is None: each statement commits on its own).
    Connections that only run storelayer's SELECTs (``db.rows``) keep their mode."""
    options = conn.get_execution_options()
    read_only = bool(options.get(READ_ONLY_OPTION))
    statements = []
    mode = None
    info = conn.connection.info
    if not options.get(SELECTS_ONLY_OPTION) and info.get(_QUERY_ONLY_KEY, False) is not read_only:
        statements.append(query_only_sql(read_only))
        mode = read_only
    if not options.get(AUTOCOMMIT_OPTION):
        statements.append("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")
    info[_BEGIN_KEY] = (statements, mode)


def begin_as_asked(connection: Any) -> None:
    """The dialect's ``do_begin`` (``connection``: the pool's proxy): send what
    :func:`plan_begin` chose, the mode switch first, and record the mode once sent.
    SQLAlchemy wraps and reports its errors like any statement's."""
    statements, mode = connection.info.pop(_BEGIN_KEY, ((), None))
    if not statements:
        return
    if mode is None:
        run_sql(connection, *statements)
        return
    connection.info[_QUERY_ONLY_KEY] = None  # unknown until the switch went through
    run_sql(connection, *statements)
    connection.info[_QUERY_ONLY_KEY] = mode


def writable(pooled: Any) -> None:
    """Put a pooled connection (the pool's proxy) out of the read-only mode a read
    unit may have left it in, before a use of its DBAPI connection that SQLAlchemy
    does not begin."""
    if pooled.info.get(_QUERY_ONLY_KEY, False) is not False:
        pooled.info[_QUERY_ONLY_KEY] = None
        run_sql(pooled, query_only_sql(False))
        pooled.info[_QUERY_ONLY_KEY] = False

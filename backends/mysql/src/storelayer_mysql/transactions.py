"""What a read-write unit of work carries on MySQL/MariaDB: its isolation level, set per
transaction, and a commit marker that tells, after a connection lost during COMMIT,
whether the unit committed (docs/backends/mysql.md).

Isolation: ``SET TRANSACTION ISOLATION LEVEL ...`` right before the unit's first
statement, one round trip, applying to that transaction only (SQLAlchemy's per-connection
``isolation_level`` switches the pooled connection's level and switches it back on
return: four round trips, and a failed switch-back on a dead server costs the slot).

Commit markers (``storelayer.backend.commit_markers``): the table
``storelayer.commit_markers`` lives in a database of its own, so that an application's
schema, backups and ``storelayer copy`` never see it. Whether a unit wrote is noted from
its statements; after the connection is lost, a new connection reads the row with a
locking read, which waits for a transaction the server still has in hand to end."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import event, exc

from storelayer.backend.commit_markers import PRUNE_AFTER_SECONDS, CommitMarkers, register

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: Execution option of an engine view whose units run at that isolation level.
ISOLATION_OPTION = "storelayer_mysql_isolation"
#: The levels ``SET TRANSACTION ISOLATION LEVEL`` takes.
LEVELS = frozenset({"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"})
#: ``Connection.info`` key: whether the current transaction wrote.
WROTE_KEY = "storelayer.wrote"
#: Statements that write nothing (the first word, upper case); anything else counts as
#: a write, so that an unknown statement is never taken for a read.
READS = frozenset({"SELECT", "SHOW", "SET", "DESCRIBE", "DESC", "EXPLAIN", "HELP", "DO"})

MARKERS_DATABASE = "storelayer"
MARKERS_TABLE = f"{MARKERS_DATABASE}.commit_markers"
CREATE = (
    f"CREATE DATABASE IF NOT EXISTS {MARKERS_DATABASE} CHARACTER SET ascii",
    f"CREATE TABLE IF NOT EXISTS {MARKERS_TABLE} ("
    " id BINARY(16) NOT NULL PRIMARY KEY,"
    " seq BIGINT UNSIGNED NOT NULL,"
    " written_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP"
    ") ENGINE=InnoDB",
)
PROBE = f"SELECT 1 FROM {MARKERS_TABLE} WHERE id = ''"
PRUNE = (
    f"DELETE FROM {MARKERS_TABLE} WHERE written_at < NOW() - INTERVAL {PRUNE_AFTER_SECONDS} SECOND"
)
MARK = f"UPDATE {MARKERS_TABLE} SET seq = %s WHERE id = %s"
FIRST_MARK = f"INSERT INTO {MARKERS_TABLE} (id, seq) VALUES (%s, %s)"
#: No such table or database, no right to write it.
GONE_CODES = frozenset({1049, 1142, 1146})
ASK = f"SELECT seq FROM {MARKERS_TABLE} WHERE id = %s LOCK IN SHARE MODE"


def isolation_options(level: str) -> dict[str, Any]:
    """The engine view's options for units at ``level``."""
    if level not in LEVELS:
        raise ValueError(f"not a MySQL isolation level: {level!r}")
    return {ISOLATION_OPTION: level}


class MySQLMarkers(CommitMarkers):
    """The markers table of one engine, in a database of its own (see the module's
    doc), and each unit's isolation level."""

    home: ClassVar[str] = f"the database {MARKERS_DATABASE!r}"
    logger: ClassVar[logging.Logger] = logging.getLogger("storelayer.mysql")

    def read_only(self, conn: Connection) -> bool:
        return bool(conn.exec_driver_sql("SELECT @@read_only").scalar())

    def make(self, conn: Connection) -> bool:
        # Each statement on its own: a failed one leaves a MySQL transaction usable.
        for statement in CREATE:
            _attempt(conn, statement)
        usable = _attempt(conn, PROBE)
        if usable:
            _attempt(conn, PRUNE)
        conn.exec_driver_sql("COMMIT")  # the prune, before the unit's own transaction
        return usable

    def wrote(self, conn: Connection) -> bool | None:
        return bool(conn.info.get(WROTE_KEY))

    def write(self, conn: Connection, key: bytes, seq: int) -> Any:
        if conn.exec_driver_sql(MARK, (seq, key)).rowcount == 0:
            conn.exec_driver_sql(FIRST_MARK, (key, seq))
        return key, seq

    def gone(self, error: exc.DBAPIError) -> bool:
        args: tuple[Any, ...] = getattr(error.orig, "args", ())
        return bool(args) and args[0] in GONE_CODES

    def committed(self, conn: Connection, marker: Any) -> bool | None:
        # The locking read waits for a transaction the server still runs to end.
        key, seq = marker
        try:
            stored = conn.exec_driver_sql(ASK, (key,)).scalar()
        except exc.OperationalError:
            return None  # that wait timed out
        return stored is not None and int(stored) >= seq

    def begin(self, conn: Connection) -> None:
        """At the start of each unit: the markers' set-up once, then its isolation."""
        super().begin(conn)
        level = conn.get_execution_options().get(ISOLATION_OPTION)
        if level is not None:
            conn.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {level}")
        conn.info[WROTE_KEY] = False


def track_units(engine: Engine) -> None:
    """Listen on ``engine``: each unit's isolation and marker set-up when it begins,
    and whether it wrote."""
    register(engine, MySQLMarkers())

    @event.listens_for(engine, "before_cursor_execute")
    def note_write(conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kw: Any) -> None:
        if not conn.info.get(WROTE_KEY) and _first_word(statement) not in READS:
            conn.info[WROTE_KEY] = True


def _attempt(conn: Connection, statement: str) -> bool:
    """Run ``statement``; False when the server refused it (a lost connection raises)."""
    try:
        conn.exec_driver_sql(statement)
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise
        return False
    return True


def _first_word(statement: str) -> str:
    words = statement.lstrip(" \t\r\n(").split(None, 1)
    return words[0].upper() if words else ""

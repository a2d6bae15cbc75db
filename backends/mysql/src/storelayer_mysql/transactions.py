"""What a read-write unit of work carries on MySQL/MariaDB: its isolation level, set per
transaction, and a commit marker that tells, after a connection lost during COMMIT,
whether the unit committed (docs/backends/mysql.md).

Isolation: ``SET TRANSACTION ISOLATION LEVEL ...`` right before the unit's first
statement, one round trip, applying to that transaction only (SQLAlchemy's per-connection
``isolation_level`` switches the pooled connection's level and switches it back on
return: four round trips, and a failed switch-back on a dead server costs the slot).

Commit markers: each pooled connection owns one row of ``storelayer.commit_markers``
(its own database, so an application's schema, backups and ``storelayer copy`` never see
it), keyed by a random id drawn when the connection is made. Just before COMMIT, a unit
that wrote sets that row's ``seq`` to the unit's number, inside its transaction: the row
holds that number if and only if the unit committed. After the connection is lost, a new
connection reads the row with a locking read, which waits for a transaction the server
still has in hand to end, and compares."""

from __future__ import annotations

import logging
import secrets
import weakref
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc

from storelayer.backend import UNKNOWN_OUTCOME

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger("storelayer.mysql")

#: Execution option of an engine view whose units run at that isolation level.
ISOLATION_OPTION = "storelayer_mysql_isolation"
#: Set by the core on read-only units (read sessions): they write no marker.
READ_ONLY_OPTION = "storelayer_read_only"
#: The levels ``SET TRANSACTION ISOLATION LEVEL`` takes.
LEVELS = frozenset({"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"})
#: ``Connection.info`` keys: this connection's marker id and the last unit's number;
#: whether the current transaction wrote.
MARKER_KEY, SEQ_KEY, WROTE_KEY = "storelayer.marker", "storelayer.marker_seq", "storelayer.wrote"
#: Statements that write nothing (the first word, upper case); anything else counts as
#: a write, so that an unknown statement is never taken for a read.
READS = frozenset({"SELECT", "SHOW", "SET", "DESCRIBE", "DESC", "EXPLAIN", "HELP", "DO"})

MARKERS_DATABASE = "storelayer"
MARKERS_TABLE = f"{MARKERS_DATABASE}.commit_markers"
#: Seconds after which a marker row no outcome check can need any more is pruned.
PRUNE_AFTER_SECONDS = 86400
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


#: An engine's dialect (shared by its views, kept by dispose()) -> its markers.
_ENGINES: weakref.WeakKeyDictionary[Any, CommitMarkers] = weakref.WeakKeyDictionary()


def isolation_options(level: str) -> dict[str, Any]:
    """The engine view's options for units at ``level``."""
    if level not in LEVELS:
        raise ValueError(f"not a MySQL isolation level: {level!r}")
    return {ISOLATION_OPTION: level}


class CommitMarkers:
    """Per engine: whether the markers table is there (None: not tried yet)."""

    def __init__(self) -> None:
        self.ready: bool | None = None

    def set_up(self, conn: Connection) -> None:
        """Create the markers table where it is missing (the user may lack the right,
        and a DBA may have created it) and prune it, before the first read-write unit
        of the engine begins. An engine that cannot read the table goes without
        markers (its lost COMMITs stay unknown), as it says once."""
        if conn.exec_driver_sql("SELECT @@read_only").scalar():
            self.ready = False  # a replica, or a server kept read-only: never write
            return
        for statement in CREATE:
            _attempt(conn, statement)
        self.ready = _attempt(conn, PROBE)
        if self.ready:
            _attempt(conn, PRUNE)
        conn.exec_driver_sql("COMMIT")  # the prune, before the unit's own transaction
        if not self.ready:
            logger.warning(
                "no commit markers on %s: a COMMIT lost with its connection will raise "
                "CommitOutcomeUnknown. Let the application's user create the database "
                "%r, or create it yourself (docs/backends/mysql.md)",
                conn.engine.url.render_as_string(hide_password=True),
                MARKERS_DATABASE,
            )

    def begin(self, conn: Connection) -> None:
        """At the start of each unit: set up markers once, then its isolation level."""
        options = conn.get_execution_options()
        if self.ready is None and not options.get(READ_ONLY_OPTION):
            self.set_up(conn)
        level = options.get(ISOLATION_OPTION)
        if level is not None:
            conn.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {level}")
        conn.info[WROTE_KEY] = False

    def mark(self, connection: Connection) -> Any:
        """Just before COMMIT: the marker of a unit that wrote, written in its
        transaction; None when it wrote nothing, ``UNKNOWN_OUTCOME`` when the engine
        has no markers."""
        if not connection.info.get(WROTE_KEY):
            return None
        if not self.ready:
            return UNKNOWN_OUTCOME
        info = connection.info
        key: bytes = info.setdefault(MARKER_KEY, secrets.token_bytes(16))
        seq = info[SEQ_KEY] = info.get(SEQ_KEY, 0) + 1
        try:
            if connection.exec_driver_sql(MARK, (seq, key)).rowcount == 0:
                connection.exec_driver_sql(FIRST_MARK, (key, seq))
        except exc.DBAPIError as error:
            # The table went away (or the right to write it): set it up again at the
            # next unit. Anything else (a deadlock rolled the unit back) is the unit's.
            if _code(error) not in GONE_CODES:
                raise
            self.ready = None
            return UNKNOWN_OUTCOME
        return key, seq


def markers_of(connection: Connection) -> CommitMarkers | None:
    """The markers of the engine ``connection`` belongs to (None: not a storelayer
    engine)."""
    return _ENGINES.get(connection.dialect)


def committed(connection: Connection, marker: tuple[bytes, int]) -> bool | None:
    """Whether the unit ``marker`` names committed: its number is in its row. The
    locking read waits for a transaction the server still runs to end; None when that
    wait times out."""
    key, seq = marker
    try:
        stored = connection.exec_driver_sql(ASK, (key,)).scalar()
    except exc.OperationalError:
        return None
    return stored is not None and int(stored) >= seq


def no_markers_on(engine: Engine) -> None:
    """Never set up or write markers through ``engine`` (a replica's)."""
    markers = _ENGINES.get(engine.dialect)
    if markers is not None:
        markers.ready = False


def track_units(engine: Engine) -> None:
    """Listen on ``engine``: each unit's isolation and marker set-up when it begins,
    and whether it wrote."""
    markers = _ENGINES.setdefault(engine.dialect, CommitMarkers())
    event.listen(engine, "begin", markers.begin)

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


def _code(error: exc.DBAPIError) -> Any:
    args = getattr(error.orig, "args", ())
    return args[0] if args else None


def _first_word(statement: str) -> str:
    words = statement.lstrip(" \t\r\n(").split(None, 1)
    return words[0].upper() if words else ""

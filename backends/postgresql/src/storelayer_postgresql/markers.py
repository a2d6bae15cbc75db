"""Commit markers on PostgreSQL (``storelayer.backend.commit_markers``): the table
``storelayer.commit_markers``, in a schema of its own so that the application's
migrations (autogenerate looks at its own schema) and ``storelayer copy`` never see it.

Why not the transaction id alone: ``pg_xact_status(xid)`` answers for the id, and after a
crash or a failover the server hands out again the ids it had not made durable, so it
can answer for another transaction than the lost unit. The id still serves one purpose:
while the server reports it in progress, whatever the server runs of the lost unit has
not ended, and the row cannot be read yet (a row the unit inserted is invisible to
others until then, and a read does not wait for it).

The marker is written by one statement that writes only when the unit already holds a
transaction id (it wrote something), so a unit that wrote nothing costs the same round
trip as before and leaves no marker."""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import exc

from storelayer.backend.commit_markers import PRUNE_AFTER_SECONDS, CommitMarkers

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCHEMA, TABLE = "storelayer", "storelayer.commit_markers"
#: ``pg_advisory_xact_lock`` key of the set-up: two processes never create at once.
SET_UP_LOCK = 7_130_851_312_004_255_001
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " id bytea PRIMARY KEY,"
    " seq bigint NOT NULL,"
    " written_at timestamptz NOT NULL DEFAULT now())"
)
PRUNE = f"DELETE FROM {TABLE} WHERE written_at < now() - interval '{PRUNE_AFTER_SECONDS} seconds'"
PLAIN = {"stream_results": False, "yield_per": None}
#: The server's sqlstates for: no such table or schema, no right to use it.
GONE_SQLSTATES = frozenset({"42P01", "3F000", "42501"})


def _run(conn: Connection, statement: str, parameters: Any = None) -> Any:
    """``statement`` on a plain cursor, whatever the unit streams (``stream_results``
    would declare a server-side cursor for it)."""
    return conn.exec_driver_sql(statement, parameters, execution_options=PLAIN)


def _make_on(side: Any, dbapi: Any) -> bool | None:
    """Create the schema and table where missing (two processes never at once: the
    advisory lock), prune old rows; whether this account can write the table. None
    when the connection failed (the next unit tries again)."""
    cursor = side.cursor()
    try:
        try:
            # On in a standby and on a server kept read-only: never write there.
            cursor.execute("SELECT current_setting('transaction_read_only') = 'on'")
            if cursor.fetchone()[0]:
                side.rollback()
                return False
            cursor.execute(f"SELECT pg_advisory_xact_lock({SET_UP_LOCK})")
            cursor.execute(f"SELECT to_regclass('{TABLE}') IS NULL")
            if cursor.fetchone()[0]:
                cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
                cursor.execute(CREATE_TABLE)
            cursor.execute(f"SELECT has_table_privilege('{TABLE}', 'DELETE')")
            if cursor.fetchone()[0]:
                cursor.execute(PRUNE)
            side.commit()
        except dbapi.OperationalError:
            return None
        except dbapi.Error:  # no right to create: a DBA may have made it
            side.rollback()
        try:
            cursor.execute(f"SELECT 1 FROM {TABLE} WHERE id = ''::bytea FOR UPDATE")
            usable = True
        except dbapi.OperationalError:
            return None
        except dbapi.Error:
            usable = False
        with suppress(dbapi.Error):
            side.rollback()
        return usable
    finally:
        cursor.close()


def _xid_functions(connection: Connection) -> tuple[str, str, str]:
    """(current id if assigned, current id, status of the id bound as ``%s``): the
    ``xid8`` functions of PostgreSQL 13+, the ``txid_*`` ones (same meaning) on 12."""
    if (connection.dialect.server_version_info or (0,)) >= (13,):
        return (
            "pg_current_xact_id_if_assigned()",
            "pg_current_xact_id()",
            "pg_xact_status(CAST(%s AS xid8))",
        )
    return "txid_current_if_assigned()", "txid_current()", "txid_status(CAST(%s AS bigint))"


class PostgreSQLMarkers(CommitMarkers):
    """The markers table of one engine (see the module's doc)."""

    home: ClassVar[str] = f"the schema {SCHEMA!r} (or grant CREATE on the database)"
    failed_statement_aborts: ClassVar[bool] = True
    logger: ClassVar[logging.Logger] = logging.getLogger("storelayer.postgresql")

    def read_only(self, conn: Connection) -> bool:
        # Asked in make(), on its own connection: a statement here would hold a server
        # connection for the unit while make() waits for another (a pooler's pool).
        return False

    def make(self, conn: Connection) -> bool | None:
        # On a connection of its own (a private pool of the engine's, same connect
        # settings), committed before the unit's first statement: nothing of the set-up
        # is in the unit's transaction, which stays as the application began it.
        pool = conn.engine.pool.recreate()
        try:
            side = pool.connect()
            try:
                return _make_on(side, conn.dialect.loaded_dbapi)
            finally:
                side.close()
        finally:
            pool.dispose()

    def wrote(self, conn: Connection) -> bool | None:
        if self.ready:
            return None  # the conditional write tells, in the same round trip
        assigned, _, _ = _xid_functions(conn)
        return bool(_run(conn, f"SELECT {assigned} IS NOT NULL").scalar())

    def write(self, conn: Connection, key: bytes, seq: int) -> Any:
        assigned, current, _ = _xid_functions(conn)
        xid = _run(
            conn,
            f"INSERT INTO {TABLE} (id, seq) SELECT %s, %s WHERE {assigned} IS NOT NULL "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, written_at = now() "
            f"RETURNING {current}::text",
            (key, seq),
        ).scalar()
        return None if xid is None else (key, seq, xid)

    def gone(self, error: exc.DBAPIError) -> bool:
        return getattr(error.orig, "pgcode", None) in GONE_SQLSTATES or (
            getattr(error.orig, "sqlstate", None) in GONE_SQLSTATES
        )

    def committed(self, conn: Connection, marker: Any) -> bool | None:
        key, seq, xid = marker
        _, _, status_of = _xid_functions(conn)
        try:
            status = _run(conn, f"SELECT {status_of}", (xid,)).scalar()
        except exc.DBAPIError as error:  # an id "in the future": none this server gave
            if error.connection_invalidated:
                raise
            status = None
        conn.rollback()  # the row is read in a new transaction: a snapshot taken after
        if status == "in progress":
            return None  # the server still runs what is left of the unit: ask again
        if _run(conn, f"SELECT to_regclass('{TABLE}') IS NULL").scalar():
            return False  # made by the lost unit itself, and gone with it
        stored = _run(conn, f"SELECT seq FROM {TABLE} WHERE id = %s", (key,)).scalar()
        return stored is not None and int(stored) >= seq

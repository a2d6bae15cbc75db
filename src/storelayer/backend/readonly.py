"""Read-only units of work by the database's own read-only transaction mode: a backend
says how to switch a DBAPI connection (``BEGIN READ ONLY``, ``SET SESSION TRANSACTION
READ ONLY``, ``PRAGMA query_only``) and :func:`enforce_read_only_units` switches each
connection when a unit needs the other mode than the one it is in, so that a run of
reads (or of writes) on one connection costs nothing more."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from storelayer.backend.driver_errors import driver_errors_wrapped

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: Execution option of the connections of ``read_session()`` units.
READ_ONLY_OPTION = "storelayer_read_only"
#: Execution option of connections that run only SELECTs storelayer built (``db.rows``
#: reads): any mode serves them, so they keep the one they find and switch nothing.
SELECTS_ONLY_OPTION = "storelayer_selects_only"
#: ``Connection.info`` key: whether the DBAPI connection is in read-only mode now.
_MODE_KEY = "storelayer.read_only_mode"

#: ``switch(dbapi_connection, read_only)``: put a connection in or out of read-only mode.
Switch = Callable[[Any, bool], None]


def enforce_read_only_units(
    engine: Engine, switch: Switch, *, reset_at_checkin: bool, unless: str | None = None
) -> None:
    """Before each transaction on ``engine``, put the connection in read-only mode for
    a ``read_session()`` unit and out of it for any other. ``reset_at_checkin``: leave
    every connection read-write when it returns to the pool (where switching costs no
    round trip), so that raw uses of the pool never meet a read-only connection.
    ``unless``: an execution option whose units the backend makes read-only itself.
    Connections with ``SELECTS_ONLY_OPTION`` are left in the mode they are in."""

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(SELECTS_ONLY_OPTION):
            return
        wanted = bool(options.get(READ_ONLY_OPTION)) and not (unless and options.get(unless))
        if conn.info.get(_MODE_KEY, False) != wanted:
            with driver_errors_wrapped(conn, "the switch to read-only mode or back"):
                switch(conn.connection.dbapi_connection, wanted)
            conn.info[_MODE_KEY] = wanted

    if reset_at_checkin:

        @event.listens_for(engine, "checkin")
        def checkin(dbapi_connection: Any, record: Any) -> None:
            if record.info.pop(_MODE_KEY, False):
                with suppress(Exception):  # a dead connection is discarded anyway
                    switch(dbapi_connection, False)


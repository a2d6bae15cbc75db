"""Driver errors of a raw DBAPI call, raised as SQLAlchemy raises them for a statement:
for the calls storelayer makes beneath SQLAlchemy (a backend's switch in an event,
PostgreSQL's ``COPY``), so that the caller tells a conflict, a lost server or a bad
value by the same classes as everywhere else, with no parameter shown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@contextmanager
def driver_errors_wrapped(conn: Connection, statement: str) -> Iterator[None]:
    """Around a raw DBAPI call on ``conn`` running ``statement`` (its SQL, or what it
    does): the driver's error raised as the ``DBAPIError`` SQLAlchemy would raise (an
    ``IntegrityError`` stays one, so a repository reports a ``Conflict``), the
    connection invalidated when the error says it is gone - so that a server lost at
    that moment is a disconnect the caller can tell (a replica ejected, a unit
    retried), not a bare driver error."""
    dialect = conn.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as error:
        gone = dialect.is_disconnect(error, conn.connection.dbapi_connection, None)
        if gone:
            conn.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            statement,
            None,
            error,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=dialect,
        ) from error

"""``RoutedSession``: a storelayer ``Session`` whose statements go where its
``SessionRoute`` says, that moves a read to the primary when its replica fails, and
that records the write position after each commit.

Modes of a route:

- ``"read"``: every statement on the read target (a replica, else the primary);
- ``"auto"``: reads on a replica until the first write (``is_write``), then everything
  on the primary;
- ``"primary"``: everything on the primary; writes are noted for the consistency token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.elements import TextClause

from storelayer._conflicts import one_line
from storelayer.errors import ConnectionFailed, StorelayerError
from storelayer.routing._replicas import close_quietly
from storelayer.routing._token import ConsistencyToken
from storelayer.session import Session

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import SessionTransaction

    from storelayer.routing._replicas import ReplicaSet

log = logging.getLogger("storelayer.routing")

ROUTE_KEY = "storelayer.route"
TOKEN_KEY = "storelayer.write_token"  # noqa: S105 (a dict key, not a secret)
# A textual statement is a read when it starts with SELECT, SHOW or EXPLAIN (after
# comments and parentheses) and takes no row locks.
_READ_TEXT = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*(SELECT|SHOW|EXPLAIN)\b", re.I | re.S
)
_LOCKING = re.compile(
    r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY\s+UPDATE|KEY\s+SHARE)\b|\bLOCK\s+IN\s+SHARE", re.I
)


def is_read_text(sql: str) -> bool:
    """Whether raw SQL is a plain read (``SELECT ...`` without ``FOR UPDATE``...)."""
    return bool(_READ_TEXT.match(sql)) and not _LOCKING.search(sql)


def is_write(clause: Any) -> bool:
    """Whether executing ``clause`` may write or lock rows; conservative: anything not
    known to be a plain read writes, None (a raw connection was asked for) included."""
    if clause is None or getattr(clause, "is_dml", False):
        return True
    if isinstance(clause, TextClause):
        return not is_read_text(clause.text)
    if getattr(clause, "is_select", False):
        return getattr(clause, "_for_update_arg", None) is not None
    return True


class SessionRoute:
    """Where one session's statements go; see the module docstring for the modes."""

    def __init__(
        self,
        replicas: ReplicaSet,
        mode: str,
        primary: Engine,
        token: ConsistencyToken | None,
        *,
        pinned: bool = False,
        autocommit: bool = False,
    ) -> None:
        self.replicas, self.mode, self.primary, self.token = replicas, mode, primary, token
        self.pinned, self.autocommit = pinned, autocommit
        #: "primary", a replica's name, or None until the first read settles it.
        self.target: str | None = "primary" if mode == "primary" or pinned else None
        self.replica: Connection | None = None
        self.wrote = False
        self.primary_connection: Connection | None = None

    def bind_for(self, clause: Any, flushing: bool) -> Engine | Connection:
        """The engine or connection that runs ``clause``."""
        if self.mode != "read" and (flushing or is_write(clause)):
            self.wrote = True
            self.target = "primary"  # "auto": stays there for the rest of the session
        if self.target is None:
            self.target, self.replica = self.replicas.open(self.token, autocommit=self.autocommit)
        if self.target == "primary" or self.replica is None:
            return self.primary
        return self.replica

    def fail_over(self, error: BaseException) -> bool:
        """After ``error`` on the replica: eject it when it is gone and move the session
        to the primary (or raise ``ReplicaUnavailable``). False: not a replica failure,
        let the error propagate."""
        if self.target in (None, "primary") or self.replica is None:
            return False
        gone = isinstance(error, ConnectionFailed) or (  # the server or connection is gone
            isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
        )
        if not gone and not self.replicas.backend.errors.is_transient(error):
            return False
        if gone:
            self.replicas.record_failure(self.target, one_line(error))
        self.replicas.fallback("replica_failed", error)
        self.target = "primary"
        return True

    def capture_token(self, session: Session) -> None:
        """After a commit that wrote: the position written, as the session's token."""
        position = None
        if self.primary_connection is not None:
            try:
                position = self.replicas.backend.replication.write_position(self.primary_connection)
            except (StorelayerError, sa_exc.SQLAlchemyError) as error:
                log.warning("write position unavailable, using a time token: %s", one_line(error))
        token = ConsistencyToken(position, self.replicas.wall_clock()).encode()
        session.info[TOKEN_KEY] = token
        self.replicas.last_token.set(token)
        self.wrote = False

    def release(self) -> None:
        """The session closed: give the replica connection back; a reused session
        settles its read target again."""
        if self.replica is not None:
            close_quietly(self.replica)
            self.replica = None
        self.primary_connection = None
        self.wrote = False
        if self.mode != "primary" and not self.pinned:
            self.target = None


class RoutedSession(Session):
    """A storelayer ``Session`` routed by the ``SessionRoute`` in ``info``."""

    def get_bind(
        self, mapper: Any = None, *, clause: Any = None, bind: Any = None, **kw: Any
    ) -> Engine | Connection:
        route: SessionRoute | None = self.info.get(ROUTE_KEY)
        if route is None or bind is not None:
            return super().get_bind(mapper, clause=clause, bind=bind, **kw)
        if route.mode == "read" and route.replica is not None and route.target != "primary":
            return route.replica  # every statement after the first of a replica read
        return route.bind_for(clause, self._flushing)

    # Every statement of a session passes through execute(), scalar() or scalars()
    # (Session.get and lazy loads call execute()): a read that fails because its replica
    # went away runs again on the primary.

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self._failing_over(super().execute, args, kwargs)

    def scalar(self, *args: Any, **kwargs: Any) -> Any:
        return self._failing_over(super().scalar, args, kwargs)

    def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self._failing_over(super().scalars, args, kwargs)

    def _failing_over(self, method: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as error:
            route: SessionRoute | None = self.info.get(ROUTE_KEY)
            if route is None or not route.fail_over(error):
                raise
            return method(*args, **kwargs)  # again, on the primary

    def close(self) -> None:
        try:
            super().close()
        finally:
            route: SessionRoute | None = self.info.get(ROUTE_KEY)
            if route is not None:
                route.release()


def session_target(session: Any) -> str | None:
    """Where a routed session's statements go now: "primary", a replica's name, or None
    (no read yet); "primary" for a session that is not routed."""
    route: SessionRoute | None = session.info.get(ROUTE_KEY)
    return "primary" if route is None else route.target


def write_token(session: Any) -> str | None:
    """The consistency token of the last commit of ``session`` that wrote (sync or
    async); None if it wrote nothing or no replicas are configured."""
    token: str | None = session.info.get(TOKEN_KEY)
    return token


class RoutedWriteSession(RoutedSession):
    """A ``RoutedSession`` that may write ("auto" and "primary" routes): after each
    commit that wrote it records the position written (the listeners below; read
    sessions do without them)."""


@event.listens_for(RoutedWriteSession, "after_begin")
def _note_primary_connection(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    route: SessionRoute | None = session.info.get(ROUTE_KEY)
    if route is not None and route.mode != "read" and connection is not route.replica:
        route.primary_connection = connection


@event.listens_for(RoutedWriteSession, "after_commit")
def _record_write_position(session: Session) -> None:
    route: SessionRoute | None = session.info.get(ROUTE_KEY)
    if route is not None and route.wrote:
        route.capture_token(session)

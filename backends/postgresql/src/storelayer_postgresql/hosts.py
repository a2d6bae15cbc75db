"""Failover pairs named by a host list (``postgresql://h1:p1,h2:p2/db?target_session_attrs=
read-write``, as ``pg_autoctl show uri`` prints it): libpq tries the hosts in order and
keeps the first that takes writes. A pooled connection opened before a switchover stays
on the old primary, which turns read-only: a write there fails with SQLSTATE 25006. On an
engine whose URL names a host list (or asks for a writable session), that error is taken
as a lost connection: SQLAlchemy drops the pool's connections, the unit of work is
retried, and the next connect finds the new primary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import event

from storelayer.config import is_host_list

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine, ExceptionContext

#: SQLSTATE of a write in a read-only transaction (a standby, a demoted primary).
READ_ONLY_SQLSTATE = "25006"
#: ``target_session_attrs`` values that ask libpq for a server taking writes.
WRITABLE_ATTRS = frozenset({"read-write", "primary"})


def follows_the_primary(url: URL) -> bool:
    """Whether ``url`` lets libpq pick the primary among several servers."""
    attrs = url.query.get("target_session_attrs")
    attrs = attrs[-1] if isinstance(attrs, tuple) else attrs
    return is_host_list(url) and attrs not in ("standby", "prefer-standby", "read-only")


def reconnect_when_demoted(engine: Engine) -> None:
    """On an engine that follows the primary, a read-only refusal invalidates the pool."""
    if not follows_the_primary(engine.url):
        return

    @event.listens_for(engine, "handle_error")
    def demoted(context: ExceptionContext) -> None:
        original = context.original_exception
        code = getattr(original, "pgcode", None) or getattr(original, "sqlstate", None)
        if code == READ_ONLY_SQLSTATE:
            context.is_disconnect = True

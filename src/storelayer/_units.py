"""What a failed unit of work means: a COMMIT whose outcome is unknown, an exhausted
pool, a write sent to a read-only database. Shared by the sync and async databases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Engine

from storelayer._engines import is_disconnect
from storelayer._pool import exhausted
from storelayer.backend import Backend
from storelayer.config import mask_url
from storelayer.errors import CommitOutcomeUnknown, ReadOnlyDatabase, StorelayerError


def commit_unknown(error: BaseException, url: Any) -> CommitOutcomeUnknown:
    """The error for a connection lost while COMMIT was in flight."""
    return CommitOutcomeUnknown(
        f"the connection to {mask_url(url)} was lost while COMMIT was in flight "
        f"({type(error).__name__}): the unit of work may or may not have been committed. "
        "It was not retried; check whether its effects are there, or make it idempotent "
        "and pass idempotent=True to run_in_transaction()"
    )


def commit_or_unknown(commit: Callable[[], None], url: Any) -> None:
    """Run ``commit``; a lost connection becomes ``CommitOutcomeUnknown``."""
    try:
        commit()
    except Exception as error:
        if is_disconnect(error):
            raise commit_unknown(error, url) from error
        raise


async def acommit_or_unknown(commit: Callable[[], Awaitable[None]], url: Any) -> None:
    """The awaitable twin of :func:`commit_or_unknown`."""
    try:
        await commit()
    except Exception as error:
        if is_disconnect(error):
            raise commit_unknown(error, url) from error
        raise


def role_of(bind: Any, engines: Mapping[str, Engine]) -> tuple[str, Engine]:
    """Which of ``engines`` (role -> engine) a session's bind uses; the primary when
    none matches."""
    pool = getattr(bind, "pool", None)
    for role, engine in engines.items():
        if engine.pool is pool:
            return role, engine
    return "primary", engines["primary"]


def explained(
    error: BaseException, backend: Backend, bind: Any, engines: Mapping[str, Engine], writes: bool
) -> StorelayerError | None:
    """A clearer error for ``error`` raised in a unit of work, or None to keep it."""
    if isinstance(error, exc.TimeoutError):
        role, engine = role_of(bind, engines)
        return exhausted(engine, role, error)
    if writes and isinstance(error, exc.DBAPIError) and backend.errors.is_read_only(error):
        _, engine = role_of(bind, engines)
        return ReadOnlyDatabase(
            f"the database at {mask_url(engine.url)} accepts only reads (a read replica, "
            "or a server in read-only mode), so the write was refused and nothing "
            "changed. Point DATABASE_URL at the primary; put replicas in "
            "DATABASE_REPLICA_URLS"
        )
    return None

"""What a failed unit of work means: a COMMIT whose outcome is unknown, an exhausted
pool, a write sent to a read-only database. Shared by the sync and async databases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Engine

from storelayer._engines import is_disconnect
from storelayer._pool import exhausted
from storelayer.backend import Backend
from storelayer.config import mask_url
from storelayer.errors import (
    CommitOutcomeUnknown,
    ReadOnlyDatabase,
    ReadOnlySession,
    StorelayerError,
)


def commit_unknown(error: BaseException, url: Any) -> CommitOutcomeUnknown:
    """The error for a connection lost while COMMIT was in flight."""
    return CommitOutcomeUnknown(
        f"the connection to {mask_url(url)} was lost while COMMIT was in flight "
        f"({type(error).__name__}): the unit of work may or may not have been committed. "
        "It was not retried; check whether its effects are there, or make it idempotent "
        "and pass idempotent=True to run_in_transaction()"
    )


def lost_commit(error: BaseException, url: Any, outcome: bool | None) -> BaseException | None:
    """After a connection lost during COMMIT, what the unit raises given what the server
    said (``Operations.committed``): nothing when it committed, the lost connection
    (transient: the unit runs again) when it rolled back, ``CommitOutcomeUnknown``
    when it could not tell."""
    if outcome is True:
        return None
    return error if outcome is False else commit_unknown(error, url)


def commit_or_unknown(
    commit: Callable[[], None], url: Any, resolve: Callable[[], bool | None] | None = None
) -> None:
    """Run ``commit``; a lost connection is resolved by ``resolve()`` (see
    :func:`lost_commit`; without it: ``CommitOutcomeUnknown``)."""
    try:
        commit()
    except Exception as error:
        if not is_disconnect(error):
            raise
        clearer = lost_commit(error, url, resolve() if resolve else None)
        if clearer is error:
            raise
        if clearer is not None:
            raise clearer from error


async def acommit_or_unknown(
    commit: Callable[[], Awaitable[None]],
    url: Any,
    resolve: Callable[[], Awaitable[bool | None]] | None = None,
) -> None:
    """The awaitable twin of :func:`commit_or_unknown`."""
    try:
        await commit()
    except Exception as error:
        if not is_disconnect(error):
            raise
        clearer = lost_commit(error, url, await resolve() if resolve else None)
        if clearer is error:
            raise
        if clearer is not None:
            raise clearer from error


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
    if not isinstance(error, exc.DBAPIError) or not backend.errors.is_read_only(error):
        return None
    if not writes:
        return ReadOnlySession(
            "a write was sent in a read_session(), whose transaction is read-only: the "
            "database refused it and nothing changed. Write in session() instead"
        )
    _, engine = role_of(bind, engines)
    return ReadOnlyDatabase(
        f"the database at {mask_url(engine.url)} accepts only reads (a read replica, "
        "or a server in read-only mode), so the write was refused and nothing "
        "changed. Point DATABASE_URL at the primary; put replicas in "
        "DATABASE_REPLICA_URLS"
    )


def release(connection: Any) -> None:
    """Close ``connection``, a ``run_in_transaction`` held for its attempts, whatever
    state its server left it in: the pool's reset of its isolation level meets the
    driver's raw error when the server went away since the last statement, and that
    error must not replace the unit's result."""
    try:
        connection.close()
    except Exception:
        with suppress(Exception):
            connection.invalidate()


async def arelease(connection: Any) -> None:
    """The awaitable twin of :func:`release`."""
    try:
        await connection.close()
    except Exception:
        with suppress(Exception):
            await connection.invalidate()

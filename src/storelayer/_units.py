"""What a failed unit of work means: a COMMIT whose outcome is unknown, an exhausted
pool, a write sent to a read-only database. Shared by the sync and async databases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Engine

from storelayer._engines import is_disconnect, is_transient
from storelayer._pool import exhausted
from storelayer._retry import RetryPolicy
from storelayer.backend import UNKNOWN_OUTCOME, Backend
from storelayer.config import mask_url
from storelayer.errors import (
    CommitOutcomeUnknown,
    ReadOnlyDatabase,
    ReadOnlySession,
    StatementTimeout,
    StorelayerError,
    TransientError,
)


def commit_unknown(error: BaseException, url: Any) -> CommitOutcomeUnknown:
    """The error for a connection lost while COMMIT was in flight."""
    return CommitOutcomeUnknown(
        f"the connection to {mask_url(url)} was lost while COMMIT was in flight "
        f"({type(error).__name__}): the unit of work may or may not have been committed. "
        "It was not retried; check whether its effects are there, or make it idempotent "
        "and pass idempotent=True to run_in_transaction()"
    )


def not_committed(error: BaseException, url: Any) -> TransientError:
    """The error for a unit whose lost connection took its transaction with it: a
    ``TransientError`` that is transient, so ``run_in_transaction`` runs it again."""
    return TransientError(
        f"the connection to {mask_url(url)} was lost before COMMIT completed "
        f"({type(error).__name__}) and the unit of work was rolled back: nothing of it "
        "was committed. Run it again (run_in_transaction() does so itself)",
        attempts=1,
        transient=True,
    )


def lost_commit(error: BaseException, url: Any, outcome: bool | None) -> BaseException | None:
    """After a connection lost during COMMIT, what the unit raises given what the server
    said (``Operations.committed``): nothing when it committed, a transient
    ``TransientError`` (the unit runs again) when it rolled back,
    ``CommitOutcomeUnknown`` when it could not tell."""
    if outcome is True:
        return None
    return not_committed(error, url) if outcome is False else commit_unknown(error, url)


@contextmanager
def before_commit(url: Any) -> Iterator[None]:
    """Around what a unit runs after its block and before COMMIT (the last flush, the
    commit marker): a connection lost there took the transaction with it."""
    try:
        yield
    except Exception as error:
        if not is_disconnect(error):
            raise
        raise not_committed(error, url) from error


#: ``known_outcome()``: the server must be asked about the unit's marker.
ASK = "ask"


def known_outcome(writes: bool, backend: Backend, marker: Any) -> bool | str | None:
    """What a COMMIT lost with its connection means before anyone is asked: False
    (nothing to lose: run the unit again) for a read-only unit, or one the backend says
    wrote nothing (no marker, ``features.commit_outcome``); None (unknowable) where the
    backend cannot be asked; else ``ASK``."""
    if not writes:
        return False
    if not backend.features.commit_outcome or marker is UNKNOWN_OUTCOME:
        return None
    return False if marker is None else ASK


def _settled(known: bool | str | None) -> bool | None:
    return None if known is None else False


def commit_or_unknown(
    commit: Callable[[], None],
    url: Any,
    known: bool | str | None,
    resolve: Callable[[], bool | None],
) -> None:
    """Run ``commit``; a lost connection means what ``known`` says (``known_outcome()``),
    or what ``resolve()`` finds out when that is ``ASK`` (see :func:`lost_commit`)."""
    try:
        commit()
    except Exception as error:
        if not is_disconnect(error):
            raise
        clearer = lost_commit(error, url, resolve() if known == ASK else _settled(known))
        if clearer is not None:
            raise clearer from error


async def acommit_or_unknown(
    commit: Callable[[], Awaitable[None]],
    url: Any,
    known: bool | str | None,
    resolve: Callable[[], Awaitable[bool | None]],
) -> None:
    """The awaitable twin of :func:`commit_or_unknown`."""
    try:
        await commit()
    except Exception as error:
        if not is_disconnect(error):
            raise
        clearer = lost_commit(error, url, await resolve() if known == ASK else _settled(known))
        if clearer is not None:
            raise clearer from error


class Undecided(Exception):
    """The server cannot tell yet whether a lost COMMIT committed."""


def decided(answer: bool | None) -> bool:
    """``answer`` (of ``Operations.committed``), or ``Undecided`` while it is None."""
    if answer is None:
        raise Undecided
    return answer


def asking(backend: Backend, policy: RetryPolicy) -> dict[str, Any]:
    """``call_with_retries`` arguments that ask about a lost COMMIT again while the
    server is away (restarting) or cannot tell yet, within ``policy``."""
    return {
        "is_transient": lambda e: isinstance(e, Undecided) or is_transient(backend, e),
        "policy": policy,
    }


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
    if isinstance(error, exc.DBAPIError) and backend.errors.is_statement_timeout(error):
        return StatementTimeout(
            "the server cancelled a statement that ran longer than statement_timeout; "
            "make it faster (an index, smaller batches) or raise statement_timeout"
        )
    if not isinstance(error, exc.DBAPIError) or not backend.errors.is_read_only(error):
        return None
    if not writes:
        return ReadOnlySession(
            "a write was sent in a read_session(), whose transaction is read-only: the "
            "database refused it and nothing changed. Write in session() instead"
        )
    if not error.connection_invalidated:  # a demoted primary: retried, reconnected
        _, engine = role_of(bind, engines)
        return ReadOnlyDatabase(
            f"the database at {mask_url(engine.url)} accepts only reads (a read replica, "
            "or a server in read-only mode), so the write was refused and nothing "
            "changed. Point DATABASE_URL at the primary; put replicas in "
            "DATABASE_REPLICA_URLS"
        )
    return None


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

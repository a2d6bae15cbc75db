"""The attempts of one ``run_in_transaction``, written once: each attempt is a unit of
work on one connection taken at the first attempt and held to the end, so that a unit
that lost a conflict runs again at once instead of queuing for the pool behind the units
it will conflict with; a lost connection (or one a failed attempt left inside its
transaction) is replaced on the next attempt. With replicas, the routed factory connects
per attempt. ``run_attempts`` drives the sync database, ``arun_attempts`` (the same steps,
awaited) the async one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import exc

from storelayer._retry import acall_with_retries, call_with_retries
from storelayer._units import arelease, release

T = TypeVar("T")
#: ``unit_of_work(session_factory, writes)``: a database's unit of work (commit or roll
#: back; ``writes``: a read-write unit).
UnitOfWork = Callable[[Callable[[], Any], bool], AbstractContextManager[Any]]
AsyncUnitOfWork = Callable[[Callable[[], Any], bool], AbstractAsyncContextManager[Any]]


class HeldConnection:
    """The connection the attempts of one ``run_in_transaction`` share, and the session
    factory of each attempt. ``engine`` and ``sessions`` are the unit's engine view and
    session factory (at its isolation level); ``routed``: the replica router's factory
    when it decides, which then connects per attempt; ``connect_failed(error)``:
    storelayer's error for a connection the pool could not give."""

    def __init__(
        self,
        engine: Any,
        sessions: Callable[..., Any],
        routed: Callable[[], Any] | None,
        connect_failed: Callable[[BaseException], BaseException],
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.routed = routed
        self.connect_failed = connect_failed
        self.connection: Any = None

    def stale(self) -> Any:
        """The held connection if the next attempt may not reuse it (lost, or still in
        the last attempt's transaction, which a session would join, not begin), now
        forgotten for the caller to release; else None."""
        held = self.connection
        if held is None or (not held.invalidated and not held.in_transaction()):
            return None
        self.connection = None
        return held

    def needs_connection(self) -> bool:
        """Whether the next attempt must connect first."""
        return self.routed is None and self.connection is None

    @contextmanager
    def connecting(self) -> Iterator[None]:
        """Around the connect: an exhausted pool becomes storelayer's error."""
        try:
            yield
        except exc.TimeoutError as error:
            raise self.connect_failed(error) from error

    def factory(self) -> Callable[[], Any]:
        """The session factory of the next attempt."""
        if self.routed is not None:
            return self.routed
        return partial(self.sessions, bind=self.connection)

    def forget(self) -> Any:
        """The held connection (None if none), forgotten for the caller to release."""
        held, self.connection = self.connection, None
        return held


def run_attempts(
    held: HeldConnection,
    unit_of_work: UnitOfWork,
    fn: Callable[[Any], T],
    plan: dict[str, Any],
) -> T:
    """Run ``fn(session)`` in units of work on ``held``, retried as ``plan`` says
    (``call_with_retries`` arguments); the held connection is released at the end."""

    def attempt() -> T:
        stale = held.stale()
        if stale is not None:
            release(stale)
        if held.needs_connection():
            with held.connecting():
                held.connection = held.engine.connect()
        with unit_of_work(held.factory(), True) as session:
            return fn(session)

    try:
        return call_with_retries(attempt, **plan)
    finally:
        if (connection := held.forget()) is not None:
            release(connection)


async def arun_attempts(
    held: HeldConnection,
    unit_of_work: AsyncUnitOfWork,
    fn: Callable[[Any], Awaitable[T]],
    plan: dict[str, Any],
) -> T:
    """The awaiting twin of :func:`run_attempts`."""

    async def attempt() -> T:
        stale = held.stale()
        if stale is not None:
            await arelease(stale)
        if held.needs_connection():
            with held.connecting():
                held.connection = await held.engine.connect()
        async with unit_of_work(held.factory(), True) as session:
            return await fn(session)

    try:
        return await acall_with_retries(attempt, **plan)
    finally:
        if (connection := held.forget()) is not None:
            await arelease(connection)

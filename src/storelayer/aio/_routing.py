"""``AsyncRouting``: the replicas of an ``AsyncDatabase``, the twin of ``SyncRouting``
over the same ``Routing``. An ``AsyncSession`` runs its sync ``RoutedSession`` inside a
greenlet, where the replica's sync engine awaits the async driver; only sleeping while
waiting for a token and sampling the lag (tasks on the event loop) are done the asyncio
way."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.util import await_only

from storelayer._conflicts import one_line
from storelayer.aio._session import AsyncSession
from storelayer.routing._session import RoutedSession, RoutedWriteSession
from storelayer.routing._sync import RoutedFactory, Routing

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from storelayer.backend import Backend
    from storelayer.routing._replicas import ReplicaSet
    from storelayer.routing._token import ConsistencyToken


class RoutedAsyncSession(AsyncSession):
    """An ``AsyncSession`` over a ``RoutedSession`` (read routes)."""

    sync_session_class = RoutedSession


class RoutedAsyncWriteSession(AsyncSession):
    """An ``AsyncSession`` over a ``RoutedWriteSession`` ("auto" and "primary" routes)."""

    sync_session_class = RoutedWriteSession


class AsyncRouting(Routing["AsyncEngine", AsyncSession]):
    """Replica engines and routed session factories of one ``AsyncDatabase``."""

    make_sessions = async_sessionmaker
    session_classes = (RoutedAsyncSession, RoutedAsyncWriteSession)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.sampler = AsyncSampler(self.replicas, self._probe)

    def replica_url(self, backend: Backend, url: URL) -> URL:
        return backend.async_url(url)

    def sync_engine(self, engine: AsyncEngine) -> Engine:
        return engine.sync_engine

    def sleep(self, seconds: float) -> None:
        """Sleep without blocking the event loop, from sync code run by an async session."""
        await_only(asyncio.sleep(seconds))

    async def factory(
        self,
        using: str | None,
        token: str | ConsistencyToken | None,
        *,
        read: bool,
        autocommit: bool = False,
        primary: Engine | None = None,
    ) -> RoutedFactory[AsyncSession] | None:
        """A routed session factory; None when the plain primary session is right;
        ``primary`` as in ``SyncRouting.factory``."""
        routed = self._factory(using, token, read, autocommit, primary)
        if routed is not None and routed.mode != "primary":
            await self.sampler.ensure_started()
        return routed

    async def _probe(self, name: str) -> float | None:
        async with self.engines[name].connect() as connection:
            lag: float | None = await connection.run_sync(self.replicas.measure)
            return lag

    async def dispose(self) -> None:
        """Stop sampling and close every replica connection."""
        await self.sampler.stop()
        for engine in self.engines.values():
            await engine.dispose()


class AsyncSampler:
    """``ThreadSampler`` as one task per replica on the running event loop."""

    def __init__(
        self, replicas: ReplicaSet, probe: Callable[[str], Awaitable[float | None]]
    ) -> None:
        self.replicas, self.probe = replicas, probe
        self._waited = False
        self._tasks: list[asyncio.Task[None]] = []

    async def ensure_started(self) -> None:
        """Start the tasks unless they run on this loop; the first time, wait (bounded)
        until every replica was sampled or probed once."""
        loop = asyncio.get_running_loop()
        if not self._tasks or any(t.get_loop() is not loop or t.done() for t in self._tasks):
            await self.stop()
            self._tasks = [
                loop.create_task(self._run(name), name=f"storelayer-sampler-{name}")
                for name in self.replicas.read_engines
            ]
        deadline = time.monotonic() + self.replicas.policy.first_sample_wait
        while not (self._waited or self.replicas.has_samples()) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        self._waited = True  # once: a replica that never answers must not stall reads

    async def _run(self, name: str) -> None:
        while True:
            if self.replicas.should_sample(name):
                try:
                    lag = await self.probe(name)
                except Exception as error:
                    self.replicas.record_failure(name, one_line(error))
                else:
                    self.replicas.record_sample(name, lag)
            await asyncio.sleep(self.replicas.policy.sample_interval)

    async def stop(self) -> None:
        """Cancel the tasks of the running loop; forget tasks of a closed loop."""
        tasks, self._tasks = self._tasks, []
        current = asyncio.get_running_loop()
        for task in tasks:
            with contextlib.suppress(RuntimeError):  # the task's loop is closed
                task.cancel()
        for task in tasks:
            if task.get_loop() is current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

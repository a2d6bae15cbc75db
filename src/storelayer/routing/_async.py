"""``AsyncRouting``: the replicas of an ``AsyncDatabase``. The decisions are the sync
ones (``RoutingCore``): an ``AsyncSession`` runs its sync ``RoutedSession`` inside a
greenlet, where the replica's sync engine awaits the async driver; only sleeping while
waiting for a token and sampling the lag are done the asyncio way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.util import await_only

from storelayer.aio._session import AsyncSession
from storelayer.routing._core import RoutingCore
from storelayer.routing._policy import RoutingPolicy
from storelayer.routing._sampler import AsyncSampler
from storelayer.routing._session import ROUTE_KEY, RoutedSession, RoutedWriteSession
from storelayer.routing._stats import RoutingSnapshot
from storelayer.routing._sync import READ_ONLY, replica_names, replica_pool_overrides
from storelayer.routing._token import ConsistencyToken
from storelayer.session import AUTOCOMMIT_KEY, session_info

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from storelayer.backend import Backend
    from storelayer.config import Settings

#: ``create_engine(url, role, overrides)``: the async database's engine factory.
AsyncEngineFactory = Callable[[Any, str, Mapping[str, Any]], "AsyncEngine"]


class RoutedAsyncSession(AsyncSession):
    """An ``AsyncSession`` over a ``RoutedSession`` (read routes)."""

    sync_session_class = RoutedSession


class RoutedAsyncWriteSession(AsyncSession):
    """An ``AsyncSession`` over a ``RoutedWriteSession`` ("auto" and "primary" routes)."""

    sync_session_class = RoutedWriteSession


def greenlet_sleep(seconds: float) -> None:
    """Sleep without blocking the event loop, from sync code run by an async session."""
    await_only(asyncio.sleep(seconds))


class AsyncRouting:
    """Replica engines and routed session factories of one ``AsyncDatabase``."""

    def __init__(
        self,
        *,
        settings: Settings,
        backend: Backend,
        primary: AsyncEngine,
        create_engine: AsyncEngineFactory,
        policy: RoutingPolicy | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy or RoutingPolicy.from_env()
        self.engines: dict[str, AsyncEngine] = {}
        for name, raw in zip(replica_names(settings), settings.replica_urls, strict=True):
            url = backend.async_url(backend.normalize_url(raw))
            overrides = replica_pool_overrides(backend, url, settings)
            self.engines[name] = create_engine(url, name, overrides)
        autocommit = {**READ_ONLY, **backend.autocommit_read_options()}
        syncs = {name: engine.sync_engine for name, engine in self.engines.items()}
        self.core = RoutingCore(
            read_engines={n: e.execution_options(**READ_ONLY) for n, e in syncs.items()},
            autocommit_engines={n: e.execution_options(**autocommit) for n, e in syncs.items()},
            backend=backend,
            policy=self.policy,
            max_lag=settings.max_replica_lag,
            sleep=greenlet_sleep,
        )
        self.sampler = AsyncSampler(self.core.router, self._probe, self.policy.sample_interval)
        self._sampled = False
        self._primary = primary.sync_engine
        self._primary_read = primary.sync_engine.execution_options(**READ_ONLY)
        self._sessions = {
            read: async_sessionmaker(
                primary,
                class_=RoutedAsyncSession if read else RoutedAsyncWriteSession,
                expire_on_commit=False,
                info=session_info(backend),
            )
            for read in (True, False)
        }

    async def factory(
        self,
        using: str | None,
        token: str | ConsistencyToken | None,
        *,
        read: bool,
        autocommit: bool = False,
    ) -> Callable[[], AsyncSession] | None:
        """A routed session factory; None when the plain primary session is right."""
        mode = self.core.mode(using, read=read)
        if not self.engines or (read and mode == "primary"):
            return None
        if mode != "primary":
            await self.sampler.ensure_started()
            if not self._sampled:  # once: a replica that never answers must not stall reads
                await self.sampler.wait_first(self.policy.first_sample_wait)
                self._sampled = True
        primary = self._primary_read if mode == "read" else self._primary
        with_autocommit = autocommit and mode == "read"

        def make() -> AsyncSession:
            s = self._sessions[mode == "read"]()
            s.info[ROUTE_KEY] = self.core.route(mode, primary, token, autocommit=with_autocommit)
            if with_autocommit:
                s.info[AUTOCOMMIT_KEY] = True
            return s

        return make

    async def _probe(self, name: str) -> float | None:
        async with self.engines[name].connect() as connection:
            if not self.backend.features.replicas:
                await connection.execute(text("SELECT 1"))
                return None
            lag: float | None = await connection.run_sync(self.backend.replication.lag)
            return lag

    def sync_engines(self) -> dict[str, Engine]:
        """The sync facades of the replica engines, by role."""
        return {name: engine.sync_engine for name, engine in self.engines.items()}

    def stats(self) -> RoutingSnapshot:
        """The routing counters and the state of each replica."""
        return self.core.snapshot()

    async def dispose(self) -> None:
        """Stop sampling and close every replica connection."""
        await self.sampler.stop()
        for engine in self.engines.values():
            await engine.dispose()

"""``connect_async()`` and ``AsyncDatabase``: the awaitable twin of ``Database``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import exc, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storelayer._conflicts import conflict_from, one_line
from storelayer._engines import READ_ONLY_OPTION, engine_options, instrument, is_transient
from storelayer._retry import acall_with_retries
from storelayer._roundtrips import round_trip_policy
from storelayer._units import acommit_or_unknown
from storelayer.aio._session import AsyncSession
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url
from storelayer.database import HealthReport, resolve
from storelayer.errors import CommitOutcomeUnknown, StorelayerError
from storelayer.plugins import PluginManager
from storelayer.routing import ConsistencyToken, RoutingPolicy, RoutingSnapshot
from storelayer.routing._async import AsyncRouting
from storelayer.session import AUTOCOMMIT_KEY, session_info

T = TypeVar("T")


def connect_async(
    url: str | URL | None = None,
    *,
    replicas: list[str | URL] | None = None,
    backend: str | None = None,
    plugins: PluginManager | None = None,
    routing: RoutingPolicy | None = None,
    **settings: Any,
) -> AsyncDatabase:
    """Open an ``AsyncDatabase``: the same ``DATABASE_URL`` and settings as
    ``connect()``, served by the backend's async driver."""
    resolved, chosen, manager = resolve(url, replicas, backend, plugins, settings)
    return AsyncDatabase(resolved, chosen, manager, routing=routing)


class AsyncDatabase:
    """Async engine and awaitable units of work for one configured database."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        plugins: PluginManager,
        *,
        routing: RoutingPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.plugins = plugins
        self.url = backend.async_url(backend.normalize_url(settings.url))
        self.engine = self._create_engine(self.url, "primary")
        self._sessions = self._factory(self.engine)
        self._read_sessions = self._factory(
            self.engine.execution_options(**{READ_ONLY_OPTION: True})
        )
        self._autocommit_sessions = self._factory(
            self.engine.execution_options(
                **{READ_ONLY_OPTION: True}, **backend.autocommit_read_options()
            ),
            autocommit=True,
        )
        self._routing = AsyncRouting(
            settings=settings,
            backend=backend,
            primary=self.engine,
            create_engine=self._create_engine,
            policy=routing,
        )

    def _create_engine(
        self, url: URL, role: str, overrides: Mapping[str, Any] | None = None
    ) -> AsyncEngine:
        """``role``: "primary" or "replica:<n>" (the hook is told "replica")."""
        options = engine_options(self.backend, url, self.settings, is_async=True)
        options.update(overrides or {})
        install_policy = round_trip_policy(options, self.settings.ping_after)
        engine = create_async_engine(url, **options)
        install_policy(engine.sync_engine)
        instrument(engine.sync_engine, self.backend, self.plugins, url, role.partition(":")[0])
        return engine

    def engines(self) -> dict[str, AsyncEngine]:
        """Every engine by role: "primary", then "replica:0", "replica:1"..."""
        return {"primary": self.engine, **self._routing.engines}

    def _factory(
        self, engine: AsyncEngine, *, autocommit: bool = False
    ) -> async_sessionmaker[AsyncSession]:
        info = {**session_info(self.backend), AUTOCOMMIT_KEY: autocommit}
        return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, info=info)

    def __repr__(self) -> str:
        return f"<AsyncDatabase backend={self.backend.name!r} url={mask_url(self.url)!r}>"

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()

    @asynccontextmanager
    async def session(
        self, *, using: str | None = None, token: str | ConsistencyToken | None = None
    ) -> AsyncIterator[AsyncSession]:
        """A read-write unit of work: committed at the end, rolled back on error;
        ``using`` as in ``Database.session``."""
        factory = await self._routing.factory(using, token, read=False) or self._sessions
        async with self._unit_of_work(factory) as s:
            yield s

    @asynccontextmanager
    async def read_session(
        self,
        *,
        autocommit: bool = False,
        using: str | None = None,
        token: str | ConsistencyToken | None = None,
    ) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work on a replica when configured; ``autocommit``,
        ``using`` and ``token`` as in ``Database.read_session``."""
        plain = self._autocommit_sessions if autocommit else self._read_sessions
        routed = await self._routing.factory(using, token, read=True, autocommit=autocommit)
        factory = routed or plain
        async with self._unit_of_work(factory) as s:
            yield s

    @asynccontextmanager
    async def _unit_of_work(
        self, factory: Callable[[], AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        s = factory()
        try:
            yield s
            await s.flush()  # errors before COMMIT is sent leave no doubt about the outcome
            await acommit_or_unknown(s.commit, self.url)
        except exc.IntegrityError as error:
            await self._safe_rollback(s)
            raise conflict_from(error, self.backend) from error
        except BaseException:
            await self._safe_rollback(s)
            raise
        finally:
            await s.close()

    @staticmethod
    async def _safe_rollback(s: AsyncSession) -> None:
        with suppress(exc.DBAPIError):  # the connection died; the pool invalidated it
            await s.rollback()

    async def run_in_transaction(
        self,
        fn: Callable[[AsyncSession], Awaitable[T]],
        *,
        retries: int = 3,
        max_seconds: float = 30.0,
        idempotent: bool = False,
    ) -> T:
        """Await ``fn(session)`` in its own unit of work, retried as a whole on errors
        the backend calls transient; ``CommitOutcomeUnknown`` is retried only when
        ``idempotent`` (see ``Database.run_in_transaction``)."""

        async def attempt() -> T:
            async with self.session() as s:
                return await fn(s)

        def retryable(error: BaseException) -> bool:
            if isinstance(error, CommitOutcomeUnknown):
                return idempotent
            return self.is_transient(error)

        return await acall_with_retries(
            attempt, is_transient=retryable, retries=retries, max_seconds=max_seconds
        )

    def is_transient(self, error: BaseException) -> bool:
        """Whether retrying a unit of work that raised ``error`` may succeed."""
        return is_transient(self.backend, error)

    async def health(self) -> HealthReport:
        """Reachability, round-trip latency and server version."""
        started = time.perf_counter()
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                latency = (time.perf_counter() - started) * 1000
                version = await conn.run_sync(self.backend.ops.server_version)
        except (exc.SQLAlchemyError, StorelayerError) as error:
            return HealthReport(
                False,
                self.backend.name,
                mask_url(self.url),
                None,
                None,
                one_line(error, self.url.password),
            )
        return HealthReport(True, self.backend.name, mask_url(self.url), round(latency, 3), version)

    def last_write_token(self) -> str | None:
        """As ``Database.last_write_token``: the token of this task's last write."""
        return self._routing.core.last_write_token()

    def routing_stats(self) -> RoutingSnapshot:
        """Routing decisions so far: reads per target, fallbacks, ejections."""
        return self._routing.stats()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._routing.dispose()
        await self.engine.dispose()

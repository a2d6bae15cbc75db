"""``connect_async()`` and ``AsyncDatabase``: the awaitable twin of ``Database``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from storelayer._core import EngineCore, resolve
from storelayer._engines import READ_ONLY_OPTION, is_transient
from storelayer._retry import acall_with_retries
from storelayer._units import acommit_or_unknown
from storelayer.aio._session import AsyncSession
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url
from storelayer.database import Database
from storelayer.health import HealthReport, MigrationState
from storelayer.plugins import PluginManager
from storelayer.routing import ConsistencyToken, RoutingPolicy, RoutingSnapshot
from storelayer.routing._async import AsyncRouting
from storelayer.session import AUTOCOMMIT_KEY, session_info

if TYPE_CHECKING:
    from storelayer.backup import BackupManifest, RestoreReport

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
    """Async engines and awaitable units of work for one configured database: the
    ``Database`` of the same settings, over the same ``EngineCore`` (metrics, health,
    errors, retries), with awaitable units of work."""

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
        self._core = EngineCore(settings, backend, plugins, is_async=True)
        self.engine: AsyncEngine = self._core.create_engine(self._core.url, "primary")
        self.url = self.engine.url
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
            create_engine=self._core.create_engine,
            policy=routing,
        )

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
        async with self._unit_of_work(routed or plain) as s:
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
        except BaseException as error:
            with suppress(exc.DBAPIError):  # the connection died; the pool invalidated it
                await s.rollback()
            writes = factory is self._sessions or getattr(factory, "writes", False)
            clearer = self._core.translate(error, s.get_bind, writes)
            if clearer is None:
                raise
            raise clearer from error
        finally:
            await s.close()

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

        return await acall_with_retries(
            attempt,
            is_transient=self._core.retryable(idempotent),
            retries=retries,
            max_seconds=max_seconds,
            on_retry=self._core.on_retry(),
        )

    def is_transient(self, error: BaseException) -> bool:
        """Whether retrying a unit of work that raised ``error`` may succeed."""
        return is_transient(self.backend, error)

    # -- operations: the sync ones, off the event loop --------------------------------

    async def health(self, *, migrations: MigrationState | None = None) -> HealthReport:
        """As ``Database.health``: the same probes, on a worker thread."""
        return await asyncio.to_thread(self._core.health, migrations)

    def metrics(self) -> dict[str, Any]:
        """As ``Database.metrics``."""
        return self._core.metrics.snapshot()

    def reset_metrics(self) -> None:
        """Start counting from zero."""
        self._core.metrics.reset()

    async def backup(self, path: str | Path, **options: Any) -> BackupManifest:
        """As ``Database.backup``, on a worker thread (the dump tools run as processes)."""
        return await self._on_sync_twin(lambda db: db.backup(path, **options))

    async def restore(self, path: str | Path, **options: Any) -> RestoreReport:
        """As ``Database.restore``, on a worker thread."""
        return await self._on_sync_twin(lambda db: db.restore(path, **options))

    async def _on_sync_twin(self, work: Callable[[Database], T]) -> T:
        """Run ``work`` on a worker thread with a ``Database`` of the same settings,
        closed afterwards."""

        def run() -> T:
            with Database(self.settings, self.backend, self.plugins) as db:
                return work(db)

        return await asyncio.to_thread(run)

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
        self._core.dispose()

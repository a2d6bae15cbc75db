"""``connect_async()`` and ``AsyncDatabase``: the awaitable twin of ``Database``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import exc, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storelayer._conflicts import conflict_from, one_line
from storelayer._engines import READ_ONLY_OPTION, engine_options, instrument, is_transient
from storelayer._retry import acall_with_retries
from storelayer.aio._session import AsyncSession
from storelayer.backend import Backend
from storelayer.config import Settings, mask_url
from storelayer.database import HealthReport
from storelayer.errors import StorelayerError
from storelayer.plugins import PluginManager, get_plugin_manager
from storelayer.session import session_info

T = TypeVar("T")


def connect_async(
    url: str | URL | None = None,
    *,
    replicas: list[str | URL] | None = None,
    backend: str | None = None,
    plugins: PluginManager | None = None,
    **settings: Any,
) -> AsyncDatabase:
    """Open an ``AsyncDatabase``: the same ``DATABASE_URL`` and settings as
    ``connect()``, served by the backend's async driver."""
    if replicas is not None:
        settings["replicas"] = replicas
    resolved = Settings.from_env(url, backend=backend, **settings)
    manager = plugins or get_plugin_manager()
    chosen = manager.resolve(resolved.url.drivername, resolved.backend)
    return AsyncDatabase(resolved, chosen, manager)


class AsyncDatabase:
    """Async engine and awaitable units of work for one configured database."""

    def __init__(self, settings: Settings, backend: Backend, plugins: PluginManager) -> None:
        self.settings = settings
        self.backend = backend
        self.plugins = plugins
        self.url = backend.async_url(backend.normalize_url(settings.url))
        self.engine = self._create_engine(self.url, "primary")
        self._sessions = self._factory(self.engine)
        self._read_sessions = self._factory(
            self.engine.execution_options(**{READ_ONLY_OPTION: True})
        )

    def _create_engine(self, url: URL, role: str) -> AsyncEngine:
        options = engine_options(self.backend, url, self.settings, is_async=True)
        engine = create_async_engine(url, **options)
        instrument(engine.sync_engine, self.backend, self.plugins, url, role)
        return engine

    def _factory(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(
            engine, class_=AsyncSession, expire_on_commit=False, info=session_info(self.backend)
        )

    def __repr__(self) -> str:
        return f"<AsyncDatabase backend={self.backend.name!r} url={mask_url(self.url)!r}>"

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A read-write unit of work: committed at the end, rolled back on error."""
        async with self._unit_of_work(self._sessions) as s:
            yield s

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work."""
        async with self._unit_of_work(self._read_sessions) as s:
            yield s

    @asynccontextmanager
    async def _unit_of_work(
        self, factory: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        s = factory()
        try:
            yield s
            await s.commit()
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
    ) -> T:
        """Await ``fn(session)`` in its own unit of work, retried as a whole on errors
        the backend calls transient (see ``Database.run_in_transaction``)."""

        async def attempt() -> T:
            async with self.session() as s:
                return await fn(s)

        return await acall_with_retries(
            attempt, is_transient=self.is_transient, retries=retries, max_seconds=max_seconds
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
                version = await conn.run_sync(self.backend.server_version)
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

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

"""``connect_async()`` and ``AsyncDatabase``: the awaitable twin of ``Database``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import exc, orm
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from storelayer._attempts import arun_attempts
from storelayer._core import resolve
from storelayer._retry import RetryPolicy, acall_with_retries
from storelayer._units import (
    acommit_or_unknown,
    asking,
    before_commit,
    decided,
    known_outcome,
)
from storelayer.aio._routing import AsyncRouting
from storelayer.aio._rows import AsyncRows, arun
from storelayer.aio._session import AsyncSession
from storelayer.database import Database, DatabaseBase
from storelayer.errors import StorelayerError
from storelayer.health import HealthReport, MigrationState
from storelayer.plugins import PluginManager
from storelayer.repository._plans import Plan, stream_needs_unit
from storelayer.routing import ConsistencyToken, RoutingPolicy

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
    retry: RetryPolicy | None = None,
    **settings: Any,
) -> AsyncDatabase:
    """Open an ``AsyncDatabase``: the same ``DATABASE_URL``, settings, ``routing`` and
    ``retry`` as ``connect()``, served by the backend's async driver."""
    resolved, chosen, manager = resolve(url, replicas, backend, plugins, settings)
    return AsyncDatabase(resolved, chosen, manager, routing=routing, retry=retry)


def _commit_and_close(session: orm.Session, /) -> None:
    """The end of a read unit: its COMMIT, then the close, in one call into the
    session's greenlet (each awaited session method switches into one of its own)."""
    session.commit()
    session.close()


class AsyncDatabase(DatabaseBase[AsyncEngine]):
    """Async engines and awaitable units of work for one configured database: the
    ``Database`` of the same settings, over the same ``EngineCore`` (metrics, health,
    errors, retries), with awaitable units of work."""

    _is_async = True
    _session_class = AsyncSession
    _maker = async_sessionmaker
    _routing_class = AsyncRouting

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()

    @asynccontextmanager
    async def session(
        self,
        *,
        using: str | None = None,
        token: str | ConsistencyToken | None = None,
        isolation: str | None = None,
    ) -> AsyncIterator[AsyncSession]:
        """A read-write unit of work: committed at the end, rolled back on error;
        ``using`` and ``isolation`` as in ``Database.session``."""
        plain, _, routing = self._routed_writes(isolation)
        routed = await self._routing.factory(using, token, **routing)
        async with self._unit_of_work(routed or plain, writes=True) as s:
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
        async with self._unit_of_work(routed or plain, writes=bool(routed and routed.writes)) as s:
            yield s

    @asynccontextmanager
    async def _unit_of_work(
        self, factory: Callable[[], AsyncSession], writes: bool
    ) -> AsyncIterator[AsyncSession]:
        s = factory()
        closed = False
        try:
            yield s
            marker = None
            if writes:  # a read unit's COMMIT flushes what little it may hold
                with before_commit(self.url):  # no doubt: COMMIT was not sent
                    await s.flush()
                    marker = await s.run_sync(self._core.commit_marker)
            await acommit_or_unknown(
                s.commit if writes else partial(s.run_sync, _commit_and_close),
                self.url,
                known_outcome(writes, self.backend, marker),
                partial(self._outcome, marker),
            )
            closed = not writes
        except BaseException as error:
            with suppress(exc.DBAPIError):  # the connection died; the pool invalidated it
                await s.rollback()
            clearer = self._core.translate(error, s.get_bind, writes)
            if clearer is None:
                raise
            raise clearer from error
        finally:
            if not closed:
                await s.close()

    async def _outcome(self, marker: Any) -> bool | None:
        """As ``Database._outcome``, awaited."""

        async def ask() -> bool:
            async with self.engine.connect() as connection:
                return decided(await connection.run_sync(self.backend.ops.committed, marker))

        try:
            return await acall_with_retries(ask, **asking(self.backend, self.retry_policy))
        except (StorelayerError, exc.SQLAlchemyError):
            return None

    async def run_in_transaction(
        self,
        fn: Callable[[AsyncSession], Awaitable[T]],
        *,
        isolation: str | None = "serializable",
        retry: RetryPolicy | None = None,
        retries: int | None = None,
        max_seconds: float | None = None,
        idempotent: bool = False,
    ) -> T:
        """Await ``fn(session)`` in its own unit of work, retried as a whole on errors
        the backend calls transient, at ``isolation``; ``CommitOutcomeUnknown`` is
        retried only when ``idempotent`` (see ``Database.run_in_transaction``)."""

        plan = self._retrying(retry, retries, max_seconds, idempotent)
        routed = await self._routing.factory(None, None, **self._routed_writes(isolation)[2])
        return await arun_attempts(self._held(isolation, routed), self._unit_of_work, fn, plan)

    # -- operations: the sync ones, off the event loop --------------------------------

    async def health(self, *, migrations: MigrationState | None = None) -> HealthReport:
        """As ``Database.health``: the same probes, on a worker thread."""
        return await asyncio.to_thread(self._core.health, migrations)

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
            with Database(self.settings, self.backend, self.plugins, retry=self.retry_policy) as db:
                return work(db)

        return await asyncio.to_thread(run)

    def rows(self, model: type[T]) -> AsyncRows[T]:
        """Reads of ``model`` returning ``Row`` objects, each call a read of its own:
        the twin of ``Database.rows``."""
        return AsyncRows(model, self._read_plan, stream_needs_unit)

    async def _read_plan(self, plan: Plan) -> Any:
        if self._routing.engines:
            async with self.read_session(autocommit=True) as s:
                return await arun(plan, (await s.connection()).execute)
        try:
            async with self._rows_engine.connect() as connection:
                return await arun(plan, connection.execute)
        except (exc.TimeoutError, exc.DBAPIError) as error:
            clearer = self._connect_failed(error)
            if clearer is error:
                raise
            raise clearer from error

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._routing.dispose()
        await self.engine.dispose()
        self._core.dispose()

"""``storelayer.compat.aio.connection``: ``DatabaseConfig`` and the
``DatabaseConnectionManager`` of the async Database API, over ``connect_async()``."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import async_sessionmaker

from storelayer._conflicts import conflicts_raised
from storelayer.aio import AsyncDatabase, AsyncSession, connect_async
from storelayer.compat.aio.models import Base
from storelayer.session import session_info

__all__ = ["DatabaseConfig", "DatabaseConnectionManager", "ManagedSession",
           "get_connection_manager"]


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the database is and how to pool connections to it. ``pool_pre_ping``
    and ``pool_reset_on_return`` go to SQLAlchemy's engine; ``echo_sql`` logs SQL;
    ``slow_query_ms`` is the duration from which a statement is kept as slow (see
    ``DatabaseMonitor.get_slow_queries``)."""

    url: str
    pool_size: int | None = None
    max_overflow: int | None = None
    pool_timeout: float | None = None
    pool_recycle: int | None = None
    pool_pre_ping: bool = True
    pool_reset_on_return: str | None = None
    echo_sql: bool = False
    slow_query_ms: float | None = None

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of ``connect_async()``."""
        chosen: dict[str, Any] = {
            "pool_size": self.pool_size,
            "max_overflow": self.max_overflow,
            "pool_timeout": self.pool_timeout,
            "pool_recycle": self.pool_recycle,
            "slow_statement_ms": self.slow_query_ms,
        }
        settings = {name: value for name, value in chosen.items() if value is not None}
        engine: dict[str, Any] = {"pool_pre_ping": self.pool_pre_ping}
        if self.pool_reset_on_return is not None:
            engine["pool_reset_on_return"] = self.pool_reset_on_return
        return {**settings, "echo": self.echo_sql, "engine_options": engine}


class ManagedSession(AsyncSession):
    """An ``AsyncSession`` that, used as ``async with``, is a unit of work: committed
    when the block ends, rolled back on an error, closed either way. Used without
    ``async with`` it is a plain session (``commit()``, ``rollback()``, ``close()``)."""

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                with conflicts_raised(self.backend):
                    await self.commit()
            else:
                await self.rollback()
        finally:
            await self.close()


class DatabaseConnectionManager:
    """One database for the async API: ``await initialize()`` opens it and creates the
    tables of ``metadata`` (default: every ``BaseModel``'s) that are missing;
    ``get_session()`` gives a ``ManagedSession``; ``await health_check()`` says whether
    it answers; ``await close()`` closes the pool."""

    def __init__(self, config: DatabaseConfig, *, metadata: MetaData | None = None) -> None:
        self.config = config
        self.metadata = metadata if metadata is not None else Base.metadata
        self._database: AsyncDatabase | None = None
        self._sessions: async_sessionmaker[ManagedSession] | None = None

    def __repr__(self) -> str:
        state = "open" if self._database is not None else "not open"
        return f"<DatabaseConnectionManager {state}>"

    @property
    def database(self) -> AsyncDatabase:
        """The ``AsyncDatabase``, opened on first use."""
        if self._database is None:
            self._database = connect_async(self.config.url, **self.config.settings())
            self._sessions = async_sessionmaker(
                self._database.engine,
                class_=ManagedSession,
                expire_on_commit=False,
                info=session_info(self._database.backend),
            )
        return self._database

    async def initialize(self, *, create_tables: bool = True) -> None:
        """Open the database and create the missing tables of ``metadata``."""
        if create_tables:
            async with self.database.engine.begin() as connection:
                await connection.run_sync(self.metadata.create_all)

    def get_session(self) -> ManagedSession:
        """A new session: ``async with manager.get_session() as session`` (a unit of
        work), or ``session = manager.get_session()`` (commit and close are yours)."""
        _ = self.database
        assert self._sessions is not None
        return self._sessions()

    async def health_check(self) -> bool:
        """Whether the database answers (``AsyncDatabase.health()`` has the details)."""
        return (await self.database.health()).healthy

    async def close(self) -> None:
        """Close every pooled connection (the manager opens them again on use)."""
        if self._database is not None:
            database, self._database = self._database, None
            await database.dispose()


_managers: dict[DatabaseConfig, DatabaseConnectionManager] = {}


def get_connection_manager(config: DatabaseConfig) -> DatabaseConnectionManager:
    """The one manager of ``config`` (made on first call)."""
    if config not in _managers:
        _managers[config] = DatabaseConnectionManager(config)
    return _managers[config]

"""The awaitable unit-of-work session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext import asyncio as sa_asyncio

from storelayer._engines import BACKEND_KEY
from storelayer.session import Session

if TYPE_CHECKING:
    from storelayer.aio._repository import AsyncRepository
    from storelayer.backend import Backend

T = TypeVar("T")


class AsyncSession(sa_asyncio.AsyncSession):
    """SQLAlchemy's ``AsyncSession`` over a storelayer ``Session``."""

    sync_session_class = Session

    @property
    def backend(self) -> Backend:
        """The backend serving this session."""
        backend: Backend = self.info[BACKEND_KEY]
        return backend

    def repository(self, model: type[T]) -> AsyncRepository[T]:
        """The awaitable repository of ``model`` in this unit of work."""
        from storelayer.aio._repository import AsyncRepository

        return AsyncRepository(self, model)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[Any]:
        """A nested transaction, rolled back alone when its block raises."""
        async with self.begin_nested() as nested:
            yield nested

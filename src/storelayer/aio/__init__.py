"""The async API: ``connect_async()``, ``AsyncDatabase``, ``AsyncSession`` and
``AsyncRepository`` — the sync contract, awaitable, from the same implementation."""

from storelayer.aio._database import AsyncDatabase, connect_async
from storelayer.aio._repository import AsyncRepository
from storelayer.aio._session import AsyncSession

__all__ = ["AsyncDatabase", "AsyncRepository", "AsyncSession", "connect_async"]

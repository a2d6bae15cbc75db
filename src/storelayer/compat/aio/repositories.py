"""``storelayer.compat.aio.repositories``: ``BaseRepository`` is storelayer's
``AsyncRepository`` (``create``, ``get_by_id``, ``get_by_id_or_raise``, ``update``,
``delete``, ``list``, ``count``...)."""

from __future__ import annotations

from typing import TypeVar

from storelayer.aio import AsyncRepository

__all__ = ["BaseRepository"]

T = TypeVar("T")


class BaseRepository(AsyncRepository[T]):
    """``AsyncRepository`` under the async Database API's name: subclass it with
    ``super().__init__(session, Model)`` and add domain methods."""

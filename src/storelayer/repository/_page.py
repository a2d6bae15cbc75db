"""Result pages: offset pages with an optional total, and keyset (cursor) pages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: The largest page size served; larger requests are capped to it.
MAX_PER_PAGE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of an offset pagination. ``total`` and ``pages`` are None when the page
    was asked for with ``count=False`` (no ``COUNT(*)`` on large tables)."""

    items: list[T]
    total: int | None
    page: int
    per_page: int
    pages: int | None
    has_next: bool
    has_prev: bool


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    """One page of a keyset pagination; pass ``next_cursor`` as ``after`` for the next."""

    items: list[T]
    next_cursor: str | None
    has_next: bool


def clamp_page(page: int, per_page: int) -> tuple[int, int]:
    """A page number of at least 1 and a page size between 1 and ``MAX_PER_PAGE``."""
    return max(1, int(page)), min(max(1, int(per_page)), MAX_PER_PAGE)


def offset_page(rows: list[T], *, page: int, per_page: int, total: int | None) -> Page[T]:
    """Build a ``Page`` from up to ``per_page + 1`` fetched rows."""
    has_next = len(rows) > per_page
    items = rows[:per_page]
    pages = math.ceil(total / per_page) if total is not None else None
    return Page(items, total, page, per_page, pages, has_next, page > 1)

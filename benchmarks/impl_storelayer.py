"""storelayer through its public API only: ``storelayer.connect(url)``, ``db.session()``
for writes, ``db.read_session(autocommit=True)`` for reads that need no transaction
(``read_session()`` for streaming), and the generic repository
(``bulk_create``, ``get``, ``list``, ``count``, ``upsert_many``, ``stream``).

While the repository package (``storelayer.repository``) does not exist yet, or a
backend plugin is not installed, every operation reports why instead of a time."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar

from benchmarks.impl_base import Implementation, Unavailable
from benchmarks.schema import BenchItem
from benchmarks.workload import CountQuery, Expected, PageQuery, Row

T = TypeVar("T")


def _method(repo: Any, name: str) -> Callable[..., Any]:
    """``repo.<name>``, or ``Unavailable`` when the repository does not offer it."""
    method = getattr(repo, name, None)
    if method is None:
        raise Unavailable(f"not implemented (Repository.{name})")
    return method  # type: ignore[no-any-return]


def _call(fn: Callable[[], T]) -> T:
    """Run ``fn``, turning ``NotImplementedError`` into ``Unavailable``."""
    try:
        return fn()
    except NotImplementedError as error:
        raise Unavailable(f"not implemented ({error})") from error


class StorelayerImplementation(Implementation):
    """storelayer's public API, with the backend plugin's own tuning."""

    name = "storelayer"

    def open(self) -> None:
        if importlib.util.find_spec("storelayer.repository") is None:
            raise Unavailable("not implemented (no storelayer.repository)")
        import storelayer

        try:
            self.db = storelayer.connect(self.target.storelayer_url())
        except storelayer.StorelayerError as error:
            raise Unavailable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        self.db.dispose()

    def insert(self, rows: list[Row]) -> None:
        with self.db.session() as s:
            bulk_create = _method(s.repository(BenchItem), "bulk_create")
            _call(lambda: bulk_create(rows))

    def get_one(self, id_: int) -> int | None:
        with self.db.read_session(autocommit=True) as s:
            item = s.repository(BenchItem).get(id_)
        return None if item is None else item.quantity

    def page(self, q: PageQuery) -> list[int]:
        with self.db.read_session(autocommit=True) as s:
            items = s.repository(BenchItem).list(
                category=q.category, price__gte=q.min_price,
                order_by="-id", limit=q.limit, offset=q.offset,
            )
        return [item.id for item in items]

    def count(self, q: CountQuery) -> int:
        with self.db.read_session(autocommit=True) as s:
            count: int = s.repository(BenchItem).count(
                category=q.category, quantity__gte=q.min_quantity
            )
        return count

    def upsert(self, rows: list[Row]) -> None:
        with self.db.session() as s:
            upsert_many = _method(s.repository(BenchItem), "upsert_many")
            _call(lambda: upsert_many(rows, on=["name"]))

    def stream(self, batch_size: int) -> Expected:
        rows = total = 0
        with self.db.read_session() as s:
            stream = _method(s.repository(BenchItem), "stream")
            for item in _call(lambda: stream(batch_size=batch_size)):
                rows += 1
                total += item.quantity
        return Expected(rows, total)

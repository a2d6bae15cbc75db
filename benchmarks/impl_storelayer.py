"""storelayer through its public API only: ``storelayer.connect(url)``, ``db.session()``
for writes, ``db.read_session(autocommit=True)`` for reads that need no transaction
(``read_session()`` for streaming), and the generic repository
(``bulk_create``, ``get``, ``list``, ``count``, ``upsert_many``, ``stream``). When a
backend plugin is not installed, or a backend does not implement an operation, the
operation reports why instead of a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from benchmarks.impl_base import Implementation, Unavailable, tally
from benchmarks.schema import BenchItem
from benchmarks.workload import CountQuery, Expected, PageQuery, Row

T = TypeVar("T")


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
        import storelayer

        try:
            self.db = storelayer.connect(self.target.storelayer_url())
        except storelayer.StorelayerError as error:
            raise Unavailable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        self.db.dispose()

    def insert(self, rows: list[Row]) -> None:
        with self.db.session() as s:
            _call(lambda: s.repository(BenchItem).bulk_create(rows))

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
            _call(lambda: s.repository(BenchItem).upsert_many(rows, on=["name"]))

    def stream(self, batch_size: int) -> Expected:
        with self.db.read_session() as s:
            items = _call(lambda: s.repository(BenchItem).stream(batch_size=batch_size))
            return tally(item.quantity for item in items)


class StorelayerRowsImplementation(StorelayerImplementation):
    """storelayer's recommended read path (docs/performance.md): ``db.rows(Model)`` for
    a read of its own, ``repo.rows`` in a unit of work (SQLAlchemy ``Row`` objects, no
    ORM instances)."""

    name = "storelayer_rows"

    def get_one(self, id_: int) -> int | None:
        row = self.db.rows(BenchItem).get(id_)
        return None if row is None else row.quantity

    def page(self, q: PageQuery) -> list[int]:
        rows = self.db.rows(BenchItem).list(
            category=q.category, price__gte=q.min_price,
            order_by="-id", limit=q.limit, offset=q.offset,
        )
        return [row.id for row in rows]

    def count(self, q: CountQuery) -> int:
        return self.db.rows(BenchItem).count(category=q.category, quantity__gte=q.min_quantity)

    def stream(self, batch_size: int) -> Expected:
        with self.db.read_session() as s:
            rows = s.repository(BenchItem).rows.stream(batch_size=batch_size)
            return tally(row.quantity for row in rows)


class AsyncStorelayerRowsImplementation(Implementation):
    """The async twin of ``storelayer_rows`` (``storelayer.connect_async``, awaited on
    an event loop this object owns), for the operations the growth benchmark measures:
    ``count`` (the warm-up) and ``stream``. Not in the main suite's list; run it by
    its ``module:class`` path."""

    name = "storelayer_rows_async"

    def open(self) -> None:
        import asyncio

        import storelayer

        self.loop = asyncio.new_event_loop()
        try:
            self.db = storelayer.connect_async(self.target.storelayer_url())
        except storelayer.StorelayerError as error:
            self.loop.close()
            raise Unavailable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        self.loop.run_until_complete(self.db.dispose())
        self.loop.close()

    def count(self, q: CountQuery) -> int:
        counting = self.db.rows(BenchItem).count(category=q.category, quantity__gte=q.min_quantity)
        count: int = self.loop.run_until_complete(counting)
        return count

    def stream(self, batch_size: int) -> Expected:
        async def read() -> Expected:
            rows = total = 0
            async with self.db.read_session() as s:
                async for row in s.repository(BenchItem).rows.stream(batch_size=batch_size):
                    rows += 1
                    total += row.quantity
            return Expected(rows, total)

        return self.loop.run_until_complete(read())

"""advanced-alchemy's ``SQLAlchemySyncRepository`` over the same model and a plain
engine: ``add_many``, ``get``, ``get_many`` with ``OrderBy``/``LimitOffset`` filters,
``count`` and ``upsert_many(match_fields=["name"])``, one session per unit of work.
The repository has no streaming method (``get_many`` returns a list), so ``stream``
reports that instead of timing a fully materialised list."""

from __future__ import annotations

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemySyncRepository
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.impl_base import Implementation, Unavailable
from benchmarks.impl_core import new_engine
from benchmarks.schema import BenchItem
from benchmarks.workload import CountQuery, Expected, PageQuery, Row


class ItemRepository(SQLAlchemySyncRepository[BenchItem]):
    """The repository of ``BenchItem``."""

    model_type = BenchItem


class AdvancedAlchemyImplementation(Implementation):
    """advanced-alchemy repositories; the session commits each unit of work."""

    name = "advanced_alchemy"

    def open(self) -> None:
        self.engine = new_engine(self.target.url())
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def _repo(self, session: Session) -> ItemRepository:
        return ItemRepository(session=session)

    def insert(self, rows: list[Row]) -> None:
        with self.sessions.begin() as s:
            self._repo(s).add_many([BenchItem(**row) for row in rows])

    def get_by_id(self, ids: list[int]) -> Expected:
        found = total = 0
        for id_ in ids:
            with self.sessions.begin() as s:
                item = self._repo(s).get(id_)
            found += 1
            total += item.quantity
        return Expected(found, total)

    def pages(self, queries: list[PageQuery]) -> Expected:
        rows = total = 0
        for q in queries:
            with self.sessions.begin() as s:
                items = self._repo(s).get_many(
                    BenchItem.category == q.category,
                    BenchItem.price >= q.min_price,
                    OrderBy(field_name="id", sort_order="desc"),
                    LimitOffset(limit=q.limit, offset=q.offset),
                )
            rows += len(items)
            total += sum(item.id for item in items)
        return Expected(rows, total)

    def counts(self, queries: list[CountQuery]) -> int:
        total = 0
        for q in queries:
            with self.sessions.begin() as s:
                total += self._repo(s).count(
                    BenchItem.category == q.category, BenchItem.quantity >= q.min_quantity
                )
        return total

    def upsert(self, rows: list[Row]) -> None:
        with self.sessions.begin() as s:
            self._repo(s).upsert_many([BenchItem(**row) for row in rows], match_fields=["name"])

    def stream(self, batch_size: int) -> Expected:
        raise Unavailable("no streaming API (get_many returns a list)")

"""advanced-alchemy's ``SQLAlchemySyncRepository`` over the same model and a plain
engine: ``add_many``, ``get``, ``get_many`` with ``OrderBy``/``LimitOffset`` filters,
``count`` and ``upsert_many(match_fields=["name"])``, one session per unit of work.
The repository has no streaming method (``get_many`` returns a list), so ``stream``
reports that instead of timing a fully materialised list."""

from __future__ import annotations

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemySyncRepository
from sqlalchemy.orm import Session

from benchmarks.impl_base import Unavailable
from benchmarks.impl_orm import OrmImplementation
from benchmarks.schema import BenchItem
from benchmarks.workload import CountQuery, Expected, PageQuery, Row


class ItemRepository(SQLAlchemySyncRepository[BenchItem]):
    """The repository of ``BenchItem``."""

    model_type = BenchItem


class AdvancedAlchemyImplementation(OrmImplementation):
    """advanced-alchemy repositories on the ORM implementation's engine and sessions;
    the session commits each unit of work."""

    name = "advanced_alchemy"

    def _repo(self, session: Session) -> ItemRepository:
        return ItemRepository(session=session)

    def insert(self, rows: list[Row]) -> None:
        with self.sessions.begin() as s:
            self._repo(s).add_many([BenchItem(**row) for row in rows])

    def get_one(self, id_: int) -> int | None:
        with self.sessions.begin() as s:
            quantity: int = self._repo(s).get(id_).quantity
        return quantity

    def page(self, q: PageQuery) -> list[int]:
        with self.sessions.begin() as s:
            items = self._repo(s).get_many(
                BenchItem.category == q.category,
                BenchItem.price >= q.min_price,
                OrderBy(field_name="id", sort_order="desc"),
                LimitOffset(limit=q.limit, offset=q.offset),
            )
        return [item.id for item in items]

    def count(self, q: CountQuery) -> int:
        with self.sessions.begin() as s:
            return self._repo(s).count(
                BenchItem.category == q.category, BenchItem.quantity >= q.min_quantity
            )

    def upsert(self, rows: list[Row]) -> None:
        with self.sessions.begin() as s:
            self._repo(s).upsert_many([BenchItem(**row) for row in rows], match_fields=["name"])

    def stream(self, batch_size: int) -> Expected:
        raise Unavailable("no streaming API (get_many returns a list)")

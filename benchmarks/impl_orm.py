"""SQLAlchemy ORM through a ``Session``: objects in, objects out. Inserts go through the
unit of work (``add_all`` + flush, which SQLAlchemy 2 batches with insertmanyvalues);
the upsert is the documented ORM-enabled dialect ``insert()`` executed with a list of
dicts; streaming uses ``yield_per``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from benchmarks.impl_base import Implementation, tally
from benchmarks.impl_core import count_statement, new_engine, page_statement, upsert_statement
from benchmarks.schema import BenchItem
from benchmarks.workload import CountQuery, Expected, PageQuery, Row


class OrmImplementation(Implementation):
    """SQLAlchemy ORM sessions on a plain engine."""

    name = "orm"

    def open(self) -> None:
        self.engine = new_engine(self.target.url())
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def insert(self, rows: list[Row]) -> None:
        with self.sessions.begin() as s:
            s.add_all([BenchItem(**row) for row in rows])

    def get_one(self, id_: int) -> int | None:
        with self.sessions.begin() as s:
            item = s.get(BenchItem, id_)
        return None if item is None else item.quantity

    def page(self, q: PageQuery) -> list[int]:
        with self.sessions.begin() as s:
            items = s.scalars(page_statement(q, BenchItem)).all()
        return [item.id for item in items]

    def count(self, q: CountQuery) -> int:
        with self.sessions.begin() as s:
            count: int = s.execute(count_statement(q)).scalar_one()
        return count

    def upsert(self, rows: list[Row]) -> None:
        stmt = upsert_statement(self.engine.dialect.name, [BenchItem.name], BenchItem)
        with self.sessions.begin() as s:
            s.execute(stmt, rows)

    def stream(self, batch_size: int) -> Expected:
        with self.sessions.begin() as s:
            query = select(BenchItem).execution_options(yield_per=batch_size)
            return tally(item.quantity for item in s.scalars(query))

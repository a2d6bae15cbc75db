"""Hand-written SQLAlchemy Core: ``Connection.execute`` with Table constructs, the way
an experienced SQLAlchemy user writes it (executemany inserts, dialect ``insert()`` for
upserts, ``yield_per`` for streaming)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Insert, create_engine, func, select

from benchmarks.impl_base import Implementation, Unavailable, tally
from benchmarks.schema import UPDATE_COLUMNS, bench_item, tune_sqlite_connections
from benchmarks.workload import CountQuery, Expected, PageQuery, Row

t = bench_item.c


def new_engine(url: Any) -> Engine:
    """A default-configured engine, with the shared SQLite pragmas."""
    engine = create_engine(url)
    tune_sqlite_connections(engine)
    return engine


def upsert_statement(dialect: str, index_elements: list[Any], target: Any) -> Insert:
    """``INSERT ... ON CONFLICT / ON DUPLICATE KEY`` updating ``UPDATE_COLUMNS``, for
    ``target`` (a Table or a mapped class), executed with a list of parameter dicts."""
    if dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        my = mysql_insert(target)
        return my.on_duplicate_key_update({c: my.inserted[c] for c in UPDATE_COLUMNS})
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect_module
    elif dialect == "sqlite":
        from sqlalchemy.dialects import sqlite as dialect_module  # type: ignore[no-redef]
    else:
        raise Unavailable(f"no upsert construct for {dialect}")
    stmt = dialect_module.insert(target)
    return stmt.on_conflict_do_update(
        index_elements=index_elements, set_={c: stmt.excluded[c] for c in UPDATE_COLUMNS}
    )


def page_statement(q: PageQuery, entity: Any = bench_item) -> Any:
    """The page query as a ``Select`` of ``entity``."""
    return (
        select(entity)
        .where(t.category == q.category, t.price >= q.min_price)
        .order_by(t.id.desc())
        .limit(q.limit)
        .offset(q.offset)
    )


def count_statement(q: CountQuery) -> Any:
    """The count query as a ``Select``."""
    return (
        select(func.count())
        .select_from(bench_item)
        .where(t.category == q.category, t.quantity >= q.min_quantity)
    )


class CoreImplementation(Implementation):
    """SQLAlchemy Core on a plain engine."""

    name = "core"

    def open(self) -> None:
        self.engine = new_engine(self.target.url())

    def close(self) -> None:
        self.engine.dispose()

    def insert(self, rows: list[Row]) -> None:
        with self.engine.begin() as conn:
            conn.execute(bench_item.insert(), rows)

    def get_one(self, id_: int) -> int | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(bench_item).where(t.id == id_)).first()
        return None if row is None else row.quantity

    def page(self, q: PageQuery) -> list[int]:
        with self.engine.begin() as conn:
            return [row.id for row in conn.execute(page_statement(q)).all()]

    def count(self, q: CountQuery) -> int:
        with self.engine.begin() as conn:
            count: int = conn.execute(count_statement(q)).scalar_one()
        return count

    def upsert(self, rows: list[Row]) -> None:
        stmt = upsert_statement(self.engine.dialect.name, [t.name], bench_item)
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)

    def stream(self, batch_size: int) -> Expected:
        # One row at a time, as the ORM, Django and storelayer streams are consumed.
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(select(bench_item))
            return tally(row.quantity for row in result)

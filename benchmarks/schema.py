"""The one benchmark table, as a SQLAlchemy model (used by Core, ORM, advanced-alchemy
and storelayer), plus the DDL that resets it between operations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Engine, Integer, Numeric, String, Table, event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TABLE = "bench_item"
#: Columns written by every insert, in this order (``id`` is generated).
INSERT_COLUMNS = ("name", "category", "price", "quantity", "created_at")
#: Columns every read fetches, in this order.
SELECT_COLUMNS = ("id", *INSERT_COLUMNS)
#: Columns an upsert overwrites when ``name`` already exists.
UPDATE_COLUMNS = ("category", "price", "quantity", "created_at")


class Base(DeclarativeBase):
    """Declarative base of the benchmark model."""


class BenchItem(Base):
    """``bench_item``: the single table every implementation reads and writes."""

    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    category: Mapped[str] = mapped_column(String(20), index=True, nullable=False)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    def __repr__(self) -> str:
        return f"<BenchItem id={self.id} name={self.name!r}>"


bench_item: Table = BenchItem.__table__  # type: ignore[assignment]


def reset_table(engine: Engine) -> None:
    """Drop and recreate ``bench_item`` (empty; identity restarts at 1)."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)


def table_summary(engine: Engine) -> tuple[int, int]:
    """``(row count, sum of quantity)`` of ``bench_item``."""
    query = select(func.count(), func.coalesce(func.sum(bench_item.c.quantity), 0))
    with engine.connect() as conn:
        count, total = conn.execute(query).one()
    return int(count), int(total)


#: The per-connection settings storelayer's SQLite backend uses (WAL is a property of
#: the file), given to every implementation.
SQLITE_PRAGMAS = ("PRAGMA synchronous=NORMAL", "PRAGMA temp_store=MEMORY")


def tune_sqlite_connections(engine: Engine) -> None:
    """Give a plain SQLAlchemy engine on SQLite the per-connection settings storelayer's
    SQLite backend uses (``SQLITE_PRAGMAS``), so the implementations differ in code,
    not in durability or storage settings."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

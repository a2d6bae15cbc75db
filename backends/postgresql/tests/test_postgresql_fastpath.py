"""COPY inserts and paged upserts write exactly what the generic path would."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    LargeBinary,
    Numeric,
    String,
    Text,
    Uuid,
    event,
    select,
)
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from storelayer import Database
from storelayer.testing import Provisioner, provision_or_skip
from storelayer_postgresql import fastpath

TRICKY = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "", "emoji 🎉", None]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "fastpath_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    note: Mapped[str | None] = mapped_column(String(100), nullable=True)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal("1.5"))
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    data: Mapped[Any] = mapped_column(JSON, nullable=True)
    ref: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.uuid4)
    flag: Mapped[bool] = mapped_column(default=False)
    at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


@pytest.fixture
def database(storelayer_provisioner: Provisioner) -> Iterator[Database]:
    backend = storelayer.get_plugin_manager().backends()["postgresql"]
    url: URL = provision_or_skip(storelayer_provisioner, backend)
    db = storelayer.connect(url)
    Base.metadata.create_all(db.engine)
    yield db
    Base.metadata.drop_all(db.engine)
    db.dispose()


def statements_through_sqlalchemy(db: Database) -> list[str]:
    """The first word of each statement the unit sends, its commit marker left out."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        if "storelayer.commit_markers" not in args[2]:
            seen.append(args[2].split()[0])

    event.listen(db.engine, "before_cursor_execute", note)
    return seen


def rows() -> list[dict[str, Any]]:
    return [
        {
            "name": f"n{i}",
            "note": note,
            "blob": bytes([i, 0, 255]),
            "data": {"i": i, "s": "a\tb"},
            "flag": i % 2 == 0,
            "at": dt.datetime(2024, 1, 1, 12, 0, i),
        }
        for i, note in enumerate(TRICKY)
    ]


def read_back(db: Database) -> list[tuple[Any, ...]]:
    with db.read_session() as s:
        return [
            (i.name, i.note, i.price, i.blob, i.data, i.flag, i.at, isinstance(i.ref, uuid.UUID))
            for i in s.repository(Item).list(order_by="name")
        ]


def expected() -> list[tuple[Any, ...]]:
    return sorted(
        (r["name"], r["note"], Decimal("1.5000"), r["blob"], r["data"], r["flag"], r["at"], True)
        for r in rows()
    )


def test_bulk_create_copies_every_value_exactly(database: Database) -> None:
    seen = statements_through_sqlalchemy(database)
    with database.session() as s:
        assert s.repository(Item).bulk_create(rows()) == len(TRICKY)
    assert "INSERT" not in seen  # the rows went through COPY
    assert read_back(database) == expected()


def test_upsert_pages_rows_and_applies_defaults(database: Database) -> None:
    seen = statements_through_sqlalchemy(database)
    with database.session() as s:
        s.repository(Item).upsert_many(rows(), on=["name"])
        s.repository(Item).upsert_many([{"name": "n0", "note": "changed"}], on=["name"])
    assert "INSERT" not in seen
    got = read_back(database)
    assert got[0][1] == "changed"
    assert got[1:] == expected()[1:]


# Property: COPY writes exactly what SQLAlchemy's own executemany writes, whatever the
# values. Two tables of one shape: one filled by COPY, the other by ``insert()``.
class Mixed(Base):
    __tablename__ = "fastpath_mixed"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    real: Mapped[float | None] = mapped_column(Double, nullable=True)
    exact: Mapped[Decimal | None] = mapped_column(Numeric(30, 10), nullable=True)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    flag: Mapped[bool | None] = mapped_column(nullable=True)
    at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    day: Mapped[dt.date | None] = mapped_column(nullable=True)


mirror = Mixed.__table__.to_metadata(Base.metadata, name="fastpath_mirror")
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
mixed_rows = st.lists(
    st.fixed_dictionaries(
        {
            "text": st.none() | text,
            "number": st.none() | st.integers(-(2**63), 2**63 - 1),
            "real": st.none() | st.floats(allow_nan=False, width=64),
            "exact": st.none() | st.decimals(places=10, min_value=-10**19, max_value=10**19),
            "blob": st.none() | st.binary(),
            "flag": st.none() | st.booleans(),
            "at": st.none() | st.datetimes(timezones=st.just(dt.timezone.utc)),
            "day": st.none() | st.dates(),
        }
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    # the tables are emptied at the start of each example
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=mixed_rows)
def test_copy_writes_what_executemany_writes(
    database: Database, batch: list[dict[str, Any]]
) -> None:
    table = Mixed.__table__
    with database.engine.begin() as connection:
        connection.execute(table.delete())
        connection.execute(mirror.delete())
        assert fastpath.copy_insert(connection, table, batch)  # type: ignore[arg-type]
        connection.execute(mirror.insert(), batch)
        copied = connection.execute(select(table).order_by(table.c.id)).all()
        inserted = connection.execute(select(mirror).order_by(mirror.c.id)).all()
    assert [row[1:] for row in copied] == [row[1:] for row in inserted]

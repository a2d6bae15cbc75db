"""Differential, property-based: random rows of every portable type, written through
``create``, ``bulk_create`` and ``upsert_many`` and read back through ``get``, ``list``
and ``stream``, come back equal on every backend and through both APIs (the sync API
and the async one, over the async drivers). Hypothesis runs derandomized (a fixed seed)
when ``CI`` is set."""

from __future__ import annotations

import datetime as dt
import enum
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer import Database

pytestmark = pytest.mark.api_modes


class Mood(enum.Enum):
    CALM = "calm"
    CURIOUS = "curious"
    GRUMPY = "grumpy"


class Base(DeclarativeBase):
    pass


class Portable(Base):
    """One nullable column of each portable type; nothing backend-specific."""

    __tablename__ = "values_portable"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    small: Mapped[int | None] = mapped_column(SmallInteger)
    i32: Mapped[int | None] = mapped_column(Integer)
    i64: Mapped[int | None] = mapped_column(BigInteger)
    money: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    wide: Mapped[Decimal | None] = mapped_column(Numeric(38, 10))
    ratio: Mapped[float | None] = mapped_column(Float)
    flag: Mapped[bool | None] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    aware: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    naive: Mapped[dt.datetime | None] = mapped_column(DateTime)
    day: Mapped[dt.date | None] = mapped_column(Date)
    clock: Mapped[dt.time | None] = mapped_column(Time)
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)
    uid: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    mood: Mapped[Mood | None] = mapped_column(Enum(Mood, name="values_mood"))


COLUMNS = [c.key for c in Portable.__table__.columns]

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=100,
)
EMOJI = st.sampled_from(["\N{DUCK}", "\U0001f469\U0001f3fd\u200d\U0001f4bb", "\u6f22\u5b57", ""])
OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
EARLIEST, LATEST = dt.datetime(1000, 1, 2), dt.datetime(9999, 12, 30)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=8,
)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "small": st.integers(-(2**15), 2**15 - 1),
    "i32": st.integers(-(2**31), 2**31 - 1),
    "i64": st.integers(-(2**63), 2**63 - 1),
    "money": st.decimals(-(10**12) + 1, 10**12 - 1, places=6, allow_nan=False),
    "wide": st.decimals(-(10**28) + 1, 10**28 - 1, places=10, allow_nan=False),
    "ratio": st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False),
    "flag": st.booleans(),
    "name": st.builds(lambda a, b: (a + b)[:100], TEXT, EMOJI),
    "body": st.builds(lambda t, n: t * n, TEXT, st.integers(1, 50)),
    "blob": st.binary(max_size=300) | st.just(bytes(range(256))),
    "aware": st.datetimes(EARLIEST, LATEST).flatmap(
        lambda wall: OFFSETS.map(lambda zone: wall.replace(tzinfo=zone))
    ),
    "naive": st.datetimes(EARLIEST, LATEST),
    "day": st.dates(EARLIEST.date(), LATEST.date()),
    "clock": st.times(),
    "doc": JSON_VALUES,
    "uid": st.uuids(),
    "mood": st.sampled_from(Mood),
}
ROW = st.fixed_dictionaries({name: nullable(strategy) for name, strategy in VALUES.items()})
ROWS = st.lists(ROW, min_size=1, max_size=4)
#: Seeded, and without a deadline, by the profile the root conftest loads.
HYPOTHESIS = settings(max_examples=int(os.environ.get("STORELAYER_VALUE_EXAMPLES", "15")))


@pytest.fixture
def portable(database: Database) -> Iterator[Database]:
    Base.metadata.drop_all(database.engine)
    Base.metadata.create_all(database.engine)
    yield database
    Base.metadata.drop_all(database.engine)


def with_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": i, **row} for i, row in enumerate(rows, start=1)]


def empty(db: Database) -> None:
    with db.session() as s:
        s.repository(Portable).delete_where(true())


def same(column: str, written: Any, read: Any) -> bool:
    if written is None or read is None:
        return written is read
    if isinstance(written, dt.datetime) and written.tzinfo is not None:
        return read.utcoffset() == dt.timedelta(0) and read == written
    if isinstance(written, dt.datetime):
        return read.tzinfo is None and read == written
    return type(read) is type(written) and read == written  # bool is not int, etc.


def assert_rows_equal(written: list[dict[str, Any]], read: list[Portable], how: str) -> None:
    assert [r.id for r in read] == [w["id"] for w in written], how
    for row, found in zip(written, read, strict=True):
        for column in COLUMNS:
            value = getattr(found, column)
            assert same(column, row[column], value), (
                f"{how}: {column} of row {row['id']} wrote {row[column]!r}, read {value!r}"
            )


def read_back(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.read_session() as s:
        values = s.repository(Portable)
        got = [values.get(row["id"]) for row in rows]
        assert_rows_equal(rows, got, "get")  # type: ignore[arg-type]
    with db.read_session() as s:
        assert_rows_equal(rows, s.repository(Portable).list(order_by="id"), "list")
    with db.read_session() as s:
        streamed = list(s.repository(Portable).stream(order_by="id", batch_size=2))
        assert_rows_equal(rows, streamed, "stream")


@HYPOTHESIS
@given(rows=ROWS)
def test_create_then_get_list_stream(portable: Database, rows: list[dict[str, Any]]) -> None:
    empty(portable)
    rows = with_ids(rows)
    with portable.session() as s:
        for row in rows:
            s.repository(Portable).create(**row)
    read_back(portable, rows)


@HYPOTHESIS
@given(rows=ROWS)
def test_bulk_create_then_get_list_stream(portable: Database, rows: list[dict[str, Any]]) -> None:
    empty(portable)
    rows = with_ids(rows)
    with portable.session() as s:
        s.repository(Portable).bulk_create(rows)
    read_back(portable, rows)


@HYPOTHESIS
@given(first=ROWS, second=ROWS)
def test_upsert_many_inserts_and_updates(
    portable: Database, first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    empty(portable)
    first, second = with_ids(first), with_ids(second)
    with portable.session() as s:
        s.repository(Portable).upsert_many(first, on=["id"])
    read_back(portable, first)
    with portable.session() as s:  # the same keys, and maybe more: updates, then inserts
        s.repository(Portable).upsert_many(second, on=["id"])
    merged = {row["id"]: row for row in [*first, *second]}
    read_back(portable, [merged[key] for key in sorted(merged)])


def test_one_mebibyte_of_text_and_bytes(portable: Database) -> None:
    text = ("\N{DUCK} storelayer \u6f22\u5b57 " * 70_000)[: 2**20]
    blob = bytes(range(256)) * (2**20 // 256)
    with portable.session() as s:
        s.repository(Portable).create(id=1, body=text, blob=blob)
    with portable.read_session() as s:
        found = s.repository(Portable).get(1)
    assert found is not None and found.body == text and found.blob == blob

"""A bulk write's values checked a column at a time (``repository._batch``) pass or
fail exactly as checked row by row: the same rows pass, and a batch with bad values
raises the error of its first bad row, with the same class and message. Pure logic:
no database decides any of it (``tests/test_bad_input_values.py`` runs the errors on
every backend)."""

from __future__ import annotations

import datetime as dt
import enum
import sys
from decimal import Decimal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storelayer import StorelayerError
from storelayer.repository._query import columns_of
from storelayer.repository._statements import as_rows


class Mood(enum.Enum):
    CALM = "calm"
    GRUMPY = "grumpy"


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "bulk_check_things"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(String)
    small: Mapped[int | None] = mapped_column(SmallInteger)
    big: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    loose: Mapped[Decimal | None] = mapped_column(Numeric)
    ratio: Mapped[float | None] = mapped_column(Float)
    day: Mapped[dt.date | None] = mapped_column(Date)
    at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    mood: Mapped[Mood | None] = mapped_column(Enum(Mood))
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)


NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**15 - 1, 2**15, -(2**15), -(2**15) - 1, 2**63, True]),
    st.floats(),
    st.sampled_from([sys.float_info.min / 2, 0.0, -0.0, 9999.995, 9999.994, -9999.995]),
    st.decimals(places=3, min_value=-(10**5), max_value=10**5),
    st.sampled_from([Decimal("NaN"), Decimal("9999.995"), Decimal("-9999.994999")]),
)
TEXTS = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["a\x00b", "\udcff", "ünïcode", "12345678", "123456789"]),
    st.binary(max_size=3),
)
MOMENTS = st.one_of(
    st.dates(),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=-5)))),
    st.just(dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
)
ANY = st.one_of(st.none(), NUMBERS, TEXTS, MOMENTS, st.sampled_from(list(Mood)))
#: Most rows hold values their columns take, so that batches often pass.
GOOD = {
    "name": st.text(max_size=8), "note": st.text(), "small": st.integers(-100, 100),
    "big": st.integers(-(2**40), 2**40), "amount": st.decimals(places=2, min_value=-9999,
    max_value=9999), "loose": st.decimals(allow_nan=False, allow_infinity=False),
    "ratio": st.floats(min_value=1.0, max_value=1e9), "day": st.dates(),
    "at": st.datetimes(), "blob": st.binary(max_size=4), "mood": st.sampled_from(list(Mood)),
    "doc": st.none() | st.integers(),
}  # fmt: skip


@st.composite
def rows(draw: Any) -> list[dict[str, Any]]:
    names = draw(st.sets(st.sampled_from(sorted(GOOD)), min_size=1))
    count = draw(st.integers(min_value=1, max_value=6))
    out = []
    for i in range(count):
        row: dict[str, Any] = {"id": i + 1}
        for name in sorted(names):
            bad = draw(st.integers(min_value=0, max_value=9)) == 0
            row[name] = draw(ANY if bad else GOOD[name])
        if draw(st.integers(min_value=0, max_value=7)) == 0:
            row.pop(draw(st.sampled_from(sorted(row))))  # another shape; may lose "name"
        out.append(row)
    return out


def row_by_row(batch: list[dict[str, Any]], insert: bool) -> tuple[type, str] | None:
    cols = columns_of(Thing)
    try:
        for row in batch:
            cols.check_values(row, purpose="bulk_create")
            if insert:
                cols.check_insert(row)
    except (StorelayerError, ArithmeticError, TypeError, ValueError) as error:
        return type(error), str(error)
    return None


def by_columns(batch: list[dict[str, Any]], insert: bool) -> tuple[type, str] | None:
    try:
        as_rows(columns_of(Thing), batch, purpose="bulk_create", insert=insert)
    except (StorelayerError, ArithmeticError, TypeError, ValueError) as error:
        return type(error), str(error)
    return None


@given(batch=rows(), insert=st.booleans())
@example(batch=[{"id": 1, "name": "ok", "small": 2**15}], insert=True)
@example(batch=[{"id": 1, "name": "ok", "amount": Decimal("9999.995")}], insert=True)
@example(batch=[{"id": 1, "name": "ok", "amount": 9999.994}], insert=True)
@example(batch=[{"id": 1, "name": "ok", "ratio": 0.0}, {"id": 2, "ratio": 5e-324}], insert=False)
@example(batch=[{"id": 1, "name": "123456789"}, {"id": 2, "name": None}], insert=True)
@example(batch=[{"id": 1}, {"id": 2, "name": "a\x00"}], insert=True)
@example(batch=[{"id": 1, "name": "ok", "colour": "red"}], insert=True)
def test_a_batch_checked_by_columns_fails_as_row_by_row(
    batch: list[dict[str, Any]], insert: bool
) -> None:
    assert by_columns(batch, insert) == row_by_row(batch, insert)

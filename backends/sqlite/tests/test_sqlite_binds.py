"""Values bound on SQLite by the shortcuts of ``storelayer_sqlite.types`` are the text
their definitions give: a naive ``datetime`` in SQLAlchemy's storage format (an aware
one as its UTC instant, a ``date`` at midnight), a decimal as its exact digits rounded
half away from zero to the column's scale. Pure logic: no database decides it."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import cache
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime, Numeric
from sqlalchemy.dialects.sqlite import DATETIME

import storelayer

HALF_UP = Context(prec=1000, rounding=ROUND_HALF_UP)


@cache
def dialect() -> Any:
    return storelayer.connect("sqlite://").engine.dialect


def bound(type_: Any, value: Any) -> Any:
    process = type_.dialect_impl(dialect()).bind_processor(dialect())
    return process(value)


def stamp_text(value: dt.date) -> str:
    """SQLAlchemy's own ``DATETIME`` binding, after an aware value is made its UTC
    instant."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    text: str = DATETIME().bind_processor(None)(value)  # type: ignore[arg-type, misc]
    return text


@given(st.datetimes() | st.datetimes(timezones=st.timezones()) | st.dates() | st.none())
def test_a_datetime_is_bound_as_sqlalchemy_stores_it(value: Any) -> None:
    assert bound(DateTime(), value) == (None if value is None else stamp_text(value))


@given(
    st.decimals(allow_nan=False, allow_infinity=False) | st.integers() | st.floats(allow_nan=False),
    st.integers(0, 8) | st.none(),
)
def test_a_decimal_is_bound_as_its_digits_at_the_scale(value: Any, scale: int | None) -> None:
    exact = Decimal(repr(value) if isinstance(value, float) else value)
    if scale is not None and exact.is_finite():
        exact = HALF_UP.quantize(exact, Decimal(1).scaleb(-scale))
    assert bound(Numeric(30, scale), value) == format(exact, "f")


def test_a_json_number_reads_back_as_written(tmp_path: Any) -> None:
    """A ``JSON`` column is declared with text affinity: a document that is a float
    with an integral value stays a float (numeric affinity stored 0.0 as 0)."""
    from sqlalchemy import JSON, Column, Integer, MetaData, Table, inspect, select

    docs = Table("docs", MetaData(), Column("id", Integer, primary_key=True), Column("doc", JSON))
    written = [0.0, -0.0, 1.0, 1e16, 2, "0.0", [1.0], None]
    with storelayer.connect(f"sqlite:///{tmp_path / 'json.db'}") as db:
        docs.create(db.engine)
        with db.engine.begin() as connection:
            connection.execute(docs.insert(), [{"id": i, "doc": v} for i, v in enumerate(written)])
            read = connection.execute(select(docs.c.doc).order_by(docs.c.id)).scalars().all()
            reflected = inspect(connection).get_columns("docs")[1]["type"]
    assert [(type(v), v) for v in read] == [(type(v), v) for v in written]
    assert isinstance(reflected, JSON)

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

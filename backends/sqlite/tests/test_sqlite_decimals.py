"""A decimal value read gives the exact digits its definition names (the module
docstring of ``storelayer_sqlite.types``): a string's digits or a float's ``repr``,
rounded half away from zero to the column's scale. The value-by-value processor's
shortcuts give the same digits as that definition; a whole column read at a time
(``storelayer copy``) gives what the value-by-value processor gives, for the values
SQLite returns: floats (a ``NUMERIC`` column), strings (``DECIMAL_TEXT``), integers,
NULLs, non-finite values."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import Numeric, create_engine

from storelayer_sqlite.types import TextDecimal, adapt_engine

COLUMNS: dict[str, list[Any]] = {
    "floats": [0.1, 2.675, -0.005, 1e-7, 123456789.125, 0.0, -0.0],
    "strings": ["0.125", "-2.5", "1E+3", "0", "999999999999.999999", "-0.0049"],
    "integers": [1, -2, 10**20, 0],
    "with_nulls": [0.1, None, "2.5", None],
    "non_finite": [float("inf"), 1.5, float("nan")],
    "mixed": [1, "1.5", 2.25],
    "floats_and_integers": [100, 2.5, -3, 0.125, 10**18],
    "booleans": [True, 1.5],
}


@pytest.fixture
def dialect() -> Any:
    engine = create_engine("sqlite://")
    adapt_engine(engine)
    return engine.dialect


@pytest.mark.parametrize("scale", [None, 0, 2, 6])
@pytest.mark.parametrize("kind", sorted(COLUMNS))
def test_a_whole_column_reads_as_value_by_value(dialect: Any, kind: str, scale: Any) -> None:
    impl = Numeric(18, scale).dialect_impl(dialect)
    assert isinstance(impl, TextDecimal)
    process = impl.result_processor(dialect, None)
    expected = [process(v) for v in COLUMNS[kind]]
    got = impl.column_result_processor(dialect, None)(COLUMNS[kind])
    assert [(type(v), str(v)) for v in got] == [(type(v), str(v)) for v in expected]


def test_a_value_that_is_no_number_fails_either_way(dialect: Any) -> None:
    impl = Numeric(10, 2).dialect_impl(dialect)
    with pytest.raises(InvalidOperation):
        impl.column_result_processor(dialect, None)(["1.5", "abc"])
    assert impl.column_result_processor(dialect, None)([2.675]) == [Decimal("2.68")]


def by_definition(value: Any, scale: int) -> Decimal:
    """The digits a value reads as, by the definition and nothing else."""
    exact = Decimal(repr(value) if isinstance(value, float) else value)
    if not exact.is_finite():
        return exact
    return Context(prec=1000, rounding=ROUND_HALF_UP).quantize(exact, Decimal(1).scaleb(-scale))


SCALES = st.integers(min_value=0, max_value=8)
#: Floats as a NUMERIC column returns them: any float, and those a decimal of a few
#: digits was stored as (the common case the shortcut takes).
FLOATS = st.floats() | st.decimals(places=3, allow_nan=False, allow_infinity=False).map(float)
#: Strings as a DECIMAL_TEXT column holds them: written at some scale, or by hand.
STRINGS = st.builds(
    lambda d, places: format(d.quantize(Decimal(1).scaleb(-places)), "f"),
    st.decimals(min_value=-(10**15), max_value=10**15, allow_nan=False, places=9),
    st.integers(min_value=0, max_value=9),
) | st.sampled_from(["1E+3", "-0.0", ".5", "NaN", "-Infinity", "0150", "1.5e-3"])


@given(value=FLOATS | STRINGS | st.integers(), scale=SCALES)
@example(value=2.0**52, scale=0)
@example(value=2.0**52 / 100 - 1, scale=2)
@example(value=0.1 + 0.2, scale=2)
@example(value=1.005, scale=2)
@example(value=-0.0, scale=2)
def test_a_value_reads_as_its_definition_says(dialect: Any, value: Any, scale: int) -> None:
    process = Numeric(38, scale).dialect_impl(dialect).result_processor(dialect, None)
    got, expected = process(value), by_definition(value, scale)
    assert (str(got), got.is_signed()) == (str(expected), expected.is_signed())

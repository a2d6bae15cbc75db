"""A decimal column read a whole column at a time (``storelayer copy``) gives what its
value-by-value result processor gives, for the values SQLite returns: floats (a
``NUMERIC`` column), strings (``DECIMAL_TEXT``), integers, NULLs, non-finite values."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
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

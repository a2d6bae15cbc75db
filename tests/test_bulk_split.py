"""How a multi-row write is cut into statements (``backend.bulk``): every row goes into
exactly one statement, in order, and no statement passes its limit - the number of
bound parameters, or (for PyMySQL, which writes the values into the text) the bytes of
the values as PyMySQL escapes them, checked here against PyMySQL's own escaping. Pure
logic: the database tests (``tests/test_bulk_paths.py``) show that a write of several
statements is still all or nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pymysql  # type: ignore[import-untyped]
from hypothesis import example, given
from hypothesis import strategies as st

from storelayer.backend.bulk import _column_text, _text, rows_by_parameters, rows_by_text

#: What one statement carries besides the values: ``, `` and ``()`` a row (the rest of
#: the statement's text is within the 4096 bytes ``rows_by_text`` keeps apart).
ROW_TEXT = 4

VALUES = {
    "text": st.text(st.characters(blacklist_categories=["Cs"]), max_size=80),
    "wide text": st.text(st.sampled_from("\U0001f600\u20ac'\\\x00"), min_size=16, max_size=80),
    "bytes": st.binary(max_size=64),
    "int": st.integers(),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "datetime": st.datetimes(),
    "date": st.dates(),
    "bool": st.booleans(),
}


def escaped(value: Any) -> int:
    """The bytes PyMySQL writes for ``value`` into a statement."""
    return len(_PYMYSQL.escape(value).encode())


_PYMYSQL = pymysql.connections.Connection(defer_connect=True, charset="utf8mb4")
_PYMYSQL.server_status = 0  # what a connected one knows: backslashes escape


@st.composite
def columns(draw: st.DrawFn) -> list[list[Any]]:
    """Columns of as many rows each: most of one kind of value (and NULLs), some mixed."""
    rows = draw(st.integers(1, 60))
    result = []
    for _ in range(draw(st.integers(1, 4))):
        kinds = draw(st.sampled_from([[k] for k in VALUES] + [list(VALUES)]))
        value = st.one_of(st.none(), *(VALUES[k] for k in kinds))
        result.append(draw(st.lists(value, min_size=rows, max_size=rows)))
    return result


@given(columns())
@example([["\U0001f600" * 20, None, "'" * 20]])  # 4 bytes a character; 2 escaped
def test_the_bound_on_the_values_text_holds(values: list[list[Any]]) -> None:
    for column in values:
        assert _column_text(column) >= sum(map(escaped, column))
        assert all(_text(value) >= escaped(value) for value in column)


@given(columns(), st.integers(4096 + 16, 4096 + 600))
def test_rows_by_text_keeps_each_statement_under_its_limit(
    values: list[list[Any]], limit: int
) -> None:
    sizes = rows_by_text(values, limit)
    assert sum(sizes) == len(values[0]) and all(size > 0 for size in sizes)
    rows = list(zip(*values, strict=True))
    start = 0
    for size in sizes:
        text = sum(sum(map(escaped, row)) + ROW_TEXT * len(row) for row in rows[start:start + size])
        assert size == 1 or text <= limit - 4096, (size, text)
        start += size


@given(st.integers(0, 5000), st.integers(1, 40), st.integers(1, 3000))
def test_rows_by_parameters_keeps_each_statement_under_its_limit(
    rows: int, width: int, limit: int
) -> None:
    sizes = rows_by_parameters([[None] * rows] * width, limit)
    assert sum(sizes) == rows
    assert all(size > 0 and (size == 1 or size * width <= limit) for size in sizes)


def test_a_write_that_fits_is_one_statement() -> None:
    names = [f"name {i}" for i in range(1000)]
    prices = [Decimal(i) / 4 for i in range(1000)]
    stamps = [dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i) for i in range(1000)]
    assert rows_by_text([names, prices, stamps], 1_024_000) == [1000]
    assert rows_by_parameters([names, prices, stamps], 30_000) == [1000]

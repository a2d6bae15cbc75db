"""The copy's checksum, computed a column at a time, gives the digits of the backup's
per-row definition (``TableChecksum.add``) for every kind of value a driver returns,
NULLs between them, and columns of mixed types: a report's checksum is one a user can
recompute with ``table_checksum``."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from storelayer.backup.counts import TableChecksum
from storelayer.copy.checksum import add_columns

UTC_PLUS_2 = dt.timezone(dt.timedelta(hours=2))
COLUMNS: dict[str, list[Any]] = {
    "str": ["plain", "", 'quote " and \\ back', "tab\tnew\nline", "Ünïcode ☃", "\x00\x1f"],
    "int": [0, -1, 2**70, 7, 1, -(2**63)],
    "bool": [True, False, True, False, True, True],
    "float": [0.0, -0.0, 1e300, 1.5e-7, float("inf"), float("nan")],
    "decimal": [
        Decimal("1.10"), Decimal("-0.00"), Decimal("1E+2"), Decimal("NaN"),
        Decimal("Infinity"), Decimal("123456789012345678901234567890.123"),
    ],
    "finite_decimal": [Decimal("0.50"), Decimal("100"), Decimal("-3.000"), Decimal("1e-9"),
                       Decimal("7"), Decimal("0")],
    "naive_datetime": [dt.datetime(2024, 1, 1), dt.datetime(1, 1, 1, 0, 0, 0, 1),
                       dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                       dt.datetime(2024, 2, 29, 12), dt.datetime(2000, 1, 1),
                       dt.datetime(2024, 6, 1, 1, 2, 3)],
    "aware_datetime": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
                       dt.datetime(2024, 1, 1, 3, tzinfo=UTC_PLUS_2), dt.datetime(2024, 1, 1),
                       dt.datetime(2024, 1, 1, tzinfo=UTC_PLUS_2),
                       dt.datetime(1999, 12, 31, 23, tzinfo=dt.timezone.utc),
                       dt.datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC_PLUS_2)],
    "date": [dt.date(2024, 1, 1), dt.date(1, 1, 1), dt.date(9999, 12, 31),
             dt.date(2024, 2, 29), dt.date(1970, 1, 1), dt.date(2000, 1, 1)],
    "time": [dt.time(0), dt.time(23, 59, 59, 999999), dt.time(12, 30),
             dt.time(1, 2, 3, tzinfo=UTC_PLUS_2), dt.time(4), dt.time(5, 6, 7, 8)],
    "timedelta": [dt.timedelta(0), dt.timedelta(days=-1, seconds=5),
                  dt.timedelta(days=3, microseconds=7), dt.timedelta(hours=30),
                  dt.timedelta(seconds=1), dt.timedelta(weeks=100)],
    "bytes": [b"", b"\x00\xff", b"abc", bytes(range(16)), b"\n", b"z"],
    "other_binary": [bytearray(b"ab"), memoryview(b"cd"), b"ef", bytearray(), b"",
                     memoryview(b"\x00")],
    "json": [{"b": 1, "a": [1, None]}, [1, "x"], {}, [], {"ü": 1.5}, [{"k": None}]],
    "uuid": [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=5),
             uuid.UUID(int=6), uuid.UUID(int=7), uuid.UUID(int=8)],
    "mixed": [1, "1", 1.0, Decimal(1), True, None],
    "tuple": [(1, 2), ("a",), (), (None,), (1.5,), ("x", "y")],
}


def _by_rows(columns: list[list[Any]]) -> tuple[int, str]:
    checksum = TableChecksum()
    for row in zip(*columns, strict=True):
        checksum.add(row)
    return checksum.rows, checksum.hexdigest


def _by_columns(columns: list[list[Any]]) -> tuple[int, str]:
    checksum = TableChecksum()
    add_columns(checksum, columns)
    return checksum.rows, checksum.hexdigest


@pytest.mark.parametrize("kind", sorted(COLUMNS))
def test_a_column_of_each_kind_sums_as_row_by_row(kind: str) -> None:
    values = COLUMNS[kind]
    with_nulls = [None if i % 3 == 1 else v for i, v in enumerate(values)]
    all_nulls = [None] * len(values)
    columns = [list(range(len(values))), values, with_nulls, all_nulls]
    assert _by_columns(columns) == _by_rows(columns)


def test_every_kind_in_one_table_and_batches_add_up() -> None:
    columns = [list(values) for values in COLUMNS.values()]
    whole = _by_rows(columns)
    assert _by_columns(columns) == whole
    checksum = TableChecksum()
    for start in (0, 2, 5):  # uneven batches, one of a single row
        end = {0: 2, 2: 5, 5: 6}[start]
        add_columns(checksum, [values[start:end] for values in columns])
    assert (checksum.rows, checksum.hexdigest) == whole


def test_a_changed_value_changes_the_checksum() -> None:
    columns = [[1, 2, 3], [Decimal("1.10"), Decimal("2"), Decimal("3")]]
    changed = [[1, 2, 3], [Decimal("1.11"), Decimal("2"), Decimal("3")]]
    assert _by_columns(columns) != _by_columns(changed)


@pytest.mark.parametrize(
    "values",
    [
        ["12.30", "-0.00", "100.00", "0.10", "7.00", "-3.50"],  # NUMERIC(p, 2): all a fraction
        ["100", "1.50", "10", "0.000010", "-20.0", "3"],  # some integral
        ["1234567890123456789012345678.9", "1.10", "2", "3", "4", "5"],  # past the precision
        ["0.0000001", "1E+3", "12.5", "1", "2", "3"],  # exponents
    ],
)
def test_decimal_columns_strip_zeros_as_normalize_does(values: list[str]) -> None:
    column = [Decimal(v) for v in values]
    with_nulls = [None if i % 2 else v for i, v in enumerate(column)]
    columns = [list(range(len(column))), column, with_nulls]
    assert _by_columns(columns) == _by_rows(columns)


def test_the_plain_texts_given_back_are_str_and_isoformat() -> None:
    # What a backend may send instead of encoding the values again (TextedBatch).
    when = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 0, 5)]
    columns: list[list[Any]] = [
        [1, -2], [1.5, 2.0], [Decimal("1.10"), Decimal("2")], when,
        ["a", "b"], [1, None], [True, False], [when[0].replace(tzinfo=UTC_PLUS_2), when[1]],
        [Decimal("NaN"), Decimal("1")],
    ]
    shared = add_columns(TableChecksum(), columns)
    assert shared[:4] == [["1", "-2"], ["1.5", "2.0"], ["1.10", "2"], [w.isoformat() for w in when]]
    assert shared[4:] == [None, ["1", None], None, None, None]  # a NULL's place: None

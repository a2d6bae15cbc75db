"""Values checked against their column's type before they reach a driver, so that one
mistake is one error on every backend: ``InvalidValue`` naming the column and the limit
(never the value), raised before anything is written. SQLite would store most of these
values as they are; PostgreSQL and MySQL would each raise a different driver error.

The limits are the portable ones: ``Integer`` is 32 bits and ``SmallInteger`` 16 (as on
the servers, even where SQLite would take more), ``Numeric(p, s)`` holds ``p - s``
digits before the point after rounding to ``s`` places, ``String(n)`` ``n``
characters, floats and decimals are finite, dates are within years 1..9999 (and aware
datetimes stay within them in UTC).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import sys
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import types

from storelayer.errors import InvalidValue
from storelayer.repository._text import check_text

#: The portable range of each integer type (the servers' SMALLINT, INTEGER, BIGINT).
INTEGER_BITS: tuple[tuple[type[types.TypeEngine[Any]], int], ...] = (
    (types.SmallInteger, 16),
    (types.BigInteger, 64),
    (types.Integer, 32),
)


#: Room for every digit a column may hold (the default context keeps 28).
_WIDE = Context(prec=1000)


def _fail(where: str, problem: str, limit: str) -> InvalidValue:
    return InvalidValue(f"{where} {problem}; nothing was written", where, limit)


def _integer(where: str, column_type: Any, value: Any) -> None:
    if not isinstance(value, int):
        return
    bits = next(b for kind, b in INTEGER_BITS if isinstance(column_type, kind))
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not low <= value <= high:
        raise _fail(
            where, f"takes whole numbers from {low} to {high} ({bits}-bit)", f"{bits}-bit integer"
        )


def _finite(where: str, value: Any) -> None:
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite:
        raise _fail(
            where,
            "takes finite numbers only (NaN and infinities are stored differently, or "
            "refused, by each database); store NULL for 'no value'",
            "finite number",
        )


def _float(where: str, value: Any) -> None:
    if not isinstance(value, (float, int, Decimal)) or isinstance(value, bool):
        return
    _finite(where, value)
    if value and abs(float(value)) < sys.float_info.min:
        raise _fail(
            where,
            f"takes doubles of magnitude 0 or at least {sys.float_info.min!r} (subnormal "
            "numbers are not stored alike everywhere); round it to 0",
            "normal double",
        )


def _numeric(where: str, column_type: Any, value: Any) -> None:
    if not isinstance(value, (float, int, Decimal)) or isinstance(value, bool):
        return
    _finite(where, value)
    precision, scale = column_type.precision, column_type.scale
    if precision is None:
        return
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    try:
        rounded = exact.quantize(
            Decimal(1).scaleb(-(scale or 0)), rounding=ROUND_HALF_UP, context=_WIDE
        )
    except InvalidOperation:
        rounded = None
    digits = precision - (scale or 0)
    if rounded is None or (rounded != 0 and rounded.adjusted() >= digits):
        raise _fail(
            where,
            f"takes at most {digits} digits before the decimal point (Numeric({precision}, "
            f"{scale or 0}))",
            f"Numeric({precision}, {scale or 0})",
        )


def _string(where: str, column_type: Any, value: Any) -> None:
    check_text(where, value)
    length = column_type.length
    if length is not None and isinstance(value, str) and len(value) > length:
        raise _fail(
            where,
            f"takes at most {length} characters, got {len(value)}; shorten it or widen the column",
            f"{length} characters",
        )


def _enum(where: str, column_type: Any, value: Any) -> None:
    enum_class = column_type.enum_class
    if enum_class is not None and isinstance(value, enum_class):
        return
    if isinstance(value, str) and value in column_type.enums:
        return
    allowed = ", ".join(column_type.enums)
    raise _fail(where, f"takes one of its enum's values ({allowed})", "enum values")


def _binary(where: str, value: Any) -> None:
    if isinstance(value, str):
        raise _fail(
            where, "holds bytes, got text; encode it first (value.encode('utf-8'))", "bytes"
        )


def _date(where: str, value: Any) -> None:
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        try:
            value.astimezone(dt.timezone.utc)
        except OverflowError:
            raise _fail(
                where, "takes instants within years 1..9999 in UTC", "years 1..9999"
            ) from None


CHECKS: tuple[tuple[type[types.TypeEngine[Any]], Callable[[str, Any, Any], None]], ...] = (
    (types.Enum, _enum),
    (types.String, _string),
    (types.Float, lambda where, _t, value: _float(where, value)),
    (types.Numeric, _numeric),
    (types.Integer, _integer),
    (types.LargeBinary, lambda where, _t, value: _binary(where, value)),
    (types.Date, lambda where, _t, value: _date(where, value)),
    (types.DateTime, lambda where, _t, value: _date(where, value)),
)


def _storage(column_type: Any) -> Any:
    """The type that reaches the database: a ``TypeDecorator``'s ``impl``."""
    while isinstance(column_type, types.TypeDecorator):
        column_type = column_type.impl_instance
    return column_type


def nullable(column: Any) -> bool:
    """Whether ``column`` may be set to None: nullable, or a key the database fills."""
    return bool(column.nullable) or column is column.table.autoincrement_column


def value_check(where: str, column: Any) -> Callable[[Any], None]:
    """The check of values for ``column``: raises ``InvalidValue`` when it cannot hold
    one. Built once per column (bulk writes check every value of every row)."""
    column_type = _storage(column.type)
    # A JSON column stores None as the JSON 'null' unless it says none_as_null.
    json_null = isinstance(column_type, types.JSON) and not column_type.none_as_null
    may_be_null = nullable(column) or json_null
    check = next((c for kind, c in CHECKS if isinstance(column_type, kind)), None)
    is_enum = isinstance(column_type, types.Enum)

    def checked(value: Any) -> None:
        if value is None:
            if not may_be_null:
                raise _fail(where, "is NOT NULL; give it a value", "NOT NULL")
        elif check is not None and (is_enum or not isinstance(value, enum.Enum)):
            check(where, column_type, value)

    return checked


def missing_required(where: str) -> InvalidValue:
    """The error for an insert that leaves a required column out."""
    return _fail(where, "is NOT NULL and has no default; give it a value", "NOT NULL")


def required(column: Any) -> bool:
    """Whether an insert must give ``column`` a value: NOT NULL, no default of any kind,
    not a key the database generates."""
    return not (
        nullable(column)
        or column.default is not None
        or column.server_default is not None
        or column.computed is not None
        or column.identity is not None
    )

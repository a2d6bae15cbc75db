"""The values of a bulk write checked a column at a time (``bulk_create``,
``bulk_update``, ``upsert_many``): what ``_values.value_check`` does to each value,
shown for a whole column by a few passes in C where its values are of the usual kinds
(all ``str``, all ``int``, all ``Decimal``...). A column that shows nothing that way
is checked value by value, which raises the error of its first bad value.

A column passes here exactly when every value passes ``value_check``: each fast test
below only ever answers "all pass" when they do, and hands the column to the value by
value check otherwise.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any

from sqlalchemy import types

from storelayer.repository._values import INTEGER_BITS, _storage, nullable, value_check

#: "Every value passes", judged from the values and the set of their types; False
#: means "look at each value".
AllPass = Callable[[Sequence[Any], set[type]], bool]
_tzinfo = attrgetter("tzinfo")


def _text(length: int | None) -> AllPass:
    def all_pass(values: Sequence[Any], kinds: set[type]) -> bool:
        if kinds != {str}:
            return False
        joined = "".join(values)
        if "\x00" in joined:
            return False
        if not joined.isascii():
            try:
                joined.encode("utf-8")  # a lone surrogate anywhere fails it
            except UnicodeEncodeError:
                return False
        return length is None or max(map(len, values)) <= length

    return all_pass


def _integer(bits: int) -> AllPass:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def all_pass(values: Sequence[Any], kinds: set[type]) -> bool:
        return kinds <= {int, bool} and low <= min(values) and max(values) <= high

    return all_pass


def _float(values: Sequence[Any], kinds: set[type]) -> bool:
    return (
        kinds == {float}
        and all(map(math.isfinite, values))
        and min(map(abs, values)) >= sys.float_info.min  # a 0 is looked at one by one
    )


def _numeric(precision: int | None, scale: int | None) -> AllPass:
    if precision is None:
        return lambda values, kinds: kinds == {Decimal} and all(map(Decimal.is_finite, values))
    # A value rounds (half up, to the scale) to fewer than the digits allowed before
    # the point exactly when it is below this, in magnitude.
    bound = Decimal(10) ** (precision - (scale or 0)) - Decimal(1).scaleb(-(scale or 0)) / 2
    below = float(bound) * (1 - 1e-9)  # floats: with room for repr's digits

    def all_pass(values: Sequence[Any], kinds: set[type]) -> bool:
        if kinds == {Decimal}:
            if not all(map(Decimal.is_finite, values)):
                return False
            limit: Any = bound
        elif kinds == {float}:
            if not all(map(math.isfinite, values)):
                return False
            limit = below
        elif kinds == {int}:
            limit = bound
        else:
            return False
        return bool(-limit < min(values) and max(values) < limit)  # exact: no rounding

    return all_pass


def _date(values: Sequence[Any], kinds: set[type]) -> bool:
    if kinds == {dt.date}:
        return True
    return kinds == {dt.datetime} and set(map(_tzinfo, values)) == {None}


def _fast(column_type: Any) -> AllPass | None:
    """The fast test of a column of this type; None where each value is looked at."""
    if isinstance(column_type, types.Enum):
        return None
    if isinstance(column_type, types.String):
        return _text(column_type.length)
    if isinstance(column_type, types.Float):
        return _float
    if isinstance(column_type, types.Numeric):
        return _numeric(column_type.precision, column_type.scale)
    if isinstance(column_type, types.Integer):
        return _integer(next(b for kind, b in INTEGER_BITS if isinstance(column_type, kind)))
    if isinstance(column_type, types.LargeBinary):
        return lambda values, kinds: str not in kinds
    if isinstance(column_type, (types.Date, types.DateTime)):
        return _date
    return lambda values, kinds: True  # value_check looks at nothing but NULLs here


def column_check(where: str, column: Any) -> Callable[[Sequence[Any]], None]:
    """The check of every value given for ``column`` in one bulk write."""
    each = value_check(where, column)
    column_type = _storage(column.type)
    may_be_null = nullable(column) or (
        isinstance(column_type, types.JSON) and not column_type.none_as_null
    )
    fast = _fast(column_type)

    def check(values: Sequence[Any]) -> None:
        kinds = set(map(type, values))
        if type(None) in kinds:
            if not may_be_null:
                kinds = set()  # the first NULL raises below
            else:
                kinds.discard(type(None))
                values = [value for value in values if value is not None]
        if not values or (fast is not None and kinds and fast(values, kinds)):
            return
        for value in values:
            each(value)

    return check

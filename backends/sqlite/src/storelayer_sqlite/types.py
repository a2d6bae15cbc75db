"""Exact decimals on SQLite, without changing the application's models.

SQLite has no decimal type: a ``NUMERIC`` column converts what it is given to a 64-bit
float when the first 15 digits survive, so ``Numeric(18, 6)`` 999999999999.999999
comes back as 1000000000000.000000, and the driver binds a ``Decimal`` through a float.
Here a ``Numeric`` column (not ``Float``) is declared ``DECIMAL_TEXT(p, s)`` (text
affinity: SQLite stores the digits as written), values are bound as their exact digits
rounded to the column's scale (half away from zero, as PostgreSQL and MySQL round), and
read back as ``Decimal``. The column's ``storelayer_decimal`` collation compares the
digits as numbers, so ``=``, ``<``, ``ORDER BY`` and indexes order numerically.

A ``JSON`` column is declared ``JSON_TEXT`` (text affinity) for the same reason: with the
numeric affinity of ``JSON`` the document ``0.0`` was stored as the integer 0.

Tables created before this kept ``NUMERIC`` affinity: their values read back as before.
Tools that open the file without storelayer need the collation to compare or order such
a column (``sqlite3`` reports "no such collation sequence").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from itertools import repeat
from typing import Any

from sqlalchemy import Column, types
from sqlalchemy.dialects.sqlite import DATETIME, NUMERIC
from sqlalchemy.dialects.sqlite.base import SQLiteTypeCompiler
from sqlalchemy.engine import Dialect, Engine

#: The declared type of an exact decimal column (text affinity: it contains "TEXT").
DECIMAL_TYPE = "DECIMAL_TEXT"
#: The declared type of a JSON column (text affinity, so a number's text stays as is).
JSON_TYPE = "JSON_TEXT"
#: Room for every digit a column may hold (the default context keeps 28), rounding half
#: away from zero.
_WIDE_HALF_UP = Context(prec=1000, rounding=ROUND_HALF_UP)
#: The collation that compares the digits of two decimals as numbers.
COLLATION = "storelayer_decimal"


def compare_decimals(left: str, right: str) -> int:
    """The collation: -1, 0 or 1 as ``left`` is less than, equal to or greater than
    ``right`` as numbers (as text when either is not a number)."""
    try:
        a, b = Decimal(left), Decimal(right)
        return (a > b) - (a < b)
    except InvalidOperation:
        return (left > right) - (left < right)


def _exact(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    # repr: the shortest digits that read back as this float, as the servers' drivers
    # send a float to a NUMERIC column.
    return Decimal(repr(value) if isinstance(value, float) else value)


class TextDecimal(types.Numeric[Any]):
    """``Numeric`` stored as its exact digits (see the module docstring)."""

    cache_ok = True

    def _rounding(self) -> Callable[[Decimal], Decimal]:
        if self.scale is None:
            return lambda value: value
        step = Decimal(1).scaleb(-self.scale)
        quantize = _WIDE_HALF_UP.quantize

        def rounded(value: Decimal) -> Decimal:
            return quantize(value, step) if value.is_finite() else value

        return rounded

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if self.scale is None:
            return lambda value: None if value is None else format(_exact(value), "f")
        step, quantize = Decimal(1).scaleb(-self.scale), _WIDE_HALF_UP.quantize

        def process(value: Any) -> Any:  # the rounding of _rounding(), in line: a call less
            if value is None:
                return None
            if type(value) is not Decimal:
                value = _exact(value)
            return format(quantize(value, step) if value.is_finite() else value, "f")

        return process

    def _reader(self) -> Callable[[Any], Any]:
        """The exact ``Decimal`` of a value SQLite returns, rounded to the scale: the
        digits of a string, the shortest digits that read back as a float (``repr``).
        Two shortcuts give the same digits for what a column usually holds: a string
        that already has the scale's digits (what the bind processor writes) is read
        as is, and a float whose digits at the scale read back as the same float is
        formatted at the scale (then ``repr`` has no more digits than that; below
        ``2**52 / 10**scale`` no two such strings read back as one float)."""
        rounded, scale = self._rounding(), self.scale
        if scale is None or scale < 0:
            return lambda value: None if value is None else rounded(_exact(value))
        at_scale, limit, dot = f"%.{scale}f", 2.0**52 / 10**scale, -scale - 1

        def exact(value: Any) -> Any:
            kind = type(value)
            if kind is float:
                if -limit < value < limit:
                    text = at_scale % value
                    if float(text) == value:
                        return Decimal(text)
                return rounded(Decimal(float.__repr__(value)))
            if kind is str:
                if (value[dot:dot + 1] == "." if scale else value.isdecimal()):
                    return Decimal(value)
                return rounded(Decimal(value))
            if kind is int:
                return rounded(Decimal(value))
            return None if value is None else rounded(_exact(value))

        return exact

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        # Runs once a value read (a stream, storelayer copy: millions).
        exact = self._reader()
        if self.asdecimal:
            return exact
        return lambda value: None if value is None else float(exact(value))

    def column_result_processor(
        self, dialect: Dialect, coltype: Any
    ) -> Callable[[Sequence[Any]], list[Any]]:
        """What ``result_processor`` gives for each value of a whole column, in one pass
        in C when every value is a number or every value a string (``storelayer copy``
        reads millions of them)."""
        process = self.result_processor(dialect, coltype)
        assert process is not None

        def each(values: Sequence[Any]) -> list[Any]:
            return list(map(process, values))

        if self.scale is None or not self.asdecimal:
            return each
        step = Decimal(1).scaleb(-self.scale)

        def column(values: Sequence[Any]) -> list[Any]:
            kinds = set(map(type, values))
            if kinds and kinds <= {float, int}:  # NUMERIC affinity keeps 100.0 as 100
                exact = list(map(Decimal, map(repr, values)))
            elif kinds == {str}:
                exact = list(map(Decimal, values))
            else:
                return each(values)
            if not all(map(Decimal.is_finite, exact)):
                return each(values)
            return list(map(_WIDE_HALF_UP.quantize, exact, repeat(step)))

        return column


class PortableTypeCompiler(SQLiteTypeCompiler):
    """``DECIMAL_TEXT(p, s) COLLATE storelayer_decimal`` for ``Numeric`` columns, and
    ``JSON_TEXT`` for ``JSON`` ones: a column declared ``JSON`` has numeric affinity,
    which stores the document ``0.0`` as the integer 0 (read back as ``0``)."""

    def visit_JSON(self, type_: Any, **kw: Any) -> str:
        return JSON_TYPE

    def visit_NUMERIC(self, type_: Any, **kw: Any) -> str:
        return self._decimal(type_, **kw)

    def visit_DECIMAL(self, type_: Any, **kw: Any) -> str:
        return self._decimal(type_, **kw)

    def visit_numeric(self, type_: Any, **kw: Any) -> str:
        return self._decimal(type_, **kw)

    def _decimal(self, type_: Any, **kw: Any) -> str:
        if type_.precision is None:
            declared = DECIMAL_TYPE
        elif type_.scale is None:
            declared = f"{DECIMAL_TYPE}({type_.precision})"
        else:
            declared = f"{DECIMAL_TYPE}({type_.precision}, {type_.scale})"
        if isinstance(kw.get("type_expression"), Column):  # a column definition
            return f"{declared} COLLATE {COLLATION}"
        return declared


def register_collation(dbapi_connection: Any) -> None:
    """Give a new connection (pysqlite, or aiosqlite's adapted one) the collation."""
    raw = getattr(dbapi_connection, "_connection", None)
    if raw is None:
        dbapi_connection.create_collation(COLLATION, compare_decimals)
        return
    from sqlalchemy.util.concurrency import await_

    await_(raw._execute(raw._conn.create_collation, COLLATION, compare_decimals))


class IsoDateTime:
    """Mix into SQLite's ``DATETIME``: a naive ``datetime`` is bound by one call in C
    (``isoformat``, the same text as SQLAlchemy's default storage format, which fills a
    dict of seven fields a value), anything else as the type beneath binds it."""

    _storage_format: str

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)  # type: ignore[misc]
        if process is None or self._storage_format != DATETIME._storage_format:
            return process  # type: ignore[no-any-return]
        naive, isoformat = dt.datetime, dt.datetime.isoformat

        def bind(value: Any) -> Any:
            if type(value) is naive and value.tzinfo is None:
                return isoformat(value, " ", "microseconds")
            return process(value)

        return bind


def adapt_engine(engine: Engine) -> None:
    """Make ``engine`` store, compare and reflect ``Numeric`` columns exactly, and bind
    naive datetimes in one call."""
    dialect = engine.dialect
    stamp = dialect.colspecs.get(types.DateTime, DATETIME)
    dialect.colspecs = {
        **dialect.colspecs,
        types.Numeric: TextDecimal,
        types.Float: types.Float,
        types.DateTime: type(f"Iso{stamp.__name__}", (IsoDateTime, stamp), {}),
    }
    # type_compiler: the older name of the same instance, which Alembic's type
    # comparison (migrate check) still uses.
    dialect.type_compiler_instance = dialect.type_compiler = PortableTypeCompiler(dialect)
    names = getattr(dialect, "ischema_names", {})
    dialect.ischema_names = {  # type: ignore[attr-defined]
        **names, DECIMAL_TYPE: NUMERIC, JSON_TYPE: names.get("JSON", types.JSON)
    }

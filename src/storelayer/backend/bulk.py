"""Many rows into a table the way a database takes them fastest, for backends to use in
``Operations.bulk_insert`` and ``bulk_upsert``: each column's values put through its
bind processor in one pass (``bound_columns``), then multi-row ``VALUES`` statements
made from the driver SQL of one row's statement (``multirow_write``), as few as the
backend's limits allow - without the statement parameters SQLAlchemy would build for
every row.

One statement is undone alone when it fails, on a database that keeps the transaction
going after a failed statement (SQLite, InnoDB): a write sent as one statement needs no
savepoint to leave nothing behind. A write that needs several takes one itself.

Python-side column defaults are computed for the columns rows leave out, as SQLAlchemy
would; a default that needs an execution context, or a parameter that is no column's
value, makes it answer False, and the caller takes SQLAlchemy's path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection

#: Bound parameters per statement, kept under every backend's limit (SQLite: 32766).
MAX_PARAMETERS = 30_000
#: Fewer rows than this take SQLAlchemy's path.
MIN_ROWS = 50
#: Statement templates kept (by what they are, their table, keys and dialect).
MAX_COMPILED = 256
_TEMPLATES: dict[tuple[Any, ...], Template | None] = {}

#: A named placeholder of the ``pyformat`` style, or an escaped ``%`` (kept as it is).
_NAMED = re.compile(r"%%|%\((\w+)\)s")
#: The placeholder each positional style writes.
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


class Unsupported(Exception):
    """A value or column a fast path cannot handle exactly."""


class Template(NamedTuple):
    """An ``INSERT`` of one row cut around its ``VALUES`` group: ``head`` and ``tail``
    hold no placeholder, ``group`` holds one per key of ``order`` (column keys)."""

    head: str
    group: str
    tail: str
    order: list[str]

    def statement(self, rows: int) -> str:
        """The SQL of this statement with ``rows`` ``VALUES`` groups."""
        return self.head + ",".join([self.group] * rows) + self.tail


def template(compiled: Any, paramstyle: str) -> Template | None:
    """``compiled`` (one row's ``INSERT``) as a :class:`Template`; None when its
    parameters are not exactly one ``VALUES`` group of plain placeholders."""
    mark = _MARKS.get(paramstyle)
    if mark is None or compiled.escaped_bind_names:
        return None
    sql: str = compiled.string
    if paramstyle == "pyformat":
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            if match[1] is None:
                return match[0]
            names.append(match[1])
            return mark

        sql = _NAMED.sub(positional, sql)
    else:
        names = list(compiled.positiontup or ())
    group = "(" + ", ".join([mark] * len(names)) + ")"
    head, found, tail = sql.partition(group)
    if not names or not found or (head + tail).replace("%%", "").count(mark):
        return None
    return Template(head, group, tail, [compiled.binds[name].key for name in names])


def bound_columns(
    connection: Connection, table: Table, keys: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> tuple[list[Column[Any]], list[list[Any]]]:
    """The columns written and, for each, its values over all ``rows`` through the
    column's bind processor: the given keys, then the Python-side defaults of the columns
    left out, as SQLAlchemy would compute them. Column by column, so that each processor
    and default is looked up once."""
    given = [table.c[k] for k in keys]
    defaulted = [
        c
        for c in table.c
        if c.key not in keys and c.default is not None and not c.default.is_sequence
    ]
    columns = given + defaulted
    dialect = connection.dialect
    result: list[list[Any]] = []
    for index, column in enumerate(columns):
        if index < len(keys):
            values = list(map(itemgetter(keys[index]), rows))
        else:
            spec: Any = column.default
            if not (spec.is_scalar or spec.is_callable):
                raise Unsupported(f"default of {column.key}")
            if spec.is_scalar:
                values = [spec.arg] * len(rows)
            else:
                try:
                    values = [spec.arg(None) for _ in rows]
                except Exception as exc:  # it wants an execution context
                    raise Unsupported(f"default of {column.key}") from exc
        process = column.type._cached_bind_processor(dialect)
        result.append(list(map(process, values)) if process else values)
    return columns, result


@contextmanager
def alone(connection: Connection, statements: int) -> Iterator[None]:
    """Around a write of ``statements`` statements: a savepoint when there are several,
    so that a failure leaves none of them behind (one is undone alone)."""
    several = statements > 1 and connection.in_transaction()
    with connection.begin_nested() if several else nullcontext():
        yield


def multirow_write(
    connection: Connection,
    statement: Callable[[], Any],
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    kind: Hashable,
    split: Callable[[list[list[Any]]], list[int]],
) -> bool:
    """Write ``rows`` (same keys) by what ``statement()`` makes (an ``INSERT`` into
    ``table``, or an upsert: one row's ``VALUES``) as multi-row ``VALUES`` statements,
    ``split(values)`` rows each (the bound values, one list per placeholder), all or
    none of them; False, having done nothing, where that cannot be done exactly, or for
    a few rows. ``kind`` names what ``statement()`` makes for ``table``: its template is
    kept for it, the table, the keys and the dialect."""
    if len(rows) < MIN_ROWS:
        return False
    keys = list(rows[0])
    dialect = connection.dialect
    cache_key = (kind, table, tuple(keys), dialect)
    if cache_key in _TEMPLATES:
        shape = _TEMPLATES[cache_key]
    else:
        if len(_TEMPLATES) >= MAX_COMPILED:
            _TEMPLATES.clear()
        compiled = statement().compile(dialect=dialect, column_keys=keys)
        shape = _TEMPLATES[cache_key] = template(compiled, dialect.paramstyle)
    if shape is None:
        return False
    try:
        columns, values = bound_columns(connection, table, keys, rows)
        at = {column.key: index for index, column in enumerate(columns)}
        ordered = [values[at[key]] for key in shape.order]
    except (Unsupported, KeyError):  # a parameter that is no column's value
        return False
    width, sizes = len(ordered), split(ordered)
    flat = list(chain.from_iterable(zip(*ordered, strict=True)))
    with alone(connection, len(sizes)):
        start = 0
        for size in sizes:
            params = tuple(flat[start * width : (start + size) * width])
            connection.exec_driver_sql(shape.statement(size), params)
            start += size
    return True


def rows_by_parameters(values: list[list[Any]], limit: int) -> list[int]:
    """A ``split`` for ``multirow_write``: as many rows a statement as ``limit`` bound
    parameters allow (``values``: one list per placeholder of a row)."""
    rows = len(values[0]) if values else 0
    per = max(1, limit // max(1, len(values)))
    return [min(per, rows - start) for start in range(0, rows, per)]


def rows_by_text(values: list[list[Any]], limit: int) -> list[int]:
    """A ``split`` for drivers that write the values into the statement's text
    (PyMySQL): as many rows a statement as keep it under ``limit`` bytes, by a bound
    on each value's text (:func:`_text`). Rows that do not fit one statement are
    halved until each part does, so no statement carries fewer than half the rows
    it could."""
    width, sizes = len(values), []
    limit -= 4096  # the statement's own text

    def cut(start: int, stop: int) -> None:
        text = sum(_column_text(column[start:stop]) for column in values)
        if stop - start > 1 and text + 4 * width * (stop - start) > limit:
            middle = (start + stop) // 2
            cut(start, middle)
            cut(middle, stop)
        else:
            sizes.append(stop - start)

    if values and values[0]:
        cut(0, len(values[0]))
    return sizes


def _column_text(column: list[Any]) -> int:
    """A bound on the text of ``column``'s values, as :func:`_text` bounds each, in C
    where the column holds one kind of value (and NULLs)."""
    kinds = set(map(type, column))
    present = [v for v in column if v is not None] if type(None) in kinds else column
    kinds.discard(type(None))
    if kinds <= {str}:
        wide = 2 if all(map(str.isascii, present)) else 4  # UTF-8: at most 4 bytes
        return wide * sum(map(len, present)) + 8 * len(column)
    if kinds <= _FIXED.keys():
        return max(map(_FIXED.__getitem__, kinds)) * len(column)
    if kinds <= {int}:
        return (max(len(str(min(present))), len(str(max(present)))) + 8) * len(column)
    if kinds <= {Decimal}:
        return sum(map(len, map(format, present, repeat("f")))) + 8 * len(column)
    return sum(map(_text, column))


#: The longest text of a value of each of these types, quoted (or of a NULL).
_FIXED = {bool: 4, float: 32, dt.date: 16, dt.time: 24, dt.datetime: 40}


def _text(value: Any) -> int:
    """A bound on the bytes of ``value`` written into a statement's text."""
    kind = type(value)
    if kind is str:
        return 4 * len(value) + 8
    if kind is bytes or kind is bytearray:
        return 2 * len(value) + 8
    if kind is Decimal:
        return len(format(value, "f")) + 8
    return len(str(value)) + 8

"""PostgreSQL's fast paths for many rows, on psycopg2: ``COPY ... FROM STDIN`` for
inserts and one ``INSERT ... VALUES (...), (...) ON CONFLICT`` per page of rows for
upserts (``execute_values``). psycopg2's executemany sends one statement per row.

Values go through each column's SQLAlchemy bind processor, and Python-side column
defaults are computed for the columns a row leaves out, as SQLAlchemy would. Anything
these paths cannot encode exactly (arrays, defaults that need an execution context,
another driver) returns False, and the caller takes the generic path.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from itertools import compress, repeat
from operator import is_not, methodcaller
from typing import TYPE_CHECKING, Any

from storelayer.backend.bulk import Unsupported, bound_columns
from storelayer.backend.driver_errors import driver_errors_wrapped

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection

#: Rows per ``INSERT ... VALUES`` statement of an upsert.
UPSERT_PAGE = 1000

_ESCAPED = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_statement(connection: Connection, table: Table, columns: Sequence[Column[Any]]) -> str:
    """``COPY table (columns) FROM STDIN``. Sent without parameters, so a ``%`` in a name
    stays single (the dialect's quoting doubles it for psycopg2's formatting)."""
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in columns)
    return f"COPY {preparer.format_table(table)} ({names}) FROM STDIN".replace("%%", "%")


def _psycopg2_cursor(connection: Connection) -> Any:
    raw = connection.connection.dbapi_connection
    if raw is None or not hasattr(raw, "cursor") or not hasattr(raw, "get_dsn_parameters"):
        raise Unsupported("not a psycopg2 connection")
    return raw.cursor()


def _copy_text(value: Any) -> str:
    kind = type(value)
    if kind is str:  # the common cases first: this runs once per value
        return value.translate(_COPY_ESCAPES)  # type: ignore[no-any-return]
    if kind is int or kind is float:
        return str(value)
    if hasattr(value, "getquoted"):  # a psycopg2 adapter, e.g. Binary around bytes
        value = getattr(value, "adapted", None)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise Unsupported("psycopg2 adapter")
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, (list, tuple, dict, set)):
        raise Unsupported(f"{type(value).__name__} value")
    return str(value).translate(_COPY_ESCAPES)


def _column_text(values: list[Any]) -> Iterable[str]:
    """COPY text of one column's processed values: one pass in C per column where the
    column holds a single plain type (the common case), else value by value."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    kinds.discard(type(None))
    kind = kinds.pop() if len(kinds) == 1 else None
    encode = _ENCODERS.get(kind) if kind is not None else None
    if encode is None:
        return [_copy_text(v) for v in values]
    # Strings are escaped the whole column at once, the other types value by value.
    column: Callable[[list[Any]], Iterable[str]] = (
        _escaped_strings if kind is str else partial(map, encode)
    )
    if nulls:  # encode the others in one pass, then put them between the NULLs
        present = list(map(is_not, values, repeat(None)))
        text = ["\\N"] * len(values)
        places = compress(range(len(values)), present)
        deque(map(text.__setitem__, places, column(list(compress(values, present)))), maxlen=0)
        return text
    return column(values)


#: Joins the strings of a column to escape them at once: no text PostgreSQL stores
#: holds it (a string that does is escaped on its own, and refused by the server).
_JOIN = "\x00"


def _escaped_strings(values: list[str]) -> list[str]:
    """The COPY text of each string of a column: the strings as they are when none has
    a character to escape, else escaped by a few ``replace`` of their joined text."""
    joined = _JOIN.join(values)
    if not _ESCAPED.search(joined):
        return values
    if joined.count(_JOIN) != len(values) - 1:
        return [value.translate(_COPY_ESCAPES) for value in values]
    for char, escape in _ESCAPES:
        if char in joined:
            joined = joined.replace(char, escape)
    return joined.split(_JOIN)


#: Each character COPY escapes, the backslash first.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


#: Encoders for the types a column usually holds, each applied by ``map`` (no type test
#: per value). Types not listed go through ``_copy_text``.
_ENCODERS: dict[type, Callable[[Any], str]] = {
    str: methodcaller("translate", _COPY_ESCAPES),
    int: int.__repr__,
    float: float.__repr__,
    Decimal: Decimal.__str__,
    bool: {True: "t", False: "f"}.__getitem__,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    bytes: lambda value: "\\\\x" + value.hex(),
}


def copy_insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """``COPY`` ``rows`` into ``table``; False when this path does not apply.

    Rows are encoded a column at a time (``_column_text``), then joined into lines."""
    try:
        cursor = _psycopg2_cursor(connection)
        columns, column_values = bound_columns(connection, table, list(rows[0]), rows)
        text = [_column_text(values) for values in column_values]
    except Unsupported:
        return False
    buffer = io.StringIO()
    buffer.writelines(line + "\n" for line in map("\t".join, zip(*text, strict=True)))
    buffer.seek(0)
    statement = copy_statement(connection, table, columns)
    with cursor, driver_errors_wrapped(connection, statement):
        cursor.copy_expert(statement, buffer)
    return True


def values_upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    conflict_columns: Sequence[str],
    update_columns: Sequence[str],
) -> bool:
    """Upsert ``rows`` a page of rows per statement; False when this path does not
    apply."""
    from psycopg2.extras import execute_values  # type: ignore[import-untyped]

    try:
        cursor = _psycopg2_cursor(connection)
        columns, column_values = bound_columns(connection, table, list(rows[0]), rows)
        data = list(zip(*column_values, strict=True))
    except Unsupported:
        return False
    preparer = connection.dialect.identifier_preparer
    quote = preparer.quote
    names = ", ".join(quote(c.name) for c in columns)
    target = ", ".join(quote(table.c[k].name) for k in conflict_columns)
    action = (
        "DO UPDATE SET "
        + ", ".join(
            f"{quote(table.c[k].name)} = EXCLUDED.{quote(table.c[k].name)}" for k in update_columns
        )
        if update_columns
        else "DO NOTHING"
    )
    sql = (
        f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES %s "
        f"ON CONFLICT ({target}) {action}"
    )
    with cursor, driver_errors_wrapped(connection, sql):
        execute_values(cursor, sql, data, page_size=UPSERT_PAGE)
    return True

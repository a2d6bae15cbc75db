"""Many rows into a table the way a driver inserts them fastest, for backends to use
in ``Operations.bulk_insert``: each column's values put through its bind processor in
one pass (``bound_columns``), then one ``executemany`` of plain driver SQL
(``executemany_insert``: SQLite's runs in C, PyMySQL sends multi-row ``VALUES``),
without the statement parameters SQLAlchemy would build for every row.

Python-side column defaults are computed for the columns rows leave out, as SQLAlchemy
would; a default that needs an execution context, or a driver parameter style this does
not write, makes it answer False, and the caller takes SQLAlchemy's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection

#: The placeholder of each positional parameter style this writes.
_MARKS = {"qmark": "?", "format": "%s"}


class Unsupported(Exception):
    """A value or column a fast path cannot handle exactly."""


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


def executemany_insert(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> bool:
    """Insert ``rows`` (same keys) by one ``executemany`` of driver SQL; False, having
    done nothing, where that cannot be done exactly."""
    dialect = connection.dialect
    style = dialect.paramstyle
    if not rows or (style not in _MARKS and style != "pyformat"):
        return False
    try:
        columns, values = bound_columns(connection, table, list(rows[0]), rows)
    except Unsupported:
        return False
    quote = dialect.identifier_preparer
    names = ", ".join(quote.format_column(column) for column in columns)
    into = f"INSERT INTO {quote.format_table(table)} ({names})"
    params: list[Any]
    if style == "pyformat":
        keys = [f"p{index}" for index in range(len(columns))]
        marks = ", ".join(f"%({key})s" for key in keys)
        params = list(map(dict, map(zip, repeat(keys), zip(*values, strict=True))))
    else:
        marks = ", ".join([_MARKS[style]] * len(columns))
        params = list(zip(*values, strict=True))
    if style != "qmark":
        into = into.replace("%", "%%")  # a literal % in a name, for the driver's formatting
    connection.exec_driver_sql(f"{into} VALUES ({marks})", params)
    return True

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection

#: Rows per ``INSERT ... VALUES`` statement of an upsert.
UPSERT_PAGE = 1000

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Unsupported(Exception):
    """A value or column the fast path cannot handle exactly."""


def _psycopg2_cursor(connection: Connection) -> Any:
    raw = connection.connection.dbapi_connection
    if raw is None or not hasattr(raw, "cursor") or not hasattr(raw, "get_dsn_parameters"):
        raise Unsupported("not a psycopg2 connection")
    return raw.cursor()


def _column_values(
    connection: Connection, table: Table, keys: Sequence[str]
) -> tuple[list[Column[Any]], Callable[[Mapping[str, Any]], list[Any]]]:
    """The columns written and a function turning a row into their processed values
    (given keys, then Python-side defaults of the columns left out)."""
    dialect = connection.dialect
    given = [table.c[k] for k in keys]
    defaulted = [
        c
        for c in table.c
        if c.key not in keys and c.default is not None and not c.default.is_sequence
    ]
    for column in defaulted:
        if not (column.default.is_scalar or column.default.is_callable):  # type: ignore[union-attr]
            raise Unsupported(f"default of {column.key}")
    columns = given + defaulted
    processors = [c.type._cached_bind_processor(dialect) for c in columns]

    def default(column: Column[Any]) -> Any:
        spec: Any = column.default
        if spec.is_scalar:
            return spec.arg
        try:
            return spec.arg(None)
        except Exception as exc:  # it wants an execution context
            raise Unsupported(f"default of {column.key}") from exc

    def values(row: Mapping[str, Any]) -> list[Any]:
        raw = [row[k] for k in keys] + [default(c) for c in defaulted]
        return [p(v) if p else v for p, v in zip(processors, raw, strict=True)]

    return columns, values


@contextmanager
def _as_sqlalchemy_errors(connection: Connection, statement: str) -> Iterator[None]:
    """Driver errors of the raw cursor, wrapped as SQLAlchemy wraps them (an
    ``IntegrityError`` stays one, so the repository reports a ``Conflict``)."""
    import psycopg2  # type: ignore[import-untyped]

    try:
        yield
    except psycopg2.Error as error:
        raise exc.DBAPIError.instance(
            statement,
            None,
            error,
            psycopg2.Error,
            dialect=connection.dialect,
            hide_parameters=True,
        ) from error


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


def copy_insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """``COPY`` ``rows`` into ``table``; False when this path does not apply."""
    try:
        cursor = _psycopg2_cursor(connection)
        columns, values = _column_values(connection, table, list(rows[0]))
        buffer = io.StringIO()
        write = buffer.write
        for row in rows:
            write("\t".join([_copy_text(v) for v in values(row)]))
            write("\n")
    except Unsupported:
        return False
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c.name) for c in columns)
    buffer.seek(0)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    with cursor, _as_sqlalchemy_errors(connection, statement):
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
        columns, values = _column_values(connection, table, list(rows[0]))
        data = [values(row) for row in rows]
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
    with cursor, _as_sqlalchemy_errors(connection, sql):
        execute_values(cursor, sql, data, page_size=UPSERT_PAGE)
    return True

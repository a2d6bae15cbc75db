"""Reading a table in batches held column by column: the driver's rows, streamed, turned
into Python values through each column's type a column at a time (``map`` over the
column with the type's result processor, or the type's ``column_result_processor``
where it has one), not a row at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection, Dialect

#: One batch: a list of values per column, in the table's column order.
Columns = list[list[Any]]
#: Typed values of a column from the driver's.
Convert = Callable[[Sequence[Any]], list[Any]]


def _converter(impl: Any, dialect: Dialect, coltype: Any) -> Convert:
    """The type's ``column_result_processor`` (a whole column at a time) where it has
    one, else its result processor mapped over the column."""
    whole = getattr(impl, "column_result_processor", None)
    if whole is not None:
        return whole(dialect, coltype)  # type: ignore[no-any-return]
    process = impl.result_processor(dialect, coltype)
    return partial(_each, process) if process is not None else list


def _each(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    return list(map(process, values))


def _converters(
    connection: Connection, table: Table, description: Sequence[Sequence[Any]]
) -> list[Convert]:
    dialect = connection.dialect
    return [
        _converter(column.type.dialect_impl(dialect), dialect, described[1])
        for column, described in zip(table.columns, description, strict=True)
    ]


def read_columns(
    connection: Connection, table: Table, batch_size: int, ordered: bool = True
) -> Iterator[Columns]:
    """The rows of ``table`` as batches of at most ``batch_size`` rows, each a list of
    typed values per column (what ``select(table)`` would give), in primary-key order
    when ``ordered``. The statement is SQLAlchemy's; the values reach Python untyped
    and each column's processor runs over the whole column. The caller checks the rows
    read against a count (the copy's source) or another checksum (its target)."""
    query = select(*table.columns)
    if ordered:
        query = query.order_by(*table.primary_key.columns)
    sql = str(query.compile(dialect=connection.dialect))
    streaming = connection.execution_options(stream_results=True, yield_per=batch_size)
    with streaming.exec_driver_sql(sql) as result:
        cursor = result.cursor
        converters = _converters(connection, table, cursor.description)
        # The first batch through SQLAlchemy, which may hold a row it read ahead (to
        # learn the columns of a server-side cursor); the rest from the driver's cursor,
        # without building SQLAlchemy's rows (a third of the time of a read).
        rows = result.fetchmany(batch_size)
        while rows:
            yield [
                convert(values)
                for convert, values in zip(converters, zip(*rows, strict=True), strict=True)
            ]
            if len(rows) < batch_size:
                return
            rows = cursor.fetchmany(batch_size)

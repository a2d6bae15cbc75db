"""Reading a table in batches held column by column: the driver's rows, streamed, turned
into Python values through each column's type a column at a time (``map`` over the
column with the type's result processor, or the type's ``column_result_processor``
where it has one), not a row at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from storelayer.repository._typed import Convert, column_converter, typed_columns

#: One batch: a list of values per column, in the table's column order.
Columns = list[list[Any]]


def _converters(
    connection: Connection, table: Table, description: Sequence[Sequence[Any]]
) -> list[Convert]:
    dialect = connection.dialect
    return [
        column_converter(column.type.dialect_impl(dialect), dialect, described[1])
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
            yield typed_columns(converters, rows)
            if len(rows) < batch_size:
                return
            rows = cursor.fetchmany(batch_size)

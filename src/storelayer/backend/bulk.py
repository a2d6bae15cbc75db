"""Many rows into a table the way a driver inserts them fastest, for backends to use
in ``Operations.bulk_insert``: each column's values put through its bind processor in
one pass (``bound_columns``), then one ``executemany`` of the statement's driver SQL
(``driver_executemany``: SQLite's runs in C, PyMySQL sends multi-row ``VALUES``),
without the statement parameters SQLAlchemy would build for every row.

Python-side column defaults are computed for the columns rows leave out, as SQLAlchemy
would; a default that needs an execution context, or a parameter that is no column's
value, makes it answer False, and the caller takes SQLAlchemy's path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection

#: Fewer rows than this take SQLAlchemy's path.
MIN_ROWS = 50
#: Compiled statements kept (by what they are, their table, keys and dialect).
MAX_COMPILED = 256
_COMPILED: dict[tuple[Any, ...], Any] = {}


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


def driver_executemany(
    connection: Connection,
    statement: Callable[[], Any],
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    kind: Hashable,
) -> bool:
    """Execute what ``statement()`` makes (an ``INSERT`` into ``table``, or an upsert:
    one row's ``VALUES``) for every row of ``rows`` (same keys) by one ``executemany`` of
    its driver SQL; False, having done nothing, where that cannot be done exactly, or for
    a few rows. ``kind`` names what ``statement()`` makes for ``table``: the compiled
    statement is kept for it, the table, the keys and the dialect."""
    if len(rows) < MIN_ROWS:
        return False
    keys = list(rows[0])
    try:
        columns, values = bound_columns(connection, table, keys, rows)
    except Unsupported:
        return False
    dialect = connection.dialect
    cache_key = (kind, table, tuple(keys), dialect)
    compiled: Any = _COMPILED.get(cache_key)
    if compiled is None:
        if len(_COMPILED) >= MAX_COMPILED:
            _COMPILED.clear()
        compiled = _COMPILED[cache_key] = statement().compile(dialect=dialect, column_keys=keys)
    if compiled.escaped_bind_names:
        return False
    at = {column.key: index for index, column in enumerate(columns)}
    try:
        if dialect.positional:
            order = [at[compiled.binds[name].key] for name in compiled.positiontup]
            params: list[Any] = list(zip(*[values[i] for i in order], strict=True))
        else:
            binds = list(compiled.binds.values())
            names = [compiled.bind_names[bind] for bind in binds]
            ordered = [values[at[bind.key]] for bind in binds]
            params = list(map(dict, map(zip, repeat(names), zip(*ordered, strict=True))))
    except KeyError:  # a parameter that is no column's value
        return False
    connection.exec_driver_sql(compiled.string, params)
    return True

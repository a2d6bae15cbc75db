"""Values typed a column at a time: where a column's type can turn a whole column of
what the driver returns into Python values in one pass (``column_result_processor``:
SQLite's exact decimals, in C), a stream's fetches are typed that way instead of by a
Python call a value, and the same ``Row`` objects are made from them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import CursorResult, Dialect, Row

#: Typed values of a column from the driver's.
Convert = Callable[[Sequence[Any]], list[Any]]


def column_converter(impl: Any, dialect: Dialect, coltype: Any) -> Convert:
    """The type's ``column_result_processor`` (a whole column at a time) where it has
    one, else its result processor mapped over the column (``list``: none)."""
    whole = getattr(impl, "column_result_processor", None)
    if whole is not None:
        return whole(dialect, coltype)  # type: ignore[no-any-return]
    process = impl.result_processor(dialect, coltype)
    return partial(_each, process) if process is not None else list


def _each(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    return list(map(process, values))


def typed_partitions(result: CursorResult[Any], size: int) -> Iterator[Iterable[Row[Any]]]:
    """``result.partitions(size)``, but each fetch after the first (SQLAlchemy's: it may
    hold rows it read ahead) made into rows one at a time as they are taken, as
    iterating the result does - a fetch's rows made at once outlive the collector's
    young passes, whose older passes then cost a 100k-row stream a tenth of its time -
    and, where a column's type types a whole column in one pass, typed a column at a
    time first. The same ``Row`` objects either way."""
    plan = _plan(result)
    if plan is None:
        yield from result.partitions(size)
        return
    converters, make = plan
    first: Sequence[Any] = result.fetchmany(size)
    fetched = len(first)
    if first:
        yield first
    # The driver's rows, its errors wrapped as SQLAlchemy wraps them.
    fetch = partial(result.cursor_strategy.fetchmany, result, result.cursor, size)
    while fetched == size:
        rows: Any = fetch()
        fetched = len(rows)
        if not fetched:
            return
        if converters is not None:  # typed, the driver's rows let go of before the yield
            typed = typed_columns(converters, rows)
            rows = zip(*typed, strict=True)
            del typed
        yield map(make, rows)


def typed_columns(converters: Sequence[Convert], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The driver's ``rows`` as one list of typed values per column. Column by column
    (``zip(*rows)`` would make an iterator a row, which the collector counts: a pass of
    it every fetch)."""
    return [
        convert(list(map(itemgetter(index), rows))) for index, convert in enumerate(converters)
    ]


def _plan(
    result: CursorResult[Any],
) -> tuple[list[Convert] | None, Callable[[Any], Row[Any]]] | None:
    """Each column's converter (None: SQLAlchemy's processors, applied by ``Row``) and
    the maker of a row; None where the result is not a compiled statement's."""
    try:
        metadata: Any = result._metadata
        entries: Any = result.context.compiled._result_columns  # type: ignore[union-attr]
        description = result.cursor.description
        processors, key_to_index = metadata._effective_processors, metadata._key_to_index
    except AttributeError:
        return None
    if len(entries) != len(description):
        return None
    dialect = result.dialect
    impls = [entry.type.dialect_impl(dialect) for entry in entries]
    if not any(hasattr(impl, "column_result_processor") for impl in impls):
        return None, partial(Row, metadata, processors, key_to_index)
    converters = [
        column_converter(impl, dialect, described[1])
        for impl, described in zip(impls, description, strict=True)
    ]
    return converters, partial(Row, metadata, None, key_to_index)

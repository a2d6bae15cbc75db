"""The statements of filtered reads (``list``, ``count``, ``page`` of ``rows`` and of the
repository), built once per shape.

A read's shape is what its SQL depends on: the model, its keyword filters (keys, and
for each value either the value itself where it makes the SQL, as ``None`` makes
``IS NULL``, or its type, which chooses the bind type), its order, and whether it has a
limit and an offset. The statement of a shape is built once, by the general path
(``_statements``) from the first read's values with its bind parameters renamed, and
kept; a repeated read then neither builds its statement nor hashes it (SQLAlchemy
memoizes a statement object's cache key), which on SQLite was a third of a filtered
count. Its values are checked as the general path checks them and go as parameters.
Positional expressions, filters across relationships, values that are SQL expressions
and anything invalid take the general path, which builds the statement each time or
raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from storelayer.errors import QueryError
from storelayer.repository._query import ModelColumns, order_terms, where_clauses
from storelayer.repository._statements import checked_limit, ordered_slice
from storelayer.repository._text import check_text_filter

#: Shapes kept at most; past it the cache starts again (shapes are few in practice).
MAX_SHAPES = 1024
_SHAPES: dict[tuple[Any, ...], Select[Any] | None] = {}  # None: the general path
_UNKNOWN: Any = object()
#: Lookups whose value is one parameter (``in``: a list in one expanding parameter).
_ONE = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "like", "ilike", "in", "not_in"})
_LISTS = (list, tuple, set, frozenset)
Shaped = tuple[Select[Any], dict[str, Any]]


def _types(value: Any) -> Any:
    if isinstance(value, _LISTS):
        return frozenset(map(type, value))
    return type(value)


def _slots(
    cols: ModelColumns, filters: Mapping[str, Any]
) -> tuple[tuple[Any, ...], list[Any]] | None:
    """The filters' part of the shape and their values in parameter order, or ``None``
    for the general path."""
    slots: list[Any] = []
    values: list[Any] = []
    for key, value in filters.items():
        name, _, lookup = key.partition("__")
        lookup = lookup or "eq"
        if name not in cols.names or isinstance(value, ClauseElement):
            return None
        if value is None or lookup == "isnull":
            if not isinstance(value, bool) and not (value is None and lookup in ("eq", "ne")):
                return None
            slots.append((key, value))  # IS [NOT] NULL: no parameter
            continue
        if hasattr(value, "__clause_element__"):
            return None
        if lookup in _ONE and (isinstance(value, _LISTS) == lookup.endswith("in")):
            values.append(list(value) if lookup.endswith("in") else value)
        elif lookup == "between" and isinstance(value, (tuple, list)) and len(value) == 2:
            values.extend(value)
        else:
            return None
        if cols.holds_text(name):
            check_text_filter(f"filter {key!r} on {cols.model.__name__}.{name}", value)
        slots.append((key, _types(value)))
    return tuple(slots), values


def _conditions(
    cols: ModelColumns, filters: Mapping[str, Any], values: list[Any]
) -> list[Any] | None:
    """The general path's conditions for ``filters``, their bind parameters renamed
    ``p0``, ``p1``... (types kept); ``None`` unless they hold ``values`` in that order."""
    found: list[Any] = []

    def rename(element: Any, **_kw: Any) -> Any:
        if not isinstance(element, BindParameter):
            return None
        found.append(element.value)
        return bindparam(f"p{len(found) - 1}", type_=element.type, expanding=element.expanding)

    general = where_clauses(cols, (), filters)
    built = [replacement_traverse(c, {}, rename) for c in general]
    if len(found) != len(values):
        return None
    same = all(a is b or a == b for a, b in zip(found, values, strict=True))
    return built if same else None


def _shaped(
    key: tuple[Any, ...],
    cols: ModelColumns,
    filters: Mapping[str, Any],
    make: Callable[[list[Any]], Select[Any]],
) -> Shaped | None:
    found = _slots(cols, filters)
    if found is None:
        return None
    slots, values = found
    key += (cols.model, slots)
    stmt = _SHAPES.get(key, _UNKNOWN)
    if stmt is _UNKNOWN:  # one lookup: another thread may clear the cache meanwhile
        if len(_SHAPES) >= MAX_SHAPES:
            _SHAPES.clear()
        conditions = _conditions(cols, filters, values)
        stmt = _SHAPES[key] = None if conditions is None else make(conditions)
    if stmt is None:
        return None
    return stmt, {f"p{i}": value for i, value in enumerate(values)}


def shaped_rows(
    cols: ModelColumns,
    columns: Sequence[Any],
    filters: Mapping[str, Any],
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Shaped | None:
    """``SELECT columns WHERE ... ORDER BY ... LIMIT ... OFFSET ...`` of this shape and
    its parameters, or ``None`` for the general path; ``columns``: the mapped class
    (instances) or the same list of labelled columns every time (values)."""
    try:
        terms = tuple(order_terms(cols, order_by))
        limit, offset = checked_limit(limit, "limit"), checked_limit(offset, "offset")
    except QueryError:
        return None  # the general path raises, in its own order of checks

    def make(conditions: list[Any]) -> Select[Any]:
        stmt = select(*columns).where(*conditions)
        given_limit: Any = None if limit is None else bindparam("row_limit")
        given_offset: Any = bindparam("row_offset") if offset else None
        return ordered_slice(stmt, cols, terms, given_limit, given_offset)

    key = ("rows", tuple(columns), terms, limit is not None, bool(offset))
    found = _shaped(key, cols, filters, make)
    if found is not None:
        if limit is not None:
            found[1]["row_limit"] = limit
        if offset:
            found[1]["row_offset"] = offset
    return found


def shaped_count(cols: ModelColumns, filters: Mapping[str, Any]) -> Shaped | None:
    """``SELECT count(*) FROM table WHERE ...`` of this shape and its parameters, or
    ``None`` for the general path."""

    def make(conditions: list[Any]) -> Select[Any]:
        return select(func.count()).select_from(cols.table).where(*conditions)

    return _shaped(("count",), cols, filters, make)

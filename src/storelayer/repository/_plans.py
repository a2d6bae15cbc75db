"""Reads as plans, without I/O: each read of ``repo.rows`` / ``db.rows`` is a generator
that yields the statements it needs (with their parameters) and receives their
results, so the sync and async readers (``repository._rows``, ``aio._rows``) are the
same code driven by a loop that either calls or awaits ``execute``.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Result

from storelayer.errors import NotFound, QueryError
from storelayer.repository import _statements as sql
from storelayer.repository._cursor import cursor_key, decode_cursor, encode_cursor
from storelayer.repository._kept import shaped_count, shaped_rows
from storelayer.repository._page import KeysetPage, clamp_page, offset_page
from storelayer.repository._query import ModelColumns

#: A read: yields statements (with their parameters, if any), receives each one's
#: result, returns the read's value.
Step = tuple[Select[Any], dict[str, Any] | None]
Plan = Generator[Step, Result[Any], Any]
Order = str | Sequence[str] | None

_SELECTS: dict[type[Any], list[Any]] = {}
_BY_KEY: dict[type[Any], Select[Any]] = {}


def _columns(cols: ModelColumns) -> list[Any]:
    """The table's columns labelled with the model's attribute names (computed once)."""
    found = _SELECTS.get(cols.model)
    if found is None:
        table = cols.table.c
        found = _SELECTS[cols.model] = [
            table[key].label(name) for name, key in cols.column_keys.items()
        ]
    return found


def select_values(
    cols: ModelColumns, expressions: Sequence[Any], filters: dict[str, Any], **options: Any
) -> Select[Any]:
    """The repository's ``select_rows`` statement, selecting column values instead of
    the mapped entity."""
    return sql.select_rows(cols, expressions, filters, **options).with_only_columns(*_columns(cols))


def _identity(cols: ModelColumns, id: Any) -> tuple[Any, ...]:
    values = tuple(id) if isinstance(id, (tuple, list)) else (id,)
    if len(values) != len(cols.primary_key):
        raise QueryError(
            f"{cols.model.__name__} has a primary key of {len(cols.primary_key)} column(s) "
            f"{list(cols.primary_key)}; pass a tuple of that many values"
        )
    return values


def _by_key(cols: ModelColumns) -> Select[Any]:
    """``SELECT columns WHERE pk = :pk_0 [AND ...]``, built once per model: executing
    the same statement object skips building and hashing it again."""
    found = _BY_KEY.get(cols.model)
    if found is None:
        table = cols.table.c
        where = [
            table[cols.column_keys[name]] == bindparam(f"pk_{i}")
            for i, name in enumerate(cols.primary_key)
        ]
        found = _BY_KEY[cols.model] = select(*_columns(cols)).where(*where)
    return found


def plan_get(cols: ModelColumns, id: Any) -> Plan:
    key = {f"pk_{i}": value for i, value in enumerate(_identity(cols, id))}
    result = yield _by_key(cols), key
    return result.one_or_none()


def plan_get_or_raise(cols: ModelColumns, id: Any) -> Plan:
    found = yield from plan_get(cols, id)
    if found is None:
        raise NotFound(f"{cols.model.__name__} with primary key {id!r} does not exist")
    return found


def plan_rows(
    cols: ModelColumns,
    expressions: Sequence[Any],
    filters: dict[str, Any],
    **options: Any,
) -> Plan:
    shaped = None if expressions else shaped_rows(cols, _columns(cols), filters, **options)
    result = yield shaped or (select_values(cols, expressions, filters, **options), None)
    return result.all()


def plan_get_by(cols: ModelColumns, expressions: Sequence[Any], filters: dict[str, Any]) -> Plan:
    found = yield from plan_rows(cols, expressions, filters, limit=2)
    if len(found) > 1:
        raise several_rows(cols.model.__name__, filters)
    return found[0] if found else None


def several_rows(model: str, filters: dict[str, Any]) -> QueryError:
    """``get_by()``'s error when more than one row matches: the columns filtered on,
    never their values (they may be personal data)."""
    on = f"the filters on {', '.join(sorted(filters))}" if filters else "the expressions"
    return QueryError(
        f"get_by() found several {model} rows for {on}; use list(), or filter on a unique column"
    )


def plan_page(
    cols: ModelColumns,
    page: int,
    per_page: int,
    expressions: Sequence[Any],
    filters: dict[str, Any],
    order_by: Order,
    count: bool,
) -> Plan:
    page, per_page = clamp_page(page, per_page)
    found = yield from plan_rows(
        cols,
        expressions,
        filters,
        order_by=order_by or list(cols.primary_key),
        limit=per_page + 1,
        offset=(page - 1) * per_page,
    )
    total = None
    if count:
        total = yield from plan_count(cols, expressions, filters)
    return offset_page(found, page=page, per_page=per_page, total=total)


def plan_keyset(
    cols: ModelColumns,
    expressions: Sequence[Any],
    filters: dict[str, Any],
    after: str | None,
    limit: int,
    order_by: Order,
) -> Plan:
    _, limit = clamp_page(1, limit)
    terms = sql.keyset_terms(cols, order_by)
    ordering = sql.ordering_key(terms)
    stmt = select_values(cols, expressions, filters, order_by=ordering, limit=limit + 1)
    if after is not None:
        values = decode_cursor(after, ordering, cursor_key(), cols.table.fullname)
        stmt = stmt.where(sql.after_row(cols, terms, values))
    found = list((yield stmt, None).all())
    items, has_next = found[:limit], len(found) > limit
    cursor = None
    if has_next:
        last = [getattr(items[-1], name) for name, _ in terms]
        cursor = encode_cursor(ordering, last, cursor_key(), cols.table.fullname)
    return KeysetPage(items, cursor, has_next)


def plan_count(cols: ModelColumns, expressions: Sequence[Any], filters: dict[str, Any]) -> Plan:
    shaped = None if expressions else shaped_count(cols, filters)
    result = yield shaped or (sql.count_rows(cols, expressions, filters), None)
    return int(result.scalar() or 0)


def stream_needs_unit(stmt: Select[Any], batch_size: int) -> Any:
    """The streamer of reads of their own: a stream needs a unit of work."""
    raise QueryError(
        "db.rows(...).stream() has no transaction to hold a server-side cursor: stream "
        "in a unit of work, `with db.read_session() as s: s.repository(Model).rows.stream()`"
    )

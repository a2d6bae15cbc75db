"""The statements every repository method runs, built without a session so that the
sync and async repositories share one implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, and_, delete, exists, func, literal, or_, select, tuple_
from sqlalchemy.sql import Delete

from storelayer._engines import AUTOCOMMIT_KEY
from storelayer.errors import QueryError
from storelayer.repository._query import ModelColumns, order_clauses, order_terms, where_clauses

#: The largest LIMIT/OFFSET every database takes (a signed 64-bit integer).
MAX_LIMIT = 2**63 - 1


def checked_limit(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QueryError(f"{name} must be a whole number >= 0, got {value!r}")
    if value > MAX_LIMIT:
        raise QueryError(
            f"{name} must be at most {MAX_LIMIT} (2**63 - 1), got {value}; pass None "
            "for no limit"
        )
    return value


def select_rows(
    cols: ModelColumns,
    expressions: Sequence[Any],
    filters: Mapping[str, Any],
    *,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
    options: Sequence[Any] = (),
) -> Select[Any]:
    """``SELECT model WHERE ... ORDER BY ... LIMIT ... OFFSET ...``; ``options`` are
    loader options (``selectinload(User.projects)``)."""
    stmt = select(cols.model).where(*where_clauses(cols, expressions, filters))
    if options:
        stmt = stmt.options(*options)
    terms = order_terms(cols, order_by)
    limit, offset = checked_limit(limit, "limit"), checked_limit(offset, "offset")
    return ordered_slice(stmt, cols, terms, limit, offset or None)


def ordered_slice(
    stmt: Select[Any],
    cols: ModelColumns,
    terms: Sequence[tuple[str, bool]],
    limit: Any | None,
    offset: Any | None,
) -> Select[Any]:
    """``stmt`` ordered by checked ``terms``, with ``limit`` and ``offset`` (numbers, or
    bind parameters to give them later) where they are not None."""
    if terms:
        stmt = stmt.order_by(*order_clauses(cols, terms))
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset is not None:
        stmt = stmt.offset(offset)
    return stmt


def count_rows(
    cols: ModelColumns, expressions: Sequence[Any], filters: Mapping[str, Any]
) -> Select[Any]:
    """``SELECT count(*) FROM table WHERE ...`` (no subquery)."""
    return (
        select(func.count())
        .select_from(cols.table)
        .where(*where_clauses(cols, expressions, filters))
    )


def any_row(
    cols: ModelColumns, expressions: Sequence[Any], filters: Mapping[str, Any]
) -> Select[Any]:
    """``SELECT EXISTS (SELECT 1 FROM table WHERE ...)``."""
    inner = select(1).select_from(cols.table).where(*where_clauses(cols, expressions, filters))
    return select(exists(inner))


def delete_rows(
    cols: ModelColumns, expressions: Sequence[Any], filters: Mapping[str, Any]
) -> Delete:
    """``DELETE FROM table WHERE ...``; refuses an empty filter."""
    clauses = where_clauses(cols, expressions, filters)
    if not clauses:
        raise QueryError(
            "delete_where() without a filter would delete every row; pass a filter, or "
            "sqlalchemy.true() to delete all rows on purpose"
        )
    return delete(cols.table).where(*clauses)


def reload_rows(cols: ModelColumns, identities: Sequence[tuple[Any, ...]]) -> Select[Any]:
    """``SELECT`` the rows of these primary-key identities (a row value for composite
    keys)."""
    pk = [cols.names[name] for name in cols.primary_key]
    if len(pk) == 1:
        return select(cols.model).where(pk[0].in_([ident[0] for ident in identities]))
    return select(cols.model).where(tuple_(*pk).in_(list(identities)))


def keyset_terms(
    cols: ModelColumns, order_by: str | Sequence[str] | None
) -> list[tuple[str, bool]]:
    """The ordering of a keyset page: the requested terms, then the primary key as the
    tie-breaker. Every term must be non-nullable (NULLs have no place in a keyset)."""
    terms = order_terms(cols, order_by)
    named = {name for name, _ in terms}
    terms += [(pk, False) for pk in cols.primary_key if pk not in named]
    for name, _ in terms:
        if name not in cols.names:
            raise QueryError(
                f"keyset() orders by the model's own columns, not {name!r}; use page() to "
                "order by a related model's column"
            )
        column = cols.mapper.columns[name]
        if column.nullable and name not in cols.primary_key:
            raise QueryError(
                f"keyset() cannot order by nullable column {name!r}; order by non-null "
                "columns (the primary key is added as the tie-breaker)"
            )
    return terms


def after_row(cols: ModelColumns, terms: Sequence[tuple[str, bool]], values: Sequence[Any]) -> Any:
    """Rows strictly after ``values`` in the ordering ``terms``:
    ``a > x OR (a = x AND b > y) OR ...``, each comparison in its term's direction."""
    if len(values) != len(terms):
        raise QueryError("invalid keyset cursor: it does not match this ordering")
    # Values are bound with their column's type: a bare True/False would only allow
    # ``=``/``!=`` (SQLAlchemy's rule for boolean constants), not ``<``/``>``.
    bound = [
        literal(value, cols.names[name].type)
        for (name, _), value in zip(terms, values, strict=True)
    ]
    branches = []
    for i, (name, descending) in enumerate(terms):
        column = cols.names[name]
        equal = [cols.names[n] == bound[j] for j, (n, _) in enumerate(terms[:i])]
        beyond = column < bound[i] if descending else column > bound[i]
        branches.append(and_(*equal, beyond))
    return or_(*branches)


def ordering_key(terms: Sequence[tuple[str, bool]]) -> str:
    """The canonical text of a keyset ordering, stored in its cursors."""
    return ",".join(("-" if d else "") + n for n, d in terms)


def check_streamable(session_info: Mapping[str, Any]) -> None:
    """``stream()`` reads through a server-side cursor, which needs a transaction."""
    if session_info.get(AUTOCOMMIT_KEY):
        raise QueryError(
            "stream() reads through a server-side cursor, which needs a transaction: "
            "use read_session() without autocommit=True, or session()"
        )


#: The keys of a row: rows are grouped by it so each executemany has one shape.
key_set: Callable[[Mapping[str, Any]], tuple[str, ...]] = tuple


def as_rows(
    cols: ModelColumns, rows: Iterable[Any], *, purpose: str, insert: bool = False
) -> list[dict[str, Any]]:
    """Dicts of column values from dicts or model instances: every key and every value
    of every row checked (``insert``: and every required column given), so that a bad
    row anywhere in the batch fails it before anything is written."""
    rows = list(rows)
    if set(map(type, rows)) == {dict}:  # the usual case: copied in C
        result = list(map(dict.copy, rows))
    else:
        result = [_values(cols, row, purpose) for row in rows]
    cols.check_rows(result, purpose=purpose, insert=insert)
    return result


def _values(cols: ModelColumns, row: Any, purpose: str) -> dict[str, Any]:
    if isinstance(row, cols.model):
        return {name: getattr(row, name) for name in cols.names if name in row.__dict__}
    if isinstance(row, Mapping):
        return dict(row)
    raise QueryError(
        f"{purpose}: expected dicts or {cols.model.__name__} instances, got a "
        f"{type(row).__name__}"
    )

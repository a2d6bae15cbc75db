"""``Repository.aggregate``: ``GROUP BY`` statements from names, checked like filters.

``values`` maps each output name to ``"function"`` or ``"function:column"``
(``{"count": "count", "avg": "avg:value"}``); ``group_by`` names the model's columns;
filters may cross relationships as everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, func, select

from storelayer._shapes import AttributeDict
from storelayer.errors import QueryError
from storelayer.repository._query import (
    ModelColumns,
    order_clauses,
    order_terms,
    where_clauses,
)

#: The aggregate functions ``values`` may name.
FUNCTIONS = ("avg", "count", "max", "min", "sum")
DEFAULT_VALUES: Mapping[str, str] = {"count": "count"}


def _value(cols: ModelColumns, label: str, spec: str) -> Any:
    name, _, column = spec.partition(":")
    if name not in FUNCTIONS:
        raise QueryError(
            f"aggregate value {label!r}: unknown function {name!r}; valid functions: "
            f"{', '.join(FUNCTIONS)} (as 'avg:column')"
        )
    if not column:
        if name != "count":
            raise QueryError(f"aggregate value {label!r}: {name} needs a column ('{name}:col')")
        return func.count().label(label)
    return getattr(func, name)(cols.attribute(column, purpose="aggregate")).label(label)


def group_names(group_by: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``."""
    if group_by is None:
        return []
    parts = group_by.split(",") if isinstance(group_by, str) else list(group_by)
    return [part.strip() for part in parts]


def aggregate_rows(
    cols: ModelColumns,
    expressions: Sequence[Any],
    filters: Mapping[str, Any],
    *,
    group_by: str | Sequence[str] | None,
    values: Mapping[str, str] | None,
    order_by: str | Sequence[str] | None,
) -> Select[Any]:
    """``SELECT groups..., aggregates... WHERE ... GROUP BY groups ORDER BY ...``,
    ordered by the groups unless ``order_by`` names groups or values."""
    chosen = dict(values or DEFAULT_VALUES)
    groups = group_names(group_by)
    clash = set(groups) & set(chosen)
    if clash:
        raise QueryError(f"aggregate: {sorted(clash)} name both a group and a value")
    keys = [cols.attribute(name, purpose="group by").label(name) for name in groups]
    measures = [_value(cols, label, spec) for label, spec in chosen.items()]
    stmt = select(*keys, *measures).select_from(cols.table)
    stmt = stmt.where(*where_clauses(cols, expressions, filters))
    if keys:
        stmt = stmt.group_by(*keys)
    if order_by is None:
        return stmt.order_by(*keys)
    parts = order_by.split(",") if isinstance(order_by, str) else list(order_by)
    by_label = {**{k.name: k for k in keys}, **{m.name: m for m in measures}}
    ordering = []
    for raw in parts:
        name = raw.strip().lstrip("+-").strip()
        if name not in by_label:
            ordering += order_clauses(cols, order_terms(cols, raw))
            continue
        ordering.append(by_label[name].desc() if raw.strip().startswith("-") else by_label[name])
    return stmt.order_by(*ordering)


def as_results(rows: Sequence[Any]) -> list[AttributeDict]:
    """Rows as dicts whose keys read as attributes (``row["count"]``, ``row.count``)."""
    return [AttributeDict(row._mapping) for row in rows]

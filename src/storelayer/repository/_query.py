"""Filters and ordering from keyword lookups, checked against the model's columns.

Pure statement building: nothing here touches a session, so the sync and async
repositories share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, inspect, not_
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnClause

from storelayer.errors import QueryError
from storelayer.repository._text import check_text_filter, is_text
from storelayer.repository._values import missing_required, required, value_check

Lookup = Callable[[Any, Any], ColumnElement[bool]]


def _between(column: Any, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise QueryError(f"__between takes a (low, high) pair, got {value!r}")
    return column.between(value[0], value[1])  # type: ignore[no-any-return]


def _isnull(column: Any, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, bool):
        raise QueryError(f"__isnull takes True or False, got {value!r}")
    return column.is_(None) if value else column.is_not(None)  # type: ignore[no-any-return]


def _sequence(value: Any, lookup: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise QueryError(f"__{lookup} takes a list, tuple or set, got {value!r}")
    return list(value)


LOOKUPS: Mapping[str, Lookup] = {
    "eq": lambda c, v: c.is_(None) if v is None else c == v,
    "ne": lambda c, v: c.is_not(None) if v is None else c != v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "in": lambda c, v: c.in_(_sequence(v, "in")),
    "not_in": lambda c, v: not_(c.in_(_sequence(v, "not_in"))),
    "like": lambda c, v: c.like(v),
    "ilike": lambda c, v: c.ilike(v),
    "isnull": _isnull,
    "between": _between,
}


class ModelColumns:
    """The filterable and orderable attributes of a mapped class."""

    def __init__(self, model: type[Any]) -> None:
        mapper: Mapper[Any] = inspect(model)
        self.model = model
        self.mapper = mapper
        self.names: dict[str, Any] = {
            attr.key: getattr(model, attr.key) for attr in mapper.column_attrs
        }
        self.primary_key: tuple[str, ...] = tuple(
            mapper.get_property_by_column(col).key for col in mapper.primary_key
        )
        self.table = cast(Table, mapper.local_table)
        #: attribute name -> table column key (they differ for mapped_column("name")).
        self.column_keys: dict[str, str] = {
            attr.key: attr.columns[0].key for attr in mapper.column_attrs
        }
        self.keys_match = all(name == key for name, key in self.column_keys.items())
        columns = {attr.key: attr.columns[0] for attr in mapper.column_attrs}
        #: attribute name -> the check of the values it may be set to.
        self.checks = {
            name: value_check(f"{model.__name__}.{name}", column)
            for name, column in columns.items()
        }
        #: attribute names an insert must give a value.
        self.required = frozenset(name for name, column in columns.items() if required(column))

    def to_table(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row keyed by attribute names, re-keyed by table column keys (the row
        itself when every attribute is named like its column)."""
        if self.keys_match:
            return row
        return {self.column_keys[name]: value for name, value in row.items()}

    def attribute(self, name: str, *, purpose: str) -> Any:
        """The mapped attribute called ``name``, or a ``QueryError`` listing valid names."""
        try:
            return self.names[name]
        except KeyError:
            raise QueryError(
                f"{self.model.__name__} has no column {name!r} to {purpose}; valid names: "
                f"{', '.join(sorted(self.names))}"
            ) from None

    def check_values(self, values: Mapping[str, Any], *, purpose: str) -> None:
        """Every key of ``values`` must be a column, and every value one its column can
        hold (``InvalidValue`` otherwise)."""
        checks = self.checks
        for name, value in values.items():
            check = checks.get(name)
            if check is None:
                self.attribute(name, purpose=purpose)  # raises, naming the valid names
            else:
                check(value)

    def check_insert(self, names: Iterable[str]) -> None:
        """An inserted row with these attribute names gives every required column."""
        missing = self.required.difference(names)
        if missing:
            raise missing_required(f"{self.model.__name__}.{min(missing)}")

    def holds_text(self, name: str) -> bool:
        """Whether column ``name`` holds text."""
        return is_text(self.mapper.column_attrs[name].columns[0].type)


def where_clauses(
    columns: ModelColumns, expressions: Sequence[Any], filters: Mapping[str, Any]
) -> list[ColumnElement[bool]]:
    """SQL conditions for column expressions plus ``field__lookup=value`` keywords."""
    clauses = [_expression(e) for e in expressions]
    for key, value in filters.items():
        name, _, lookup = key.partition("__")
        column = columns.attribute(name, purpose="filter on")
        build = LOOKUPS.get(lookup or "eq")
        if build is None:
            raise QueryError(
                f"unknown lookup {lookup!r} in {key!r}; valid lookups: {', '.join(sorted(LOOKUPS))}"
            )
        if columns.holds_text(name):
            check_text_filter(f"filter {key!r} on {columns.model.__name__}.{name}", value)
        clauses.append(build(column, value))
    return clauses


def _expression(value: Any) -> ColumnElement[bool]:
    if isinstance(value, ColumnElement) and not isinstance(value, ColumnClause):
        return value
    raise QueryError(
        f"positional filters must be SQLAlchemy column expressions such as User.age > 3, "
        f"got {value!r}; use keyword lookups (age__gt=3) for plain values"
    )


def order_terms(
    columns: ModelColumns, order_by: str | Sequence[str] | None
) -> list[tuple[str, bool]]:
    """``"-created_at,name"`` -> ``[("created_at", True), ("name", False)]`` (name,
    descending); every name checked against the model."""
    if order_by is None:
        return []
    parts = order_by.split(",") if isinstance(order_by, str) else list(order_by)
    terms: list[tuple[str, bool]] = []
    for raw in parts:
        part = raw.strip()
        descending = part.startswith("-")
        name = part.lstrip("+-").strip()
        columns.attribute(name, purpose="order by")
        terms.append((name, descending))
    return terms


def order_clauses(columns: ModelColumns, terms: Sequence[tuple[str, bool]]) -> list[Any]:
    """``ORDER BY`` expressions for checked terms."""
    return [
        columns.names[name].desc() if descending else columns.names[name].asc()
        for name, descending in terms
    ]

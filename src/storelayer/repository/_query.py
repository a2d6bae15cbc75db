"""Filters and ordering from keyword lookups, checked against the model's columns.

Pure statement building: nothing here touches a session, so the sync and async
repositories share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, inspect, not_, select
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.sql.elements import ColumnClause

from storelayer.errors import QueryError
from storelayer.repository._batch import column_check
from storelayer.repository._text import check_text_filter, is_text
from storelayer.repository._values import missing_required, required, value_check

Lookup = Callable[[Any, Any], ColumnElement[bool]]


def _kind(value: Any) -> str:
    """What was given, never the value itself (it may be personal data)."""
    return f"a {type(value).__name__}"


def _between(column: Any, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise QueryError(f"__between takes a (low, high) pair, got {_kind(value)}")
    return column.between(value[0], value[1])  # type: ignore[no-any-return]


def _isnull(column: Any, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, bool):
        raise QueryError(f"__isnull takes True or False, got {_kind(value)}")
    return column.is_(None) if value else column.is_not(None)  # type: ignore[no-any-return]


def _sequence(value: Any, lookup: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise QueryError(f"__{lookup} takes a list, tuple or set, got {_kind(value)}")
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


_COLUMNS: dict[type[Any], ModelColumns] = {}


def columns_of(model: type[Any]) -> ModelColumns:
    """The checked column names of ``model``, computed once per model."""
    found = _COLUMNS.get(model)
    if found is None:
        found = _COLUMNS[model] = ModelColumns(model)
    return found


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
        #: attribute name -> the check of a bulk write's values for it (``check_rows``).
        self.column_checks = {
            name: column_check(f"{model.__name__}.{name}", column)
            for name, column in columns.items()
        }
        #: attribute names an insert must give a value.
        self.required = frozenset(name for name, column in columns.items() if required(column))
        #: relationship name -> its property (``author`` of ``author__name="x"``).
        self.relationships: dict[str, RelationshipProperty[Any]] = {
            rel.key: rel for rel in mapper.relationships
        }

    def related(self, name: str, *, purpose: str) -> ModelColumns:
        """The columns of the class relationship ``name`` leads to, or a ``QueryError``
        listing the relationships."""
        rel = self.relationships.get(name)
        if rel is None:
            raise QueryError(
                f"{self.model.__name__} has no column or relationship {name!r} to {purpose}; "
                f"valid names: {', '.join(sorted([*self.names, *self.relationships]))}"
            )
        return columns_of(rel.mapper.class_)

    def check_settable(self, values: Mapping[str, Any], *, purpose: str) -> None:
        """Like ``check_values``, relationships allowed too (``author=user``)."""
        self.check_values(
            {k: v for k, v in values.items() if k not in self.relationships}, purpose=purpose
        )

    def to_table(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row keyed by attribute names, re-keyed by table column keys (the row
        itself when every attribute is named like its column)."""
        if self.keys_match:
            return row
        return {self.column_keys[name]: value for name, value in row.items()}

    def to_table_rows(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """``to_table`` of each row."""
        return list(rows) if self.keys_match else list(map(self.to_table, rows))

    def attribute(self, name: str, *, purpose: str) -> Any:
        """The mapped attribute called ``name``, or a ``QueryError`` listing valid names."""
        try:
            return self.names[name]
        except KeyError:
            across = purpose in ("filter on", "order by", "set")
            valid = [*self.names, *(self.relationships if across else ())]
            raise QueryError(
                f"{self.model.__name__} has no column {name!r} to {purpose}; valid names: "
                f"{', '.join(sorted(valid))}"
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

    def check_rows(
        self, rows: Sequence[Mapping[str, Any]], *, purpose: str, insert: bool
    ) -> None:
        """``check_values`` (and, for an insert, ``check_insert``) of every row, a
        column at a time (``_batch``); when any row fails, the rows are checked one by
        one, so the error is the one of the first bad row, as row by row."""
        try:
            shapes = set(map(tuple, rows))
            for shape in shapes:
                if insert:
                    self.check_insert(shape)
            for name in set().union(*shapes):
                check = self.column_checks.get(name)
                if check is None:
                    self.attribute(name, purpose=purpose)  # raises, naming the valid names
                elif len(shapes) == 1:
                    check(list(map(itemgetter(name), rows)))
                else:
                    check([row[name] for row in rows if name in row])
        except Exception:
            for row in rows:
                self.check_values(row, purpose=purpose)
                if insert:
                    self.check_insert(row)
            raise

    def check_insert(self, names: Iterable[str]) -> None:
        """An inserted row with these attribute names gives every required column; a
        related object given for a relationship (``author=user``) gives its foreign key."""
        given = set(names)
        for name in given.intersection(self.relationships):
            given.update(
                self.mapper.get_property_by_column(column).key
                for column in self.relationships[name].local_columns
                if column in self.mapper.columns.values()
            )
        missing = self.required.difference(given)
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
        if name in columns.relationships and name not in columns.names:
            clauses.append(_across(columns, name, lookup, value))
            continue
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


def _across(columns: ModelColumns, name: str, rest: str, value: Any) -> ColumnElement[bool]:
    """A filter through relationship ``name``: ``author=obj`` compares the related row,
    ``author__name="x"`` filters the related rows (``EXISTS``, so no row repeats)."""
    rel = getattr(columns.model, name)
    if not rest or rest in ("eq", "ne"):
        if columns.relationships[name].uselist:
            raise QueryError(
                f"{columns.model.__name__}.{name} is a collection: filter on its columns "
                f"({name}__<column>=...), not on the related object"
            )
        return rel != value if rest == "ne" else rel == value  # type: ignore[no-any-return]
    inner = where_clauses(columns.related(name, purpose="filter on"), (), {rest: value})
    if columns.relationships[name].uselist:
        return rel.any(*inner)  # type: ignore[no-any-return]
    return rel.has(*inner)  # type: ignore[no-any-return]


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
        orderable(columns, name)
        terms.append((name, descending))
    return terms


def orderable(columns: ModelColumns, name: str) -> Any:
    """The expression ordered by for ``name``: a column, or ``author__name`` (a column of
    a many-to-one relationship, read by a correlated subquery: no join, no repeated
    row)."""
    if name in columns.names or "__" not in name:
        return columns.attribute(name, purpose="order by")
    head, _, rest = name.partition("__")
    related = columns.related(head, purpose="order by")
    prop = columns.relationships[head]
    if prop.uselist:
        raise QueryError(
            f"cannot order {columns.model.__name__} by {name!r}: {head} is a collection "
            "(many rows per row); order by a many-to-one relationship's column"
        )
    target = orderable(related, rest)
    return select(target).where(prop.primaryjoin).scalar_subquery()


def order_clauses(columns: ModelColumns, terms: Sequence[tuple[str, bool]]) -> list[Any]:
    """``ORDER BY`` expressions for checked terms."""
    return [
        orderable(columns, name).desc() if descending else orderable(columns, name).asc()
        for name, descending in terms
    ]


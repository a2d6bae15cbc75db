"""A reflected schema made portable to another database: generic types, literal
defaults only, dialect-specific CHECK expressions left out (and reported)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import CheckConstraint, MetaData, Table
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.ddl import sort_tables_and_constraints
from sqlalchemy.types import TypeEngine

from storelayer.errors import BackupError

# A default that means the same everywhere: a number, a quoted string, NULL, now.
_PORTABLE_DEFAULT = re.compile(
    r"^\(*\s*(-?\d+(\.\d+)?|'([^']|'')*'|NULL|CURRENT_TIMESTAMP)\s*\)*$", re.IGNORECASE
)


def portable_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The generic SQLAlchemy type of a reflected one, widened where a target could lose
    data: an unbounded string becomes TEXT, a float of unknown precision DOUBLE."""
    if isinstance(type_, sqltypes.NullType):
        return sqltypes.Text()
    try:
        generic = type_.as_generic()
    except NotImplementedError:
        generic = type_
    if (
        isinstance(generic, sqltypes.String)
        and not isinstance(generic, sqltypes.Text)
        and not isinstance(generic, sqltypes.Enum)
        and generic.length is None
    ):
        return sqltypes.Text()
    if (
        isinstance(generic, sqltypes.Float)
        and not isinstance(generic, sqltypes.Double)
        and generic.precision is None
    ):
        return sqltypes.Double()
    return generic


def _portable_default(text: str) -> bool:
    return bool(_PORTABLE_DEFAULT.match(text.strip()))


def _make_portable(table: Table, notes: list[str]) -> None:
    for column in table.columns:
        column.type = portable_type(column.type)
        column.identity = None
        default = column.server_default
        arg = getattr(default, "arg", None)
        if default is not None and not (arg is not None and _portable_default(str(arg))):
            notes.append(f"{table.name}.{column.name}: server default {arg!s} not copied")
            column.server_default = None
    for constraint in list(table.constraints):
        if isinstance(constraint, CheckConstraint):
            notes.append(f"{table.name}: CHECK ({constraint.sqltext}) not copied")
            table.constraints.discard(constraint)


def target_metadata(source: MetaData, same_dialect: bool) -> tuple[MetaData, list[str]]:
    """A copy of ``source`` to create on the target, and notes on what was left out."""
    cycles = sort_tables_and_constraints(source.tables.values())[-1]  # type: ignore[no-untyped-call]
    if cycles[0] is None and cycles[1]:
        names = ", ".join(sorted(str(fk.table.name) for fk in cycles[1]))
        raise BackupError(
            f"tables {names} reference each other in a cycle of foreign keys: copy cannot "
            "order them; drop one of those constraints first"
        )
    target, notes = MetaData(), list[str]()
    for table in source.sorted_tables:
        copy = table.to_metadata(target)
        if not same_dialect:
            _make_portable(copy, notes)
    return target, notes

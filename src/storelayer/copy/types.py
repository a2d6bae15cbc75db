"""A reflected schema made portable to another database, when no models say what the
schema is: generic types that keep every value (booleans, JSON, Numeric precision and
scale, double floats, 64-bit auto-increment keys), literal defaults only (boolean ones as
``true()``/``false()``), dialect-specific CHECK expressions left out (and reported)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import CheckConstraint, Column, MetaData, Table, false, inspect, true
from sqlalchemy.engine import Engine
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.ddl import sort_tables_and_constraints
from sqlalchemy.types import TypeEngine

from storelayer.errors import BackupError

# A default that means the same everywhere: a number, a quoted string, NULL, now.
_PORTABLE_DEFAULT = re.compile(
    r"^\(*\s*(-?\d+(\.\d+)?|'([^']|'')*'|NULL|CURRENT_TIMESTAMP)\s*\)*$", re.IGNORECASE
)
_TRUE = {"1", "'1'", "true", "'true'", "'t'", "b'1'"}
_FALSE = {"0", "'0'", "false", "'false'", "'f'", "b'0'"}
# MariaDB's JSON is LONGTEXT with CHECK (json_valid(`column`)).
_JSON_CHECK = re.compile(r"json_valid\(\s*[`\"]?(?P<column>[^`\")]+)[`\"]?\s*\)", re.IGNORECASE)


def reflect(engine: Engine, skip: frozenset[str] = frozenset()) -> MetaData:
    """The tables of ``engine``'s default schema, but ``skip``; a text column whose only
    content the database checks as JSON is typed ``JSON``."""
    metadata = MetaData()
    with engine.connect() as connection:
        inspector = inspect(connection)
        names = [n for n in inspector.get_table_names() if n not in skip]
        metadata.reflect(connection, only=names)
        for table in metadata.tables.values():
            for check in inspector.get_check_constraints(table.name):
                found = _JSON_CHECK.search(str(check.get("sqltext", "")))
                if found and found["column"] in table.c:
                    table.c[found["column"]].type = sqltypes.JSON()
    return metadata


def _without_collation(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(type_, sqltypes.String) and type_.collation is not None:
        if isinstance(type_, sqltypes.Enum):
            return type_
        return type(type_)(type_.length) if type(type_) is not sqltypes.Text else sqltypes.Text()
    return type_


def _generic(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    if isinstance(type_, sqltypes.NullType):
        return sqltypes.Text()
    if getattr(type_, "display_width", None) == 1 and isinstance(type_, sqltypes.Integer):
        return sqltypes.Boolean()  # MySQL's BOOLEAN is TINYINT(1)
    try:
        generic = type_.as_generic()
    except NotImplementedError:
        generic = type_
    return _without_collation(generic)


def portable_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The generic SQLAlchemy type of a reflected one, widened where a target could lose
    data: an unbounded string becomes TEXT, a float of unknown precision DOUBLE, a
    decimal with precision but no scale gets scale 0."""
    generic = _generic(type_)
    if (
        isinstance(generic, sqltypes.String)
        and not isinstance(generic, (sqltypes.Text, sqltypes.Enum))
        and generic.length is None
    ):
        return sqltypes.Text()
    if isinstance(generic, sqltypes.Float):
        if isinstance(generic, sqltypes.Double) or generic.precision is None:
            return sqltypes.Double()
        return generic
    if isinstance(generic, sqltypes.Numeric) and generic.precision is not None:
        return sqltypes.Numeric(generic.precision, generic.scale or 0)
    return generic


def _is_auto_key(column: Column[Any]) -> bool:
    table = column.table
    return (
        len(table.primary_key.columns) == 1
        and column.primary_key
        and column.autoincrement is not False
        and isinstance(column.type, sqltypes.Integer)
        and not isinstance(column.type, sqltypes.Boolean)
    )


def _portable_default(column: Column[Any], notes: list[str]) -> None:
    default = column.server_default
    if default is None:
        return
    text = str(getattr(default, "arg", "")).strip()
    if isinstance(column.type, sqltypes.Boolean) and text.lower() in _TRUE | _FALSE:
        column.server_default = DefaultClause(true() if text.lower() in _TRUE else false())
        return
    if not _PORTABLE_DEFAULT.match(text):
        column.server_default = None
        if not _is_auto_key(column):  # a key's sequence default is the key itself
            notes.append(f"{column.table.name}.{column.name}: server default {text} not copied")


def _make_portable(table: Table, notes: list[str]) -> None:
    for column in table.columns:
        auto_key = _is_auto_key(column)
        column.type = portable_type(column.type)
        if auto_key and isinstance(column.type, sqltypes.BigInteger):
            from storelayer.reference.types import ID_TYPE  # the reference models: only here

            column.type = ID_TYPE  # only an INTEGER key auto-increments on SQLite
        if auto_key:
            column.autoincrement = True
        column.identity = None
        _portable_default(column, notes)
    for constraint in list(table.constraints):
        if isinstance(constraint, CheckConstraint):
            notes.append(f"{table.name}: CHECK ({constraint.sqltext}) not copied")
            table.constraints.discard(constraint)


def target_metadata(source: MetaData, same_dialect: bool) -> tuple[MetaData, list[str]]:
    """A copy of ``source`` to create on the target, and notes on what was left out."""
    refuse_cycles(source)
    target, notes = MetaData(), list[str]()
    for table in source.sorted_tables:
        copy = table.to_metadata(target)
        if not same_dialect:
            _make_portable(copy, notes)
    return target, notes


def refuse_cycles(metadata: MetaData) -> None:
    """``BackupError`` when tables reference each other in a cycle of foreign keys."""
    cycles = sort_tables_and_constraints(metadata.tables.values())[-1]  # type: ignore[no-untyped-call]
    if cycles[0] is None and cycles[1]:
        names = ", ".join(sorted(str(fk.table.name) for fk in cycles[1]))
        raise BackupError(
            f"tables {names} reference each other in a cycle of foreign keys: copy cannot "
            "order them; drop one of those constraints first"
        )

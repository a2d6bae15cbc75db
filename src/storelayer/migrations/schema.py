"""Comparing a live database with models: ``verify_schema`` and readable differences."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection

from storelayer._shapes import AttributeDict
from storelayer.migrations.environment import compare_type


class SchemaReport(AttributeDict):
    """The answer of ``verify_schema``, a dict whose keys read as attributes too
    (``report["valid"]``, ``report.valid``). ``valid`` is true when every table and column of
    the models exists as declared; tables the models do not know (``extra_tables``)
    are reported but allowed: an application's own tables may share the database."""

    valid: bool
    missing_tables: list[str]
    extra_tables: list[str]
    column_issues: list[str]

    def __init__(
        self,
        *,
        valid: bool,
        missing_tables: list[str],
        extra_tables: list[str],
        column_issues: list[str],
    ) -> None:
        super().__init__(
            valid=valid,
            missing_tables=missing_tables,
            extra_tables=extra_tables,
            column_issues=column_issues,
        )


def compare(
    connection: Connection, metadata: MetaData, version_table: str = "alembic_version"
) -> list[Any]:
    """Alembic's autogenerate differences between the database and ``metadata``."""
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": compare_type, "version_table": version_table,
              "target_metadata": metadata},
    )
    return list(compare_metadata(context, metadata))


def flatten(diffs: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Column modifications come as lists of tuples; make every diff one tuple."""
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        if isinstance(diff, list):
            flat.extend(diff)
        else:
            flat.append(diff)
    return flat


def _columns(item: Any) -> str:
    return ", ".join(column.name for column in getattr(item, "columns", ()))


def describe(diff: Sequence[Any]) -> str:
    """One difference as a sentence: what the database lacks or has too much of."""
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        state = "missing from" if kind == "add_table" else "in the database but not in"
        return f"table {diff[1].name} is {state} the models"
    if kind in ("add_column", "remove_column"):
        table, column = diff[2], diff[3]
        if kind == "add_column":
            return f"column {table}.{column.name} is missing"
        return f"column {table}.{column.name} is in the database but not in the models"
    if kind.startswith("modify_"):
        _, _, table, column, _info, old, new = diff
        what = kind.removeprefix("modify_").replace("_", " ")
        return f"column {table}.{column}: {what} is {old!r} in the database, {new!r} in the models"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint",
                "add_fk", "remove_fk"):
        item = diff[1]
        label = {"index": "index", "constraint": "constraint", "fk": "foreign key"}[
            kind.split("_", 1)[1]
        ]
        table = item.table.name if isinstance(getattr(item, "table", None), Table) else "?"
        state = "missing" if kind.startswith("add_") else "in the database but not in the models"
        return f"{label} {item.name} on {table}({_columns(item)}) is {state}"
    return " ".join(str(part) for part in diff)


def _table_of(diff: Sequence[Any]) -> str | None:
    kind = diff[0]
    if kind in ("add_column", "remove_column") or kind.startswith("modify_"):
        return str(diff[2])
    table = getattr(diff[1], "table", None)
    return table.name if isinstance(table, Table) else None


def report(diffs: Iterable[Any]) -> SchemaReport:
    """Sort differences into the fields of a ``SchemaReport``."""
    flat = flatten(diffs)
    missing = sorted(d[1].name for d in flat if d[0] == "add_table")
    extra = sorted(d[1].name for d in flat if d[0] == "remove_table")
    whole = set(missing) | set(extra)
    issues = [
        describe(d) for d in flat
        if d[0] not in ("add_table", "remove_table") and _table_of(d) not in whole
    ]
    return SchemaReport(
        valid=not missing and not issues,
        missing_tables=missing,
        extra_tables=extra,
        column_issues=issues,
    )

"""``storelayer inspect``: the tables of the configured database, with their columns,
indexes and row counts (read from the database, not from any models)."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import func, select, table
from sqlalchemy import inspect as reflect
from sqlalchemy.engine import Connection

from storelayer.cli.output import emit_json, section
from storelayer.cli.output import table as text_table
from storelayer.cli.state import CliState, json_option, pass_state


def describe_table(connection: Connection, name: str) -> dict[str, Any]:
    """One table: columns, indexes and its number of rows, JSON-ready."""
    inspector = reflect(connection)
    primary = set(inspector.get_pk_constraint(name).get("constrained_columns") or [])
    columns = [
        {"name": c["name"], "type": str(c["type"]), "nullable": c["nullable"],
         "primary_key": c["name"] in primary}
        for c in inspector.get_columns(name)
    ]
    indexes = [
        {"name": i["name"], "columns": [c for c in i["column_names"] if c],
         "unique": bool(i["unique"])}
        for i in inspector.get_indexes(name)
    ]
    rows = connection.scalar(select(func.count()).select_from(table(name)))
    return {"name": name, "rows": rows, "columns": columns, "indexes": indexes}


def _text(tables: list[dict[str, Any]]) -> str:
    overview = text_table(("TABLE", "ROWS", "COLUMNS", "INDEXES"), [
        (t["name"], t["rows"], len(t["columns"]), len(t["indexes"])) for t in tables])
    blocks = [overview]
    for t in tables:
        columns = text_table(("COLUMN", "TYPE", "NULL", "KEY"), [
            (c["name"], c["type"], c["nullable"], "primary" if c["primary_key"] else None)
            for c in t["columns"]])
        indexes = [f"index {i['name']} ({', '.join(i['columns'])})"
                   + (" unique" if i["unique"] else "") for i in t["indexes"]]
        blocks.append(section(f"{t['name']} ({t['rows']} rows)", "\n".join([columns, *indexes])))
    return "\n\n".join(blocks)


@click.command("inspect")
@click.argument("tables", nargs=-1)
@json_option
@pass_state
def inspect_command(state: CliState, tables: tuple[str, ...]) -> None:
    """List the tables (or only TABLES) with columns, indexes and row counts."""
    with state.connect() as db, db.engine.connect() as connection:
        names = sorted(reflect(connection).get_table_names())
        unknown = sorted(set(tables) - set(names))
        if unknown:
            raise click.BadParameter(f"no such table: {', '.join(unknown)}",
                                     param_hint="TABLES")
        found = [describe_table(connection, n) for n in names if not tables or n in tables]
    if state.json:
        emit_json({"tables": found})
    else:
        click.echo(_text(found) if found else "no tables")

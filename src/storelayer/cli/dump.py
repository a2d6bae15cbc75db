"""``storelayer dump`` / ``load``: table data as JSON Lines, streamed, portable across
backends (load a SQLite dump into PostgreSQL or MariaDB with the same schema).

The format: a first line ``{"format": "storelayer-jsonl", "version": 1}``; then, per
table in foreign-key order, ``{"table": NAME, "columns": [...]}`` followed by one JSON
array per row. Datetimes are ISO 8601 (UTC), binary values base64, decimals strings.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterator
from typing import IO, Any

import click
from sqlalchemy import Column, MetaData, Table, func, insert, select, types

from storelayer.cli.output import emit_json
from storelayer.cli.state import CliState, json_option, pass_state
from storelayer.database import Database

HEADER = {"format": "storelayer-jsonl", "version": 1}
BATCH = 500


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot dump a {type(value).__name__}")


def _decoder(column: Column[Any]) -> Any:
    """How a dumped value becomes what ``column`` (of the target database) takes."""
    kind = column.type
    if isinstance(kind, types.DateTime):
        aware = bool(kind.timezone)
        return lambda v: (dt.datetime.fromisoformat(v).replace(
            tzinfo=dt.timezone.utc if aware else None))
    for sa_type, parse in ((types.Date, dt.date.fromisoformat),
                           (types.Time, dt.time.fromisoformat),
                           (types.LargeBinary, base64.b64decode),
                           (types.Boolean, bool)):
        if isinstance(kind, sa_type):
            return parse
    if isinstance(kind, types.Numeric) and not isinstance(kind, types.Float):
        return decimal.Decimal
    if isinstance(kind, types.Uuid) and kind.as_uuid:
        return uuid.UUID
    return None


def _reflect(db: Database, names: tuple[str, ...]) -> list[Table]:
    metadata = MetaData()
    metadata.reflect(db.engine, only=list(names) or None)
    return [
        t for t in metadata.sorted_tables
        if names or [c.name for c in t.columns] != ["version_num"]  # Alembic's tables
    ]


def dump_lines(db: Database, names: tuple[str, ...]) -> Iterator[str]:
    """The JSON lines of every table (or of ``names``), read in batches."""
    yield json.dumps(HEADER)
    for table in _reflect(db, names):
        yield json.dumps({"table": table.name, "columns": list(table.columns.keys())})
        with db.engine.connect() as connection:
            result = connection.execution_options(yield_per=BATCH).execute(select(table))
            for row in result:
                yield json.dumps(list(row), default=_encode)


def load_lines(db: Database, lines: IO[str]) -> dict[str, int]:
    """Insert the rows of a dump into existing, empty tables; rows per table."""
    first = json.loads(lines.readline() or "null")
    if first != HEADER:
        raise click.ClickException("not a storelayer dump (JSON Lines with a storelayer header)")
    metadata = MetaData()
    metadata.reflect(db.engine)
    loaded: dict[str, int] = {}
    with db.engine.begin() as connection:
        table: Table | None = None
        batch: list[dict[str, Any]] = []
        decoders: list[tuple[str, Any]] = []
        for number, line in enumerate(lines, 2):
            item = json.loads(line)
            if isinstance(item, dict):
                _flush(connection, table, batch)
                table, decoders = _start_table(connection, metadata, item, number)
                loaded[table.name] = 0
            elif table is not None:
                batch.append({name: v if v is None or decode is None else decode(v)
                              for (name, decode), v in zip(decoders, item, strict=True)})
                loaded[table.name] += 1
                if len(batch) >= BATCH:
                    _flush(connection, table, batch)
        _flush(connection, table, batch)
        db.backend.ops.reset_sequences(connection, [metadata.tables[n] for n in loaded])
    return loaded


def _start_table(connection: Any, metadata: MetaData, item: dict[str, Any],
                 number: int) -> tuple[Table, list[tuple[str, Any]]]:
    name = item.get("table")
    table = metadata.tables.get(str(name))
    if table is None:
        raise click.ClickException(f"line {number}: table {name} does not exist here "
                                   "(create the schema first: storelayer migrate upgrade)")
    if connection.scalar(select(func.count()).select_from(table)):
        raise click.ClickException(f"table {name} is not empty: load into empty tables")
    missing = [c for c in item["columns"] if c not in table.columns]
    if missing:
        raise click.ClickException(f"table {name} has no column {', '.join(missing)}")
    return table, [(c, _decoder(table.columns[c])) for c in item["columns"]]


def _flush(connection: Any, table: Table | None, batch: list[dict[str, Any]]) -> None:
    if table is not None and batch:
        connection.execute(insert(table), batch)
    batch.clear()


@click.command("dump")
@click.argument("tables", nargs=-1)
@click.option("-o", "--output", type=click.File("w"), default="-",
              help="File to write (default: stdout).")
@pass_state
def dump_command(state: CliState, tables: tuple[str, ...], output: IO[str]) -> None:
    """Write the rows of every table (or of TABLES) as JSON Lines, streamed. Alembic
    version tables are left out unless named."""
    with state.connect() as db:
        for line in dump_lines(db, tables):
            output.write(line + "\n")


@click.command("load")
@click.argument("source", type=click.File("r"), default="-")
@json_option
@pass_state
def load_command(state: CliState, source: IO[str]) -> None:
    """Insert the rows of a dump (a file, or - for stdin) into the existing, empty
    tables of the configured database, in one transaction."""
    with state.connect() as db:
        loaded = load_lines(db, source)
    if state.json:
        emit_json({"loaded": loaded})
    else:
        click.echo("\n".join(f"{n}: {c} rows" for n, c in loaded.items()) or "nothing loaded")


COMMANDS = (dump_command, load_command)

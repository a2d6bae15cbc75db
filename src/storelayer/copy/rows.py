"""Moving the rows: the source read in one snapshot, the target written and checked in
one transaction, so a copy that fails or is killed while rows move leaves no row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import Connection

from storelayer._core import EngineCore
from storelayer._engines import READ_ONLY_OPTION
from storelayer.backend import Progress
from storelayer.backup.counts import TableChecksum, table_checksum
from storelayer.errors import BackupError

Say = Callable[[str], None]
#: The isolation level that gives one snapshot for the whole read, where it exists.
SNAPSHOT_LEVEL = "REPEATABLE READ"


@contextmanager
def snapshot(db: EngineCore) -> Iterator[Connection]:
    """A read transaction that sees one snapshot of the whole database where the
    dialect offers one (REPEATABLE READ), read-only where the backend cares."""
    with db.engine.connect() as connection:
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        levels = connection.dialect.get_isolation_level_values(dbapi)
        options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if SNAPSHOT_LEVEL in levels:
            options["isolation_level"] = SNAPSHOT_LEVEL
        reader = connection.execution_options(**options)
        with reader.begin():
            yield reader


def counts(connection: Connection, tables: MetaData) -> dict[str, int]:
    """Rows of every table of ``tables``."""
    return {
        t.name: int(connection.execute(select(func.count()).select_from(t)).scalar_one())
        for t in tables.sorted_tables
    }


def refuse_filled(connection: Connection, tables: MetaData) -> None:
    """``BackupError`` when a table the copy fills already has rows."""
    filled = sorted(name for name, rows in counts(connection, tables).items() if rows)
    if filled:
        raise BackupError(
            f"the target's tables {', '.join(filled)} already have rows: copy fills empty "
            "tables only (nothing was changed)"
        )


def _copy_table(
    reader: Connection,
    writer: Connection,
    target: EngineCore,
    table: Table,
    batch_size: int,
    advance: Callable[[int], None],
) -> TableChecksum:
    checksum = TableChecksum()
    query = select(*table.columns).order_by(*table.primary_key.columns)
    result = reader.execution_options(stream_results=True, yield_per=batch_size).execute(query)
    for rows in result.partitions():
        for row in rows:
            checksum.add(row)
        target.backend.ops.bulk_insert(writer, table, [dict(row._mapping) for row in rows])
        advance(len(rows))
    return checksum


def verify(connection: Connection, tables: MetaData, expected: dict[str, TableChecksum]) -> None:
    """``BackupError`` naming every table whose rows or checksum differ."""
    problems = []
    for name, want in expected.items():
        rows, digest = table_checksum(connection, tables.tables[name])
        if (rows, digest) != (want.rows, want.hexdigest):
            problems.append(
                f"{name}: {rows} rows (checksum {digest[:12]}), source "
                f"{want.rows} rows (checksum {want.hexdigest[:12]})"
            )
    if problems:
        raise BackupError("the copy differs from the source: " + "; ".join(problems))


def fill(
    source: EngineCore,
    target: EngineCore,
    tables: MetaData,
    batch_size: int,
    progress: Progress | None,
    say: Say,
) -> dict[str, TableChecksum]:
    """Copy the rows of ``tables`` in foreign-key order and check them, all in one
    target transaction that commits only when every count and checksum matches."""
    expected: dict[str, TableChecksum] = {}
    with snapshot(source) as reader, target.engine.begin() as writer:
        refuse_filled(writer, tables)
        totals = counts(reader, tables)
        total, done = sum(totals.values()), 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress(done, total)

        advance(0)
        for table in tables.sorted_tables:
            say(f"copying {table.name} ({totals[table.name]} rows)")
            expected[table.name] = _copy_table(
                reader, writer, target, table, batch_size, advance
            )
        target.backend.ops.reset_sequences(writer, tables.sorted_tables)
        say("verifying row counts and checksums")
        verify(writer, tables, expected)
    return expected

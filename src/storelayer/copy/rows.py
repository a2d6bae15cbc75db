"""Moving the rows: the source read in one snapshot, the target written and checked in
one transaction, so a copy that fails or is killed while rows move leaves no row."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import Connection

from storelayer._core import EngineCore
from storelayer._engines import READ_ONLY_OPTION
from storelayer.backend import Progress
from storelayer.backend.concerns import TextedBatch
from storelayer.backup.children import raise_if_stopped
from storelayer.backup.counts import TableChecksum
from storelayer.copy.ahead import read_ahead
from storelayer.copy.checksum import add_columns
from storelayer.copy.columns import Columns, read_columns
from storelayer.errors import BackupError

Say = Callable[[str], None]
#: The isolation level that gives one snapshot for the whole read, where it exists.
SNAPSHOT_LEVEL = "REPEATABLE READ"
#: Rows per batch when the target's rows are read back to be checked.
VERIFY_BATCH = 5000


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
    checked: bool,
) -> TableChecksum:
    """Stream ``table``'s rows from ``reader`` into ``writer``, a batch of columns at a
    time; the source's checksum is taken from the rows as they pass (``checked``; else
    they are only counted)."""
    checksum = TableChecksum()

    def batches() -> Iterator[Columns]:
        for columns in read_columns(reader, table, batch_size):
            batch = TextedBatch(columns)
            if checked:
                batch.texts = add_columns(checksum, columns)  # the backend may reuse them
            else:
                batch.texts = [None] * len(columns)
                checksum.rows += len(columns[0])
            yield batch
            advance(len(columns[0]))

    target.backend.ops.insert_columns(writer, table, batches())
    return checksum


def verify(connection: Connection, tables: MetaData, expected: dict[str, TableChecksum]) -> None:
    """``BackupError`` naming every table whose rows or checksum differ: the target's
    rows read back (in this transaction) and summed as the source's were."""
    problems = []
    for name, want in expected.items():
        got = TableChecksum()
        read = read_columns(connection, tables.tables[name], VERIFY_BATCH, ordered=False)
        with read_ahead(read) as batches:
            for columns in batches:
                add_columns(got, columns)
        rows, digest = got.rows, got.hexdigest
        if (rows, digest) != (want.rows, want.hexdigest):
            problems.append(
                f"{name}: {rows} rows (checksum {digest[:12]}), source "
                f"{want.rows} rows (checksum {want.hexdigest[:12]})"
            )
    if problems:
        raise BackupError("the copy differs from the source: " + "; ".join(problems))


def verify_counts(
    connection: Connection, tables: MetaData, expected: dict[str, TableChecksum]
) -> None:
    """``BackupError`` naming every table whose row count differs from the source's."""
    found = counts(connection, tables)
    problems = [
        f"{name}: {found[name]} rows, source {want.rows} rows"
        for name, want in expected.items()
        if found[name] != want.rows
    ]
    if problems:
        raise BackupError("the copy differs from the source: " + "; ".join(problems))


def fill(
    source: EngineCore,
    target: EngineCore,
    tables: MetaData,
    batch_size: int,
    progress: Progress | None,
    say: Say,
    phases: dict[str, float] | None = None,
    checksums: bool = True,
) -> dict[str, TableChecksum]:
    """Copy the rows of ``tables`` in foreign-key order and check them, all in one
    target transaction that commits only when every count and checksum matches (only
    every count without ``checksums``). ``phases`` gets the seconds spent moving rows
    (``rows``), checking them (``verify``) and committing (``commit``)."""
    expected: dict[str, TableChecksum] = {}
    clock = _Clock(phases if phases is not None else {})
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
        with target.backend.ops.loading(writer, tables.sorted_tables):
            for table in tables.sorted_tables:
                say(f"copying {table.name} ({totals[table.name]} rows)")
                expected[table.name] = _copy_table(
                    reader, writer, target, table, batch_size, advance, checksums
                )
                _all_read(table.name, expected[table.name].rows, totals[table.name])
        target.backend.ops.reset_sequences(writer, tables.sorted_tables)
        clock.lap("rows")
        if checksums:
            say("verifying row counts and checksums")
            verify(writer, tables, expected)
        else:
            say("verifying row counts")
            verify_counts(writer, tables, expected)
        raise_if_stopped()  # told to stop, though the interrupt was swallowed: roll back
        clock.lap("verify")
    clock.lap("commit")
    return expected


def _all_read(name: str, read: int, counted: int) -> None:
    if read != counted:
        raise BackupError(
            f"{name}: {read} rows read from the source, which counts {counted} in the same "
            "snapshot: report this as a storelayer bug (nothing was committed)"
        )


class _Clock:
    """Seconds between laps, by name."""

    def __init__(self, laps: dict[str, float]) -> None:
        self.laps = laps
        self.last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self.last, 3)
        self.last = now

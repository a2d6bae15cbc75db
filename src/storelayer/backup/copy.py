"""``copy_database``: one database into another, across backends. The schema is
reflected and made portable, rows move in batches in foreign-key order, sequences are
reset, and every table's rows and checksum are compared at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from storelayer._conflicts import one_line
from storelayer._core import EngineCore, opened
from storelayer._engines import READ_ONLY_OPTION
from storelayer.backend import Progress
from storelayer.backup.counts import TableChecksum, table_checksum, table_names
from storelayer.backup.portable import target_metadata
from storelayer.errors import BackupError, StorelayerError
from storelayer.plugins import PluginManager

Say = Callable[[str], None]
DEFAULT_BATCH_SIZE = 1000
#: The isolation level that gives one snapshot for the whole read, where it exists.
SNAPSHOT_LEVEL = "REPEATABLE READ"


@dataclass
class CopyReport:
    """What ``copy_database`` copied: rows and checksum per table, and what it left out."""

    source: str
    target: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Rows copied in all tables."""
        return sum(int(t["rows"]) for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {**asdict(self), "rows": self.rows}


def _quiet(_message: str) -> None:
    """Stage messages are dropped unless the caller listens."""


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


def _refuse_collisions(target: EngineCore, source: MetaData) -> None:
    clash = sorted(set(table_names(target.engine)) & set(source.tables))
    if clash:
        raise BackupError(
            f"the target already has tables {', '.join(clash)}: copy into an empty database "
            "(nothing was changed)"
        )


def _copy_table(
    reader: Connection,
    source: Table,
    target_db: EngineCore,
    target: Table,
    batch_size: int,
    advance: Callable[[int], None],
) -> TableChecksum:
    checksum = TableChecksum()
    query = select(*source.columns).order_by(*source.primary_key.columns)
    result = reader.execution_options(stream_results=True, yield_per=batch_size).execute(query)
    for rows in result.partitions():
        batch = [dict(row._mapping) for row in rows]
        for row in rows:
            checksum.add(row)
        with target_db.engine.begin() as writer:
            target_db.backend.ops.bulk_insert(writer, target, batch)
        advance(len(batch))
    return checksum


def _verify(target_db: EngineCore, metadata: MetaData, expected: dict[str, TableChecksum]) -> None:
    problems = []
    with target_db.engine.connect() as connection:
        for name, want in expected.items():
            rows, digest = table_checksum(connection, metadata.tables[name])
            if (rows, digest) != (want.rows, want.hexdigest):
                problems.append(
                    f"{name}: {rows} rows (checksum {digest[:12]}), source "
                    f"{want.rows} rows (checksum {want.hexdigest[:12]})"
                )
    if problems:
        raise BackupError("the copy differs from the source: " + "; ".join(problems))


@contextmanager
def undone_on_failure(target: EngineCore, schema: MetaData) -> Iterator[None]:
    """Create ``schema``'s tables in the target; if the block fails or is interrupted,
    drop them again, so the target is left as it was found, and say so."""
    schema.create_all(target.engine)
    try:
        yield
    except BaseException as error:
        target.engine.dispose()  # a connection may hold a lock on a half-filled table
        schema.drop_all(target.engine)
        if not isinstance(error, (StorelayerError, SQLAlchemyError)):
            raise
        undone = f"the tables it created in the target ({len(schema.tables)}) were dropped"
        raise BackupError(f"the copy failed and was undone ({undone}): {one_line(error)}") from None


def copy_database(
    source_url: str | URL,
    target_url: str | URL,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    plugins: PluginManager | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
) -> CopyReport:
    """Copy schema and rows of ``source_url`` into the empty database ``target_url``."""
    started = time.monotonic()
    with opened(source_url, plugins=plugins) as src, opened(target_url, plugins=plugins) as dst:
        report = CopyReport(src.backend.name, dst.backend.name)
        metadata = MetaData()
        metadata.reflect(src.engine)
        if not metadata.tables:
            raise BackupError("the source database has no tables to copy")
        _refuse_collisions(dst, metadata)
        same = src.engine.dialect.name == dst.engine.dialect.name
        schema, report.notes = target_metadata(metadata, same)
        say(f"creating {len(schema.tables)} tables on {dst.backend.name}")
        with undone_on_failure(dst, schema):
            expected = _copy_rows(src, dst, metadata, schema, batch_size, progress, say)
            with dst.engine.begin() as writer:
                dst.backend.ops.reset_sequences(writer, schema.sorted_tables)
            say("verifying row counts and checksums")
            _verify(dst, schema, expected)
    report.tables = {n: {"rows": c.rows, "checksum": c.hexdigest} for n, c in expected.items()}
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _copy_rows(
    src: EngineCore,
    dst: EngineCore,
    metadata: MetaData,
    schema: MetaData,
    batch_size: int,
    progress: Progress | None,
    say: Say,
) -> dict[str, TableChecksum]:
    expected: dict[str, TableChecksum] = {}
    with snapshot(src) as reader:
        totals = {
            t.name: int(reader.execute(select(func.count()).select_from(t)).scalar_one())
            for t in metadata.sorted_tables
        }
        total, done = sum(totals.values()), 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress(done, total)

        for table in schema.sorted_tables:
            say(f"copying {table.name} ({totals[table.name]} rows)")
            expected[table.name] = _copy_table(
                reader, metadata.tables[table.name], dst, table, batch_size, advance
            )
    return expected

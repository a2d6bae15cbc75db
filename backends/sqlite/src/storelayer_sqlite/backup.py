"""SQLite backups through the online backup API, in one step.

One ``sqlite3_backup_step(-1)`` copies every page inside a single read transaction: the
copy is the database as of one commit, WAL included, while writers keep committing. A
page-stepped backup (a few pages per step) restarts whenever another connection writes,
and under steady writes may never finish; this one always does. The live file is never
copied as raw bytes.

A restore copies the dump into the live database the same way: one write transaction,
so readers see the old contents or the new ones, never a mixture. (Renaming a file over
a live database would be unsafe: open connections keep the old inode, and a leftover
``-wal`` file would be replayed onto the new one.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from storelayer import BackupError
from storelayer.backup.tools import open_private

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Progress
    from storelayer.backup.options import BackupOptions

#: The tool named in the manifest.
TOOL = f"sqlite3 online backup API (SQLite {sqlite3.sqlite_version})"


@contextmanager
def driver_connection(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A pooled connection's ``sqlite3.Connection``, returned to the pool afterwards."""
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        assert isinstance(connection, sqlite3.Connection)
        yield connection
    finally:
        pooled.close()


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a dump file (``immutable``: no locks, no journal)."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)


def backup(
    engine: Engine,
    target: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> str:
    """Copy the live database into the new 0600 file ``target`` in one step."""
    open_private(target).close()
    with driver_connection(engine) as source, closing(sqlite3.connect(target)) as copy:
        try:
            source.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        except sqlite3.Error as error:
            raise BackupError(f"SQLite backup failed: {error}") from None
    if progress is not None:
        progress(1, 1)
    return TOOL


def restore(
    engine: Engine,
    source: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> None:
    """Replace the database's contents with the dump in one write transaction."""
    with closing(read_only(source)) as dump, driver_connection(engine) as live:
        try:
            dump.backup(live, pages=-1)
        except sqlite3.Error as error:
            raise BackupError(
                f"SQLite restore failed, the database is unchanged: {error}"
            ) from None
    if progress is not None:
        progress(1, 1)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def inspect(source: Path) -> dict[str, int]:
    """Run ``integrity_check`` over every page of the dump, then count each table."""
    try:
        with closing(read_only(source)) as dump:
            problems = [row[0] for row in dump.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(
                    f"the SQLite dump fails integrity_check: {'; '.join(problems[:5])}"
                )
            names = [
                row[0]
                for row in dump.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
                )
            ]
            return {
                n: int(dump.execute(f"SELECT count(*) FROM {_quoted(n)}").fetchone()[0])
                for n in names
            }
    except sqlite3.DatabaseError as error:
        raise BackupError(f"the SQLite dump is damaged: {error}") from None

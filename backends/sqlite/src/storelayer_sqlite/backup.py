"""SQLite backups through the online backup API, in one step.

One ``sqlite3_backup_step(-1)`` copies every page inside a single read transaction: the
copy is the database as of one commit, WAL included, while writers keep committing. A
page-stepped backup (a few pages per step) restarts whenever another connection writes,
and under steady writes may never finish; this one always does. The live file is never
copied as raw bytes.

A restore copies the dump into the live database the same way: one write transaction,
so readers see the old contents or the new ones, never a mixture. A dump that comes
through a pipe (the restore streams it out of the artifact) is read whole into memory
first, and copied in only once the stream passed its checks. (Renaming a file over
a live database would be unsafe: open connections keep the old inode, and a leftover
``-wal`` file would be replayed onto the new one.)
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from storelayer import BackupError
from storelayer.backup.tools import open_private, private_directory
from storelayer_sqlite.units import writable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from storelayer.backend import Progress
    from storelayer.backup.options import BackupOptions

#: Bytes 18-19 of a database header: file format versions of WAL mode, of rollback.
WAL_VERSIONS, ROLLBACK_VERSIONS = b"\x02\x02", b"\x01\x01"
#: The tool named in the manifest.
TOOL = f"sqlite3 online backup API (SQLite {sqlite3.sqlite_version})"


@contextmanager
def driver_connection(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A pooled connection's ``sqlite3.Connection``, returned to the pool afterwards."""
    pooled = engine.raw_connection()
    try:
        writable(pooled)  # a read unit may have left it read-only (restore writes)
        connection = pooled.driver_connection
        assert isinstance(connection, sqlite3.Connection)
        yield connection
    finally:
        pooled.close()


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a dump file (``immutable``: no locks, no journal)."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)


def _copy_to_file(engine: Engine, target: Path) -> None:
    with driver_connection(engine) as source, closing(sqlite3.connect(target)) as copy:
        try:
            source.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        except sqlite3.Error as error:
            raise BackupError(f"SQLite backup failed: {error}") from None


def _image(engine: Engine) -> bytearray:
    """The database as of one commit, copied into memory: the bytes of a
    self-contained database file (marked as not in WAL mode, as the file copy is)."""
    with driver_connection(engine) as source, closing(sqlite3.connect(":memory:")) as copy:
        try:
            source.backup(copy, pages=-1)
            image = bytearray(copy.serialize())  # type: ignore[attr-defined, unused-ignore]
        except sqlite3.Error as error:
            raise BackupError(f"SQLite backup failed: {error}") from None
    if image[18:20] == WAL_VERSIONS:
        image[18:20] = ROLLBACK_VERSIONS
    return image


def _copy_to_pipe(engine: Engine, target: Path) -> None:
    """Write the copy into the pipe ``target``: through memory where Python can
    serialize a database (3.11+), else through a private scratch file."""
    if hasattr(sqlite3.Connection, "serialize"):
        image = _image(engine)
        with open(target, "wb") as pipe:
            pipe.write(image)
        return
    with private_directory() as work:  # pragma: no cover - Python 3.10
        _copy_to_file(engine, work / "copy.db")
        with open(work / "copy.db", "rb") as copy, open(target, "wb") as pipe:
            shutil.copyfileobj(copy, pipe)


def backup(
    engine: Engine,
    target: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> str:
    """Copy the live database in one step into ``target``: a pipe (the copy is made in
    memory, then written), or a new 0600 file."""
    if target.is_fifo():
        _copy_to_pipe(engine, target)
    else:
        open_private(target).close()
        _copy_to_file(engine, target)
    if progress is not None:
        progress(1, 1)
    return TOOL


def copy_in(dump: sqlite3.Connection, engine: Engine) -> None:
    """Copy the dump's pages into the live database in one write transaction: the
    switch, after which readers see the restored contents."""
    with driver_connection(engine) as live:
        try:
            dump.backup(live, pages=-1)
        except sqlite3.Error as error:
            raise BackupError(
                f"SQLite restore failed, the database is unchanged: {error}"
            ) from None


def restore(
    engine: Engine,
    source: Path,
    progress: Progress | None = None,
    options: BackupOptions | None = None,
) -> None:
    """Replace the database's contents with the dump (a file, or a pipe read whole into
    memory) in one write transaction, once a piped dump passed its checks."""
    with opened_dump(source) as dump:
        if options is not None:
            options.dump_checked()
        copy_in(dump, engine)
    if progress is not None:
        progress(1, 1)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def opened_dump(source: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a dump file, or to a dump read whole from a pipe into
    memory."""
    if not source.is_fifo():
        with closing(read_only(source)) as dump:
            yield dump
        return
    if not hasattr(sqlite3.Connection, "deserialize"):  # pragma: no cover - Python 3.10
        with private_directory() as work, open(source, "rb") as pipe:
            with open_private(work / "dump.db") as copy:
                shutil.copyfileobj(pipe, copy)
            with closing(read_only(work / "dump.db")) as dump:
                yield dump
        return
    with closing(sqlite3.connect(":memory:")) as dump:
        with open(source, "rb") as pipe:  # the bytes read are freed once deserialized
            dump.deserialize(pipe.read())  # type: ignore[attr-defined, unused-ignore]
        yield dump


def inspect(source: Path) -> dict[str, int]:
    """Run ``integrity_check`` over every page of the dump (a file or a pipe), then
    count each table."""
    try:
        with opened_dump(source) as dump:
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

"""``create_backup``: run the backend's strategy, read the dump back, and package dump
and manifest into one verified artifact."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from storelayer.backend import Progress
from storelayer.backup.artifact import ARTIFACT_SUFFIX, write_artifact
from storelayer.backup.children import private_directory
from storelayer.backup.counts import schema_revision
from storelayer.backup.leftovers import prune_local, prune_server
from storelayer.backup.manifest import BackupManifest, DumpInfo, PayloadInfo, utc_now
from storelayer.backup.options import BackupOptions
from storelayer.backup.payload import (
    AGE,
    AGE_SUFFIX,
    COMPRESSIONS,
    checked_compression,
    parse_recipients,
    sha256_file,
)
from storelayer.backup.stream import stream_dump
from storelayer.errors import BackupError

if TYPE_CHECKING:
    from storelayer.database import Database

Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    """Stage messages are dropped unless the caller listens."""


def database_label(db: Database) -> str:
    """The database's name for the manifest: no host, user or password; for an
    embedded database, its file name."""
    name = db.url.database or ""
    return Path(name).name if not db.backend.features.server else name


def default_artifact_name(db: Database, when: dt.datetime | None = None) -> str:
    """``<database>-<UTC timestamp>.storelayer``."""
    stamp = (when or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in database_label(db))
    return f"{stem or 'database'}-{stamp}{ARTIFACT_SUFFIX}"


def _describe_source(db: Database) -> tuple[str, list[str]]:
    with db.engine.connect() as connection:
        return db.backend.ops.server_version(connection), schema_revision(connection)


def _payload_name(dump: str, compression: str, encrypted: bool) -> str:
    return f"{dump}{COMPRESSIONS[compression]}{AGE_SUFFIX if encrypted else ''}"


def _plugin(db: Database) -> tuple[str | None, str | None]:
    info = db.plugins.plugin_of(db.backend)
    return (info.distribution or info.name, info.version) if info else (None, None)


def create_backup(
    db: Database,
    path: str | Path,
    *,
    compression: str = "zstd",
    recipients: Sequence[str] = (),
    options: BackupOptions | None = None,
    progress: Progress | None = None,
    say: Say = _quiet,
) -> BackupManifest:
    """Back up ``db`` to the artifact ``path`` and return its manifest.

    The backend's strategy writes a consistent native dump into a pipe; as it comes, the
    dump is read back in full (its row counts go into the manifest), compressed and
    encrypted when ``recipients`` are given (:mod:`storelayer.backup.stream`: no copy
    of the dump rests on disk), and written with the manifest under a temporary name,
    then renamed. The
    ``storelayer_backup_created`` hook runs last."""
    backup_format = db.backend.features.backup_format
    if backup_format is None:
        raise BackupError(f"backend {db.backend.name!r} has no backup strategy")
    checked_compression(compression)
    if recipients:
        parse_recipients(recipients)  # a bad key fails before the dump, not after
    target = Path(path).expanduser().absolute()
    if target.exists():
        raise BackupError(f"{target} already exists: choose another name or remove it")
    if not target.parent.is_dir():
        raise BackupError(
            f"the directory {target.parent} does not exist: create it, or pass --dir to "
            "have it created"
        )
    server_version, revision = _describe_source(db)
    prune_local([target.parent])
    prune_server(db.backend, db.engine)
    try:
        with private_directory(target.parent) as work:
            name = f"dump.{backup_format}"
            stored = work / _payload_name(name, compression, bool(recipients))
            say(
                f"dumping {database_label(db)} ({db.backend.name}), read back and packed "
                f"as it comes ({compression}{', age' if recipients else ''})"
            )
            streamed = stream_dump(
                work,
                name,
                stored,
                lambda pipe: db.backend.backups.backup(
                    db.engine, pipe, progress, options or BackupOptions()
                ),
                db.backend.backups.inspect,
                (compression, list(recipients)),
            )
            tables = streamed.tables
            dump_info = DumpInfo(name, *streamed.dump, streamed.tool)
            plugin, plugin_version = _plugin(db)
            manifest = BackupManifest(
                backend=db.backend.name,
                backup_format=backup_format,
                plugin=plugin,
                plugin_version=plugin_version,
                storelayer_version=metadata.version("storelayer"),
                server_version=server_version,
                database=database_label(db),
                schema_revision=revision,
                created_at=utc_now(),
                tables=tables,
                dump=dump_info,
                payload=PayloadInfo(
                    stored.name,
                    stored.stat().st_size,
                    sha256_file(stored),
                    compression,
                    AGE if recipients else None,
                    list(recipients),
                ),
            )
            write_artifact(target, manifest, stored)
    except OSError as error:  # a full disk, a directory that went away
        raise BackupError(
            f"cannot write the backup {target}: {error.strerror or error}. Nothing was "
            "left behind: free some space or choose another directory"
        ) from None
    db.plugins.hook.storelayer_backup_created(manifest=manifest.to_dict(), path=str(target))
    return manifest

"""``restore_backup``: verify first, then restore atomically where the database allows,
then prove it by counting rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storelayer.backend import Progress
from storelayer.backup.artifact import check_payload, read_manifest
from storelayer.backup.counts import count_differences, row_counts, schema_revision, table_names
from storelayer.backup.create import database_label
from storelayer.backup.leftovers import prune_server
from storelayer.backup.manifest import BackupManifest
from storelayer.backup.options import BackupOptions
from storelayer.backup.unpack import identities_for, restore_streamed, verified_rows
from storelayer.backup.verify import backend_for
from storelayer.errors import BackupError

if TYPE_CHECKING:
    from storelayer.database import Database

Say = Callable[[str], None]
#: Tables named in a "not empty" error before "and N more".
SHOWN_TABLES = 5


@dataclass
class RestoreReport:
    """What ``restore_backup`` did."""

    path: str
    backend: str
    # The target database (its file name when embedded), not the backup's source.
    database: str
    tables: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def _quiet(_message: str) -> None:
    """Stage messages are dropped unless the caller listens."""


def refuse_other_backend(db: Database, manifest: BackupManifest) -> None:
    """A dump restores only into the backend that wrote it."""
    if manifest.backend != db.backend.name:
        raise BackupError(
            f"the backup is a {manifest.backend} dump ({manifest.backup_format}) and the "
            f"target is {db.backend.name}: nothing was changed. To move data across "
            "backends, restore into a database of the same backend and run 'storelayer copy'"
        )


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_TABLES])
    return shown + (f" and {len(names) - SHOWN_TABLES} more" if len(names) > SHOWN_TABLES else "")


def check_target(db: Database, manifest: BackupManifest, force: bool) -> list[str]:
    """Refuse a non-empty target without ``force``; with it, the warnings to show."""
    existing = table_names(db.engine)
    if not existing:
        return []
    with db.engine.connect() as connection:
        revision = schema_revision(connection)
    differs = revision != manifest.schema_revision
    detail = (
        f"; its schema revision {revision or 'none'} differs from the backup's "
        f"{manifest.schema_revision or 'none'}"
        if differs
        else ""
    )
    if not force:
        raise BackupError(
            f"the target database is not empty ({len(existing)} tables: {_listed(existing)})"
            f"{detail}. Nothing was changed; pass --force (force=True) to replace its contents"
        )
    if differs:
        return [
            f"replacing a database at schema revision {revision or 'none'} with a backup "
            f"at {manifest.schema_revision or 'none'}"
        ]
    return []


def restore_backup(
    db: Database,
    path: str | Path,
    *,
    force: bool = False,
    identity: str | Path | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    say: Say = _quiet,
) -> RestoreReport:
    """Restore the artifact at ``path`` into ``db``.

    Order: read the manifest, refuse another backend's dump, check the payload's size
    and SHA-256 (nothing is written), refuse a non-empty target unless ``force``, then
    restore from the stream of the decrypted, decompressed dump (no copy of it rests on
    disk; :mod:`storelayer.backup.unpack`): atomically, switched in only once the dump's
    size, SHA-256 and row counts matched the manifest, unless ``jobs`` > 1 asks for a
    parallel restore (the dump is then read and checked whole first). Last, count the
    rows of every table and fail on any difference."""
    started = time.monotonic()
    artifact = Path(path)
    manifest = read_manifest(artifact)
    refuse_other_backend(db, manifest)
    backend_for(manifest, db.plugins)
    key = Path(identity) if identity is not None else None
    prune_server(db.backend, db.engine)
    say(f"verifying {artifact}")
    check_payload(artifact, manifest)
    identities_for(artifact, manifest, key)  # a missing or bad key fails here
    warnings = check_target(db, manifest, force)
    for warning in warnings:
        say(f"warning: {warning}")
    options = BackupOptions(jobs=jobs, atomic=jobs <= 1, replace=force)
    if not options.atomic:  # the target changes as the dump comes: check it whole first
        say("reading the whole dump first (a parallel restore is not atomic)")
        verified_rows(artifact, manifest, db.backend, key)
    say(f"restoring into {database_label(db)} ({db.backend.name}), checked as it streams")
    restore_streamed(artifact, manifest, db.backend, key, (db.engine, progress), options, say)
    db.engine.dispose()  # pooled connections may hold the replaced schema
    say("counting rows")
    differences = count_differences(manifest.tables, row_counts(db.engine, manifest.tables))
    if differences:
        raise BackupError(
            "the restore finished but rows differ from the backup: " + "; ".join(differences)
        )
    return RestoreReport(
        str(artifact),
        db.backend.name,
        database_label(db),
        manifest.tables,
        warnings,
        round(time.monotonic() - started, 3),
    )

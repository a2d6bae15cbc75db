"""``verify_backup``: check an artifact before anyone relies on it.

Always: the manifest parses, the payload's size and SHA-256 match. With the key (or
without encryption): the dump is decompressed, its SHA-256 matches, and the backend
reads it in full and finds the manifest's row counts. ``deep``: the dump is restored
into a scratch database whose row counts must match too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from storelayer._core import opened
from storelayer.backend import Backend
from storelayer.backup.artifact import check_payload, read_manifest
from storelayer.backup.children import private_directory
from storelayer.backup.counts import count_differences, row_counts
from storelayer.backup.leftovers import prune_server, server_scratch_name
from storelayer.backup.manifest import BackupManifest
from storelayer.backup.options import BackupOptions
from storelayer.backup.unpack import restore_streamed, verified_rows
from storelayer.errors import BackupError
from storelayer.plugins import PluginManager, get_plugin_manager

Say = Callable[[str], None]


@dataclass
class VerifyReport:
    """What ``verify_backup`` checked."""

    path: str
    manifest: dict[str, Any]
    checks: list[str] = field(default_factory=list)
    dump_read: bool = False
    deep: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def _quiet(_message: str) -> None:
    """Stage messages are dropped unless the caller listens."""


def backend_for(manifest: BackupManifest, plugins: PluginManager) -> Backend:
    """The installed backend that wrote the artifact, with the same dump format."""
    backend = plugins.backends().get(manifest.backend)
    if backend is None:
        raise BackupError(
            f"the backup was made by backend {manifest.backend!r} ({manifest.plugin}), which "
            f"is not installed; installed: {', '.join(sorted(plugins.backends())) or 'none'}"
        )
    if backend.features.backup_format != manifest.backup_format:
        raise BackupError(
            f"the backup's format {manifest.backup_format!r} is not what backend "
            f"{backend.name!r} reads ({backend.features.backup_format!r})"
        )
    return backend


@contextmanager
def scratch_database(
    backend: Backend, server_url: URL | None, plugins: PluginManager
) -> Iterator[URL]:
    """A new empty database of ``backend``, dropped afterwards (and stale ones of
    killed runs first)."""
    name = server_scratch_name("verify")
    if not backend.features.server:
        with private_directory() as work:
            yield backend.provisioning.embedded_test_url(work, name)
        return
    if server_url is None:
        raise BackupError(
            f"--deep needs a {backend.name} server to create a scratch database on: pass "
            "--url (or set DATABASE_URL)"
        )
    with opened(server_url, backend=backend.name, plugins=plugins) as server:
        prune_server(backend, server.engine)
    url = backend.provisioning.create_database(server_url, name)
    try:
        yield url
    finally:
        backend.provisioning.drop_database(server_url, name)


def restore_and_count(
    backend: Backend,
    manifest: BackupManifest,
    artifact: tuple[Path, Path | None],
    url: URL,
    plugins: PluginManager,
    jobs: int,
    say: Say,
) -> None:
    """Restore the artifact (path, identity) into the database at ``url``, fed from
    the stream and checked, and compare its rows."""
    path, identity = artifact
    with opened(url, backend=backend.name, plugins=plugins) as db:
        options = BackupOptions(jobs=jobs, atomic=False)
        restore_streamed(path, manifest, backend, identity, (db.engine, None), options, say)
        db.engine.dispose()
        differences = count_differences(manifest.tables, row_counts(db.engine, manifest.tables))
    if differences:
        raise BackupError("the restored scratch database differs: " + "; ".join(differences))


def _check_server(backend: Backend, server_url: URL | None, plugins: PluginManager) -> None:
    """``--deep`` on a server backend needs a server of that backend."""
    if server_url is None or not backend.features.server:
        return
    serving = plugins.resolve(server_url.drivername)
    if serving.name != backend.name:
        raise BackupError(
            f"--deep restores a {backend.name} backup into a scratch database on a "
            f"{backend.name} server, but --url (or DATABASE_URL) names a {serving.name} "
            "database"
        )


def verify_backup(
    path: str | Path,
    *,
    identity: str | Path | None = None,
    deep: bool = False,
    server_url: URL | None = None,
    jobs: int = 2,
    plugins: PluginManager | None = None,
    say: Say = _quiet,
) -> VerifyReport:
    """Verify the artifact at ``path``; any failure is a ``BackupError`` saying what."""
    artifact = Path(path)
    manager = plugins or get_plugin_manager()
    manifest = read_manifest(artifact)
    report = VerifyReport(str(artifact), manifest.to_dict(), ["manifest"])
    backend = backend_for(manifest, manager)
    key = Path(identity) if identity is not None else None
    check_payload(artifact, manifest)
    report.checks.append("payload sha256")
    if manifest.payload.encryption and key is None:
        say("encrypted: only the checksum was verified; pass --identity to read the dump")
        if deep:
            raise BackupError(f"{artifact} is encrypted: --deep needs --identity")
        return report
    if deep:
        _check_server(backend, server_url, manager)
        say(f"restoring into a scratch {backend.name} database, read as it is unpacked")
        with scratch_database(backend, server_url, manager) as url:
            restore_and_count(backend, manifest, (artifact, key), url, manager, jobs, say)
    else:
        verified_rows(artifact, manifest, backend, key)
    report.checks += ["dump sha256", "full read", "row counts"]
    report.dump_read = True
    if deep:
        report.checks.append("restore into scratch database")
        report.deep = True
    return report

"""The artifact format on SQLite (no server needed): manifest, permissions, atomic
writes, compression, age encryption, the plugin hook, the Python API surface."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sample_tables import checksums, fill_sample, wipe

import storelayer
from storelayer import BackupError, Database, hookimpl
from storelayer.backup import (
    FORMAT_VERSION,
    BackupManifest,
    create_backup,
    read_manifest,
    verify_backup,
)
from storelayer.backup.manifest import MANIFEST_NAME
from storelayer.plugins import get_plugin_manager

pyrage = pytest.importorskip("pyrage")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = storelayer.connect(f"sqlite:///{tmp_path / 'app.db'}")
    fill_sample(database, notes=40)
    yield database
    database.dispose()


def test_manifest_describes_the_backup_without_credentials(db: Database, tmp_path: Path) -> None:
    manifest = db.backup(tmp_path / "a.storelayer")
    data = read_manifest(tmp_path / "a.storelayer").to_dict()
    assert data == manifest.to_dict()
    assert data["format_version"] == FORMAT_VERSION
    assert data["backend"] == "sqlite" and data["backup_format"] == "sqlite-online"
    assert data["plugin"] == "storelayer-sqlite" and data["plugin_version"]
    assert data["database"] == "app.db" and str(tmp_path) not in json.dumps(data)
    assert data["tables"] == {"authors": 5, "notes": 40}
    assert data["schema_revision"] == []
    assert data["payload"]["compression"] == "zstd" and data["payload"]["encryption"] is None
    assert len(data["payload"]["sha256"]) == len(data["dump"]["sha256"]) == 64
    assert data["dump"]["tool"].startswith("sqlite3 online backup API")
    with tarfile.open(tmp_path / "a.storelayer") as tar:
        assert tar.getnames() == [MANIFEST_NAME, "dump.sqlite-online.zst"]


def test_schema_revision_is_recorded(db: Database, tmp_path: Path) -> None:
    with db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('abc123')")
    assert db.backup(tmp_path / "r.storelayer").schema_revision == ["abc123"]


def test_files_are_private_and_a_failed_backup_leaves_nothing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    db.backup(out / "ok.storelayer")
    assert (out / "ok.storelayer").stat().st_mode & 0o777 == 0o600

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise BackupError("disk on fire")

    monkeypatch.setattr(db.backend.backups, "inspect", broken)
    with pytest.raises(BackupError, match="disk on fire"):
        db.backup(out / "failed.storelayer")
    assert sorted(p.name for p in out.iterdir()) == ["ok.storelayer"]


def test_existing_file_is_never_overwritten(db: Database, tmp_path: Path) -> None:
    (tmp_path / "x.storelayer").write_text("precious")
    with pytest.raises(BackupError, match="already exists"):
        db.backup(tmp_path / "x.storelayer")
    assert (tmp_path / "x.storelayer").read_text() == "precious"


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_every_compression_round_trips(db: Database, tmp_path: Path, compression: str) -> None:
    before = checksums(db)
    manifest = db.backup(tmp_path / "c.storelayer", compression=compression)
    assert manifest.payload.compression == compression
    wipe(db)
    db.restore(tmp_path / "c.storelayer")
    assert checksums(db) == before


def test_encrypted_backup_needs_the_identity_only_to_restore(db: Database, tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# created for a test\n{identity}\n")
    recipient = str(identity.to_public())
    before = checksums(db)
    manifest = db.backup(tmp_path / "s.storelayer", recipients=[recipient])
    assert manifest.payload.encryption == "age" and manifest.payload.recipients == [recipient]
    assert str(identity) not in (tmp_path / "s.storelayer").read_bytes().decode(errors="replace")
    report = verify_backup(tmp_path / "s.storelayer")
    assert report.checks == ["manifest", "payload sha256"] and not report.dump_read
    assert verify_backup(tmp_path / "s.storelayer", identity=key_file).dump_read
    wipe(db)
    with pytest.raises(BackupError, match="encrypted.*--identity"):
        db.restore(tmp_path / "s.storelayer")
    other = tmp_path / "other.txt"
    other.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    with pytest.raises(BackupError, match="cannot decrypt"):
        db.restore(tmp_path / "s.storelayer", identity=other)
    db.restore(tmp_path / "s.storelayer", identity=key_file)
    assert checksums(db) == before


def test_bad_recipient_fails_before_dumping(db: Database, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="not an age recipient"):
        db.backup(tmp_path / "n.storelayer", recipients=["age1nope"])
    assert list(tmp_path.glob("*.storelayer")) == []


def test_hook_receives_manifest_and_path(db: Database, tmp_path: Path) -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    class Shipper:
        @hookimpl
        def storelayer_backup_created(self, manifest: dict[str, Any], path: str) -> None:
            seen.append((manifest, path))

    manager = get_plugin_manager()
    name = manager.register(Shipper(), name="test-shipper")
    try:
        manifest = create_backup(db, tmp_path / "h.storelayer")
    finally:
        manager.unregister(name)
    assert seen == [(manifest.to_dict(), str(tmp_path / "h.storelayer"))]


def test_newer_format_and_foreign_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.storelayer").write_bytes(os.urandom(2048))
    with pytest.raises(BackupError, match="not a storelayer backup"):
        read_manifest(tmp_path / "junk.storelayer")
    with pytest.raises(BackupError, match="newer than this storelayer reads"):
        BackupManifest.from_dict({"format": "storelayer-backup", "format_version": 99})
    with pytest.raises(BackupError, match="does not exist"):
        verify_backup(tmp_path / "missing.storelayer")


def test_unsafe_member_names_are_refused(db: Database, tmp_path: Path) -> None:
    data = db.backup(tmp_path / "u.storelayer").to_dict()
    data["payload"]["name"] = "../../etc/passwd"
    with pytest.raises(BackupError, match="unsafe member"):
        BackupManifest.from_dict(data)

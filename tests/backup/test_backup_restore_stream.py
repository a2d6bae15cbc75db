"""On every backend, a restore streams the dump out of the artifact: an encrypted
artifact is restored and verified without a file being written under the temporary
directory (watched by an audit hook over every file this process opens), and a dump
whose size, checksum or rows fail at the end of the stream is never switched in."""

from __future__ import annotations

import dataclasses
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sample_tables import checksums, fill_sample, plant_marker

from storelayer import BackupError, Database
from storelayer.backup import read_manifest, restore_backup, verify_backup
from storelayer.backup.artifact import write_artifact

pyrage = pytest.importorskip("pyrage")
pytestmark = pytest.mark.requires("backup_format")

NewDatabase = Callable[[], Database]
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT
#: Paths this process opened for writing while a test watched (see ``_audit``).
_opened: list[str] = []
_watching: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching or event != "open" or isinstance(args[0], int):
        return
    path, mode, flags = args
    if (mode and set(str(mode)) & set("wax+")) or (flags or 0) & WRITING:
        _opened.append(os.fsdecode(path))


sys.addaudithook(_audit)  # cannot be removed: it records only while a test watches


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], list[str]]]:
    """A private temporary directory; the paths under it opened for writing since."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _opened.clear()
    _watching.append(True)
    try:
        yield lambda: [p for p in _opened if p.startswith(str(scratch))]
    finally:
        _watching.clear()


def _key(tmp_path: Path) -> tuple[Path, str]:
    identity = pyrage.x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"{identity}\n")
    return key, str(identity.to_public())


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_encrypted_restore_writes_no_file_under_the_temporary_directory(
    new_database: NewDatabase,
    tmp_path: Path,
    written: Callable[[], list[str]],
    jobs: int,
) -> None:
    source, target = new_database(), new_database()
    fill_sample(source, notes=30)
    marker = plant_marker(source)
    key, recipient = _key(tmp_path)
    artifact = tmp_path / "s.storelayer"
    source.backup(artifact, compression="none", recipients=[recipient])
    assert marker.encode() not in artifact.read_bytes()
    said: list[str] = []
    report = restore_backup(target, artifact, identity=key, jobs=jobs, say=said.append)
    assert report.tables == {"authors": 5, "notes": 31}
    assert checksums(target) == checksums(source)
    deep = target.backend.features.server  # SQLite's scratch database is a file in tmp
    verified = verify_backup(artifact, identity=key, deep=deep, server_url=source.url)
    assert verified.dump_read and "row counts" in verified.checks
    assert written() == []
    control = Path(tempfile.gettempdir()) / "control"
    control.write_bytes(b"the audit sees what is written")
    assert written() == [str(control)]
    fallback = [m for m in said if "never written in clear" in m]
    needs_file = getattr(target.backend.backups, "restore_needs_file", None)
    assert bool(fallback) == bool(jobs > 1 and needs_file)


def _lying(artifact: Path, out: Path, **changes: Any) -> Path:
    """A copy of ``artifact`` with its payload intact and its manifest changed."""
    manifest = read_manifest(artifact)
    payload = out.with_suffix(".payload")
    with tarfile.open(artifact) as tar:
        stream = tar.extractfile(manifest.payload.name)
        assert stream is not None
        payload.write_bytes(stream.read())
    dump = dataclasses.replace(manifest.dump, **changes.pop("dump", {}))
    write_artifact(out, dataclasses.replace(manifest, dump=dump, **changes), payload)
    return out


@pytest.mark.parametrize("lie", ["sha256", "rows"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_dump_failing_its_end_of_stream_checks_is_never_switched_in(
    new_database: NewDatabase, tmp_path: Path, lie: str, jobs: int
) -> None:
    source, target = new_database(), new_database()
    fill_sample(source, notes=30)
    key, recipient = _key(tmp_path)
    honest = tmp_path / "h.storelayer"
    manifest = source.backup(honest, recipients=[recipient])
    if lie == "sha256":
        lying = _lying(honest, tmp_path / "l.storelayer", dump={"sha256": "0" * 64})
        expected = "does not match the manifest's SHA-256"
    else:
        tables = {**manifest.tables, "notes": manifest.tables["notes"] - 1}
        lying = _lying(honest, tmp_path / "l.storelayer", tables=tables)
        expected = "does not hold the manifest's rows: notes"
    fill_sample(target, notes=3)
    before = checksums(target)
    with pytest.raises(BackupError, match=expected):
        restore_backup(target, lying, identity=key, force=True, jobs=jobs)
    target.dispose()
    assert checksums(target) == before
    with pytest.raises(BackupError, match=expected):
        verify_backup(lying, identity=key)
    restore_backup(target, honest, identity=key, force=True, jobs=jobs)
    assert checksums(target) == checksums(source)

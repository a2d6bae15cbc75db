"""On every backend: backup, wipe, restore reproduces every row; a backup taken under
steady writes restores to a consistent prefix; damaged, foreign or tool-less restores
are refused and leave the target untouched."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sample_tables import checksums, fill_sample, wipe
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

import storelayer
from storelayer import BackupError, Database
from storelayer.backup import read_manifest, verify_backup

pytestmark = pytest.mark.requires("backup_format")

NewDatabase = Callable[[], Database]


def test_round_trip_reproduces_every_row(new_database: NewDatabase, tmp_path: Path) -> None:
    db = new_database()
    fill_sample(db)
    before = checksums(db)
    manifest = db.backup(tmp_path / "a.storelayer")
    assert manifest.tables == {"authors": 5, "notes": 60}
    assert (tmp_path / "a.storelayer").stat().st_mode & 0o777 == 0o600
    wipe(db)
    report = db.restore(tmp_path / "a.storelayer")
    assert report.tables == manifest.tables
    assert checksums(db) == before


def test_the_async_api_backs_up_and_restores_the_same_artifact(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    db = new_database()
    fill_sample(db)
    before = checksums(db)

    async def round_trip() -> tuple[dict[str, int], dict[str, int]]:
        async with storelayer.connect_async(db.url, backend=db.backend.name) as adb:
            manifest = await adb.backup(tmp_path / "async.storelayer")
            wipe(db)
            report = await adb.restore(tmp_path / "async.storelayer")
        return manifest.tables, report.tables

    backed_up, restored = asyncio.run(round_trip())
    assert backed_up == restored == {"authors": 5, "notes": 60}
    assert checksums(db) == before


def test_restore_into_another_database_and_deep_verify(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    source, target = new_database(), new_database()
    fill_sample(source, notes=20)
    source.backup(tmp_path / "b.storelayer", compression="gzip")
    report = verify_backup(tmp_path / "b.storelayer", deep=True, server_url=source.url)
    assert report.deep and report.dump_read
    target.restore(tmp_path / "b.storelayer")
    assert checksums(target) == checksums(source)


def _writer(db: Database, table: Table, twin: Table, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        with db.engine.begin() as connection:
            connection.execute(insert(table), {"n": n})
            connection.execute(insert(twin), {"n": n})


def test_backup_under_steady_writes_restores_a_consistent_prefix(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    db, restored = new_database(), new_database()
    metadata = MetaData()
    counted = Table("counted", metadata, Column("n", Integer, primary_key=True))
    twin = Table("twin", metadata, Column("n", Integer, primary_key=True))
    metadata.create_all(db.engine)
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(db, counted, twin, stop))
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.engine.connect() as connection:
                if len(connection.execute(select(counted.c.n)).all()) >= 50:
                    break
        manifest = db.backup(tmp_path / "c.storelayer")
    finally:
        stop.set()
        writer.join()
    restored.restore(tmp_path / "c.storelayer")
    with restored.engine.connect() as connection:
        numbers = sorted(connection.execute(select(counted.c.n)).scalars())
        twins = sorted(connection.execute(select(twin.c.n)).scalars())
    k = len(numbers)
    assert k >= 50
    assert numbers == list(range(1, k + 1)) == twins
    assert manifest.tables == {"counted": k, "twin": k}


def _sentinel(db: Database) -> dict[str, tuple[int, str]]:
    metadata = MetaData()
    table = Table("sentinel", metadata, Column("id", Integer, primary_key=True))
    metadata.create_all(db.engine)
    with db.engine.begin() as connection:
        connection.execute(insert(table), [{"id": i} for i in range(1, 8)])
    return checksums(db)


def _damage(path: Path, how: str) -> None:
    """Cut the artifact in the middle of its payload, or flip one bit there."""
    with tarfile.open(path) as tar:
        payload = tar.getmembers()[1]
        middle = payload.offset_data + payload.size // 2
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[:middle]))
    else:
        data[middle] ^= 0x20
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "altered"])
def test_damaged_artifact_is_refused_and_target_untouched(
    new_database: NewDatabase, tmp_path: Path, how: str
) -> None:
    source, target = new_database(), new_database()
    fill_sample(source, notes=30)
    artifact = tmp_path / "d.storelayer"
    source.backup(artifact, compression="none")
    before = _sentinel(target)
    _damage(artifact, how)
    with pytest.raises(BackupError, match="truncated|damaged|altered|corrupt"):
        target.restore(artifact, force=True)
    with pytest.raises(BackupError):
        verify_backup(artifact)
    assert checksums(target) == before


def _relabel(artifact: Path, backend: str, backup_format: str) -> None:
    with tarfile.open(artifact) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    manifest = json.loads(members[0][1])
    manifest.update(backend=backend, backup_format=backup_format)
    raw = json.dumps(manifest).encode()
    with tarfile.open(artifact, "w") as tar:
        members[0][0].size = len(raw)
        tar.addfile(members[0][0], io.BytesIO(raw))
        tar.addfile(members[1][0], io.BytesIO(members[1][1]))


def test_artifact_of_another_backend_is_refused(
    new_database: NewDatabase, tmp_path: Path, backend_name: str
) -> None:
    source, target = new_database(), new_database()
    fill_sample(source, notes=5)
    artifact = tmp_path / "e.storelayer"
    source.backup(artifact)
    other = "mysql" if backend_name != "mysql" else "postgresql"
    _relabel(artifact, other, "mysqldump" if other == "mysql" else "pg_dump-custom")
    before = _sentinel(target)
    with pytest.raises(BackupError, match=f"is a {other} dump.*nothing was changed"):
        target.restore(artifact, force=True)
    assert checksums(target) == before
    assert read_manifest(artifact).backend == other


def test_missing_client_tool_is_refused_and_target_untouched(
    new_database: NewDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = new_database(), new_database()
    fill_sample(source, notes=5)
    artifact = tmp_path / "f.storelayer"
    source.backup(artifact)
    before = _sentinel(target)
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    if not target.backend.features.server:  # an embedded database needs no client tool
        target.restore(artifact, force=True)
        return
    with pytest.raises(BackupError, match="not found on PATH.*install"):
        target.restore(artifact, force=True)
    assert checksums(target) == before
    with pytest.raises(BackupError, match="not found on PATH.*install"):
        source.backup(tmp_path / "g.storelayer")
    assert not (tmp_path / "g.storelayer").exists()

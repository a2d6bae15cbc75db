"""Failures that must stay small and say one line: a crafted artifact that expands far
beyond what its manifest declares, a missing directory, a file system that refuses to
grow, a copy that fails half-way; and leftovers of dead processes are removed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner
from sample_tables import fill_sample
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert

import storelayer
from storelayer import BackupError, Database
from storelayer.backup import read_manifest
from storelayer.backup.artifact import write_artifact
from storelayer.backup.children import remove_stale
from storelayer.backup.counts import table_names
from storelayer.backup.payload import decompress, sha256_file
from storelayer.cli import cli
from storelayer.copy import copy_database

PREFIX = "storelayer: error:"
#: What the crafted payload expands to, and what its manifest declares.
BOMB, DECLARED = 160 << 20, 16 << 10


def sqlite_db(tmp_path: Path, name: str = "app.db", notes: int = 25) -> Database:
    db = storelayer.connect(f"sqlite:///{tmp_path / name}")
    fill_sample(db, notes=notes)
    return db


def crafted(tmp_path: Path) -> Path:
    """A valid-looking artifact whose 16 KiB-declared dump expands 10,000 times."""
    db = sqlite_db(tmp_path)
    honest = tmp_path / "honest.storelayer"
    manifest = db.backup(honest)
    db.dispose()
    bomb = tmp_path / "bomb.zst"
    with open(bomb, "wb") as out, zstandard.ZstdCompressor().stream_writer(out) as packed:
        for _ in range(BOMB >> 20):
            packed.write(bytes(1 << 20))
    payload = dataclasses.replace(
        manifest.payload, size=bomb.stat().st_size, sha256=sha256_file(bomb)
    )
    dump = dataclasses.replace(manifest.dump, size=DECLARED)
    artifact = tmp_path / "crafted.storelayer"
    write_artifact(artifact, dataclasses.replace(manifest, payload=payload, dump=dump), bomb)
    return artifact


def test_decompression_stops_at_the_declared_size(tmp_path: Path) -> None:
    artifact = crafted(tmp_path)
    assert artifact.stat().st_size * 1000 < BOMB
    out = tmp_path / "out"
    with pytest.raises(BackupError, match="expands beyond the 16384 bytes"):
        decompress(tmp_path / "bomb.zst", out, "zstd", DECLARED)
    assert out.stat().st_size <= DECLARED
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = CliRunner().invoke(
        cli, ["verify-backup", str(artifact)], env={"DATABASE_URL": None, "TMPDIR": str(scratch)}
    )
    assert result.exit_code == 2 and result.stderr.startswith(PREFIX)
    assert "expands beyond" in result.stderr and result.stderr.count("\n") == 1


def test_backup_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    missing = tmp_path / "nope" / "a.storelayer"
    result = CliRunner().invoke(
        cli, ["--url", str(db.url), "backup", str(missing)], env={"DATABASE_URL": None}
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(PREFIX) and result.stderr.count("\n") == 1
    assert str(missing.parent) in result.stderr and "does not exist" in result.stderr


def _limit_file_size(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_file_system_that_refuses_to_grow_is_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """Files may not grow past the dump's size (``RLIMIT_FSIZE``, as a full disk would
    refuse): the dump (larger than SQLite's shared-memory file) fits, the artifact
    does not."""
    db = sqlite_db(tmp_path, notes=3000)
    db.dispose()
    size = (tmp_path / "app.db").stat().st_size
    backups = tmp_path / "backups"
    backups.mkdir()
    command = [sys.executable, "-m", "storelayer", "--url", str(db.url), "backup"]
    env = {**os.environ, "TMPDIR": str(backups)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [*command, "--compression", "none", str(backups / "a.storelayer")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size(size + 1024),
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("storelayer: ")]
    assert errors == [] or errors == ["dumping"], done.stderr  # stage lines, progress bar
    assert done.stderr.splitlines()[-1].startswith(f"{PREFIX} cannot write the backup")
    assert list(backups.iterdir()) == []


def test_leftovers_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".storelayer-{pid}-1700000000-abc"
    stale.mkdir()
    (stale / "dump.sqlite").write_text("clear")
    partial = tmp_path / f".storelayer-{pid}-1700000000-1234-a.storelayer.partial"
    partial.write_text("half")
    live = tmp_path / f".storelayer-{os.getpid()}-1700000000-def"
    live.mkdir()
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    assert sorted(remove_stale(tmp_path)) == sorted([stale, partial])
    assert sorted(tmp_path.iterdir()) == sorted([live, other])


def test_failed_copy_drops_what_it_created(
    tmp_path: Path, new_database: Callable[[], Database]
) -> None:
    """Microseconds a target cannot keep fail the checksum; the copy is undone."""
    metadata = MetaData()
    Table("events", metadata, Column("id", Integer, primary_key=True), Column("at", DateTime))
    source = storelayer.connect(f"sqlite:///{tmp_path / 'events.db'}")
    metadata.create_all(source.engine)
    with source.engine.begin() as connection:
        at = dt.datetime(2024, 1, 1, 12, 0, 0, 123456)
        connection.execute(insert(metadata.tables["events"]), [{"id": 1, "at": at}])
    target = new_database()
    try:
        copy_database(source.url, target.url)
        failure = ""
    except BackupError as error:
        failure = str(error)
    source.dispose()
    if failure:  # a target that keeps microseconds copies them
        assert "undone" in failure and "dropped" in failure
        assert table_names(target.engine) == []


def test_restore_names_the_target_database(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    artifact = tmp_path / "a.storelayer"
    db.backup(artifact)
    other = storelayer.connect(f"sqlite:///{tmp_path / 'other.db'}")
    report = other.restore(artifact)
    assert report.database == "other.db" and read_manifest(artifact).database == "app.db"
    db.dispose()
    other.dispose()

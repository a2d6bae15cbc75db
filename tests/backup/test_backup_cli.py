"""``storelayer backup``, ``restore``, ``verify-backup`` and ``copy`` through click's
CliRunner, on SQLite files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sample_tables import checksums, fill_sample, wipe

import storelayer
from storelayer import Database
from storelayer.backup import read_manifest
from storelayer.cli import cli

PREFIX = "storelayer: error:"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = storelayer.connect(f"sqlite:///{tmp_path / 'app.db'}")
    fill_sample(database, notes=25)
    yield database
    database.dispose()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": None})


def test_backup_verify_restore(db: Database, tmp_path: Path) -> None:
    url = str(db.url)
    artifact = tmp_path / "one.storelayer"
    result = run("--url", url, "backup", str(artifact))
    assert result.exit_code == 0, result.output
    assert "written" in result.stdout and "2 (30 rows)" in result.stdout
    verified = run("--json", "verify-backup", str(artifact))
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["ok"] and report["dump_read"] and "full read" in report["checks"]
    deep = run("--url", url, "verify-backup", "--deep", str(artifact))
    assert deep.exit_code == 0 and "restore into scratch database" in deep.stdout
    before = checksums(db)
    refused = run("--url", url, "restore", str(artifact))
    assert refused.exit_code == 2 and "not empty" in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(PREFIX)
    wipe(db)
    restored = run("--url", url, "--json", "restore", str(artifact))
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["tables"] == {"authors": 5, "notes": 25}
    assert checksums(db) == before


def test_damaged_artifact_fails_verify_with_one_line(db: Database, tmp_path: Path) -> None:
    artifact = tmp_path / "bad.storelayer"
    assert run("--url", str(db.url), "backup", str(artifact)).exit_code == 0
    artifact.write_bytes(artifact.read_bytes()[:3000])
    result = run("verify-backup", str(artifact))
    assert result.exit_code == 2
    assert result.stderr.startswith(PREFIX) and result.stderr.count("\n") == 1


def test_backup_dir_with_retention(db: Database, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    written: list[Path] = []
    for _ in range(3):
        result = run("--url", str(db.url), "--json", "backup", "--dir", str(backups), "--keep", "2")
        assert result.exit_code == 0, result.output
        written.append(Path(json.loads(result.stdout)["path"]))
    (backups / "notes.txt").write_text("not an artifact: left alone")
    assert len(set(written)) == 3
    left = sorted(backups.glob("*.storelayer"))
    assert left == sorted(written[1:])
    assert all(read_manifest(p).database == "app.db" for p in left)


def test_usage_errors(db: Database, tmp_path: Path) -> None:
    result = run("--url", str(db.url), "backup", "--keep", "2", str(tmp_path / "x.storelayer"))
    assert result.exit_code == 2 and "--dir" in result.stderr
    assert run("--url", str(db.url), "backup").exit_code == 2


def test_copy_between_sqlite_files(db: Database, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = run("--json", "copy", "--from", str(db.url), "--to", target)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 30 and set(report["tables"]) == {"authors", "notes"}
    with storelayer.connect(target) as copy:
        assert checksums(copy) == checksums(db)
    again = run("copy", "--from", str(db.url), "--to", target)
    assert again.exit_code == 2 and "already has tables" in again.stderr

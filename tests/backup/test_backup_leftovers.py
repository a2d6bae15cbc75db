"""``storelayer backup --prune-stale`` (and every backup) removes what killed runs
left: scratch directories of dead processes, and staging or scratch databases on the
server whose owner is gone; what a live process or another host owns stays."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from storelayer import Database
from storelayer.backup.leftovers import HOST, owner_gone, server_scratch_name
from storelayer.cli import cli

NewDatabase = Callable[[], Database]
CREATE = {"postgresql": 'CREATE DATABASE "{}"', "mysql": "CREATE DATABASE `{}`"}
DROP = {"postgresql": 'DROP DATABASE IF EXISTS "{}"', "mysql": "DROP DATABASE IF EXISTS `{}`"}


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_names_tell_owner_and_host() -> None:
    mine = server_scratch_name("verify")
    assert len(mine) <= 63 and not owner_gone(mine)
    assert owner_gone(f"storelayer_verify_{HOST}_{dead_pid()}_1700000000_abcd")
    other = "0" * 6 if HOST != "0" * 6 else "1" * 6
    assert not owner_gone(f"storelayer_verify_{other}_{dead_pid()}_1700000000_abcd")
    assert not owner_gone("storelayer_verify_0123456789ab")  # older names: not judged


@pytest.fixture
def databases(new_database: NewDatabase, backend_name: str) -> Iterator[tuple[Database, list[str]]]:
    """Leftover-looking databases on the server: a dead owner's, a live one's, another
    host's; dropped afterwards whatever happened."""
    db = new_database()
    other = "0" * 6 if HOST != "0" * 6 else "1" * 6
    names = [
        f"storelayer_verify_{HOST}_{dead_pid()}_1700000000_dead",
        f"storelayer_verify_{HOST}_{os.getpid()}_1700000000_live",
        f"storelayer_verify_{other}_{dead_pid()}_1700000000_away",
    ]
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name in names:
            connection.execute(text(CREATE[backend_name].format(name)))
    try:
        yield db, names
    finally:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for name in names:
                connection.execute(text(DROP[backend_name].format(name)))


def existing(db: Database, names: list[str]) -> list[str]:
    query = {
        "postgresql": "SELECT datname FROM pg_database",
        "mysql": "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA",
    }[db.engine.dialect.name]
    with db.engine.connect() as connection:
        found = {str(n) for n in connection.execute(text(query)).scalars()}
    return [n for n in names if n in found]


@pytest.mark.requires("backup_format", "server")
def test_prune_stale_drops_only_dead_owners_databases_and_directories(
    databases: tuple[Database, list[str]], tmp_path: Path
) -> None:
    db, (dead, live, away) = databases
    directory = tmp_path / "backups"
    directory.mkdir()
    stale = directory / f".storelayer-{dead_pid()}-1700000000-abc"
    stale.mkdir()
    kept = directory / f".storelayer-{os.getpid()}-1700000000-def"
    kept.mkdir()
    url = db.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["--url", url, "backup", "--prune-stale", "--dir", str(directory)],
        env={"DATABASE_URL": None, "TMPDIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    # The dead owner's database is gone; on the shared test server another worker's
    # backup or restore (which prune too) may have removed it first, so this run's
    # report names it only when this run did.
    assert f"removed {stale}" in result.stdout
    assert existing(db, [dead, live, away]) == [live, away]
    assert sorted(directory.iterdir()) == [kept]

"""``storelayer backup`` and ``restore`` killed (SIGTERM, SIGKILL) while a client tool
runs, as real processes against real servers with password-protected accounts: no tool
keeps running, no file holds the password, the target is unchanged, and what a SIGKILL
left (scratch directories, staging databases) is gone after the next run.

The tools on ``STORELAYER_TOOLS_PATH`` are wrappers around the real ones: each records
its process id, and the one whose arguments contain ``$KILL_TEST_HANG`` starts a
grandchild and waits instead of working, so storelayer can be killed at that point."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from _processes import alive, describe
from sample_tables import checksums, fill_sample
from sqlalchemy import TextClause, text
from sqlalchemy.engine import URL

from storelayer import Database
from storelayer.backup import TOOLS_PATH_VARIABLE

pytestmark = [
    pytest.mark.requires("backup_format", "server"),  # a server's dump tools to kill
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process model"),
]

NewDatabase = Callable[[], Database]
#: The client tools wrapped, by backend, and the argument that marks each stage.
TOOLS = {
    "postgresql": ["pg_dump", "pg_restore"],
    "mysql": ["mariadb-dump", "mysqldump", "mariadb", "mysql"],
}
#: An argument only the dump, and only the restore (not the read-back), passes.
DUMP_MARK = {"postgresql": "--format=custom", "mysql": "--single-transaction"}
RESTORE_MARK = {"postgresql": "--dbname=", "mysql": "--batch"}
WRAPPER = """#!/bin/sh
[ "$1" = "--version" ] && exec {real} "$@"
echo $$ >> "$KILL_TEST_PIDS"
case " $* " in *"$KILL_TEST_HANG"*)
    if [ -n "$KILL_TEST_HANG" ]; then
        sleep 600 & echo $! >> "$KILL_TEST_PIDS"; : > "$KILL_TEST_READY"; wait; exit 1
    fi;;
esac
exec {real} "$@"
"""
#: Seconds a killed process and its children get to disappear.
SETTLE = 60.0


def _wait_for(
    check: Callable[[], bool], what: str, explain: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + SETTLE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {explain()}")
        time.sleep(0.1)


def files_holding(secret: str, *roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                if path.is_file() and secret.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


class Harness:
    """A storelayer command line run as its own process, with wrapped tools."""

    def __init__(self, root: Path, backend_name: str, url: URL, secret: str) -> None:
        self.root, self.url, self.secret = root, url, secret
        self.tools, self.tmp = root / "tools", root / "tmp"
        self.pids, self.ready = root / "pids", root / "ready"
        self.tools.mkdir()
        self.tmp.mkdir()
        for name in TOOLS[backend_name]:
            real = shutil.which(name)
            if real:
                wrapper = self.tools / name
                wrapper.write_text(WRAPPER.format(real=real))
                wrapper.chmod(0o755)

    def start(self, *args: str, hang: str = "") -> subprocess.Popen[bytes]:
        self.pids.write_text("")
        self.ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            TOOLS_PATH_VARIABLE: str(self.tools),
            "TMPDIR": str(self.tmp),
            "KILL_TEST_PIDS": str(self.pids),
            "KILL_TEST_READY": str(self.ready),
            "KILL_TEST_HANG": hang,
        }
        env.pop("DATABASE_URL", None)
        url = self.url.render_as_string(hide_password=False)
        command = [sys.executable, "-m", "storelayer", "--url", url, *args]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        process = self.start(*args)
        out, err = process.communicate(timeout=600)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def kill_when_ready(self, process: subprocess.Popen[bytes], signum: int) -> None:
        _wait_for(lambda: self.ready.exists() or process.poll() is not None, "the hang")
        assert process.poll() is None, process.communicate()
        process.send_signal(signum)
        process.communicate(timeout=SETTLE)

    def assert_nothing_left(self, *roots: Path) -> None:
        pids = [int(p) for p in self.pids.read_text().split()]
        assert pids, "no tool ran"
        survivors = partial(describe, pids)
        _wait_for(lambda: not any(alive(p) for p in pids), "the tools to die", survivors)
        assert files_holding(self.secret, self.tmp, *roots) == []


@pytest.fixture
def secret_url(new_database: NewDatabase, backend_name: str) -> Iterator[tuple[Database, URL, str]]:
    """A filled scratch database and a URL to it with a password."""
    db = new_database()
    fill_sample(db)
    secret = f"kill-{secrets.token_hex(8)}"
    if backend_name == "postgresql":  # the shared server trusts local connections
        yield db, db.url.set(password=secret), secret
        return
    user = f"sl_kill_{secrets.token_hex(4)}"
    with db.engine.begin() as connection:
        connection.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{secret}'"))
        connection.execute(text(f"GRANT ALL ON `{db.url.database}`.* TO '{user}'@'%'"))
        connection.execute(text(f"GRANT ALL ON `storelayer\\_restore\\_%`.* TO '{user}'@'%'"))
    try:
        yield db, db.url.set(username=user, password=secret), secret
    finally:
        with db.engine.begin() as connection:
            connection.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_backup_leaves_no_tool_no_secret_no_dump(
    secret_url: tuple[Database, URL, str], backend_name: str, tmp_path: Path, signum: int
) -> None:
    _, url, secret = secret_url
    harness = Harness(tmp_path, backend_name, url, secret)
    backups = tmp_path / "backups"
    backups.mkdir()
    process = harness.start("backup", "--dir", str(backups), hang=DUMP_MARK[backend_name])
    harness.kill_when_ready(process, signum)
    harness.assert_nothing_left(backups)
    finished = harness.run("backup", "--dir", str(backups))
    assert finished.returncode == 0, finished.stderr
    assert [p.name.endswith(".storelayer") for p in backups.iterdir()] == [True]
    assert list(harness.tmp.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_restore_changes_nothing_and_leaves_nothing(
    secret_url: tuple[Database, URL, str], backend_name: str, tmp_path: Path, signum: int
) -> None:
    db, url, secret = secret_url
    harness = Harness(tmp_path, backend_name, url, secret)
    artifact = tmp_path / "a.storelayer"
    assert harness.run("backup", str(artifact)).returncode == 0
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM notes WHERE id > 10"))
    before = checksums(db)
    staging = set(staging_databases(db))
    process = harness.start("restore", "--force", str(artifact), hang=RESTORE_MARK[backend_name])
    harness.kill_when_ready(process, signum)
    harness.assert_nothing_left()
    db.dispose()
    assert checksums(db) == before
    left = set(staging_databases(db)) - staging
    finished = harness.run("restore", "--force", str(artifact))
    assert finished.returncode == 0, finished.stderr
    assert b"into " + str(db.url.database).encode() in finished.stdout
    assert left.isdisjoint(staging_databases(db))
    assert checksums(db)["notes"][0] == 60


def scalar(db: Database, query: TextClause) -> object:
    """One value, read in a new transaction (pg_stat_activity is a snapshot per
    transaction)."""
    with db.engine.connect() as connection:
        return connection.execute(query).scalar()


def staging_databases(db: Database) -> list[str]:
    if db.engine.dialect.name != "mysql":
        return []
    with db.engine.connect() as connection:
        query = text("SHOW DATABASES LIKE :pattern")
        names = connection.execute(query, {"pattern": "storelayer\\_restore\\_%"})
        return [str(n) for n in names.scalars()]


def test_restore_killed_while_the_tool_waits_never_commits(
    secret_url: tuple[Database, URL, str], backend_name: str, tmp_path: Path
) -> None:
    """The real pg_restore, blocked by a lock this test holds, outlives a SIGKILLed
    storelayer only if it was not killed with it: released, it would commit."""
    if backend_name != "postgresql":
        pytest.skip("the restore tool writes the target itself only on PostgreSQL")
    db, url, secret = secret_url
    harness = Harness(tmp_path, backend_name, url, secret)
    artifact = tmp_path / "a.storelayer"
    assert harness.run("backup", str(artifact)).returncode == 0
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM notes WHERE id > 10"))
    before = checksums(db)
    blocker = db.engine.connect()
    blocker.execute(text("LOCK TABLE notes IN ACCESS SHARE MODE"))
    process = harness.start("restore", "--force", str(artifact))
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    _wait_for(lambda: bool(scalar(db, waiting)), "pg_restore to block")
    process.kill()
    process.communicate(timeout=SETTLE)
    harness.assert_nothing_left()
    blocker.rollback()
    blocker.close()
    sessions = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'pg_restore'"
    )
    _wait_for(lambda: not scalar(db, sessions), "pg_restore's session to end")
    db.dispose()
    assert checksums(db) == before

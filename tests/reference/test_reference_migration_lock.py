"""Two processes run ``storelayer migrate upgrade`` at the same moment: one migrates,
the other waits for the migration lock and then finds nothing to do.

Real subprocesses (``python -m storelayer``) on real servers; SQLite too. The slow
migration's body holds on until the test has seen the other process report that it is
waiting, so the two overlap however slowly a loaded machine starts them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import URL

from storelayer.backend import Backend

BODY_STARTED = "slow migration body started"
WAITING = "waiting for the migration lock"
#: Created by the test when both processes are where it wants them.
RELEASE = "release"
#: Seconds anything here may take on a loaded machine.
PATIENCE = 120

SLOW_ENV = """
from storelayer.migrations import run_migrations

run_migrations(None)
"""

SLOW_VERSION = f'''
"""A migration that records each run of its body, slowly."""
import os
import sys
import time

import sqlalchemy as sa
from alembic import op

revision = "s1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "migration_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pid", sa.Integer, nullable=False),
    )
    runs = sa.table("migration_runs", sa.column("pid"))
    op.execute(runs.insert().values(pid=os.getpid()))
    print("{BODY_STARTED}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + {PATIENCE}
    while not os.path.exists("{RELEASE}") and time.monotonic() < deadline:
        time.sleep(0.05)


def downgrade():
    op.drop_table("migration_runs")
'''


def slow_migrations(root: Path) -> Path:
    directory = root / "slow_migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(textwrap.dedent(SLOW_ENV))
    (directory / "versions" / "s1_slow.py").write_text(textwrap.dedent(SLOW_VERSION))
    return directory


def start(args: list[str], env: dict[str, str], cwd: Path, name: str) -> dict[str, Any]:
    """Start ``python -m storelayer --json migrate ARGS``; stderr goes to a file."""
    err = cwd / f"{name}.err"
    command = [sys.executable, "-m", "storelayer", "--json", "migrate", *args]
    with err.open("w") as sink:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                   stderr=sink, text=True)
    return {"process": process, "err_path": err, "pid": process.pid}


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def finish(run: dict[str, Any]) -> dict[str, Any]:
    out, _ = run["process"].communicate(timeout=PATIENCE)
    run["err"] = run["err_path"].read_text()
    assert run["process"].returncode == 0, run["err"]
    run["applied"] = json.loads(out)["applied"]
    return run


def run_together(args: list[str], env: dict[str, str], cwd: Path,
                 *, hold: bool = False) -> list[dict[str, Any]]:
    """Start two processes at once and wait for both; with ``hold``, release the slow
    migration only once one process runs its body and the other waits for the lock."""
    runs = [start(args, env, cwd, name) for name in ("first", "second")]

    def stderr() -> list[str]:
        return [run["err_path"].read_text() for run in runs]

    try:
        if hold:
            wait_until(lambda: any(BODY_STARTED in e for e in stderr()), "a migration body")
            wait_until(lambda: any(WAITING in e for e in stderr()), "the other to wait")
            (cwd / RELEASE).touch()
        return [finish(run) for run in runs]
    finally:
        for run in runs:
            if run["process"].poll() is None:
                run["process"].kill()
                run["process"].wait()


def query(url: URL, sql: str) -> list[Any]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def test_one_process_migrates_the_other_waits_then_finds_nothing_to_do(
    fresh_url: URL, backend: Backend, child_env: Callable[[URL], dict[str, str]],
    tmp_path: Path,
) -> None:
    directory = slow_migrations(tmp_path)
    results = run_together(["--directory", str(directory), "upgrade"], child_env(fresh_url),
                           tmp_path, hold=True)

    migrator, waiter = sorted(results, key=lambda r: len(r["applied"]), reverse=True)
    assert [step["revision"] for step in migrator["applied"]] == ["s1"]
    assert waiter["applied"] == []  # it found nothing to do
    assert BODY_STARTED in migrator["err"]
    assert BODY_STARTED not in waiter["err"]  # the body ran once, in the migrator
    assert WAITING in waiter["err"]  # and the other one waited
    assert WAITING not in migrator["err"]
    runs = query(fresh_url, "SELECT pid FROM migration_runs")
    assert [row.pid for row in runs] == [migrator["pid"]]
    assert query(fresh_url, "SELECT version_num FROM alembic_version")[0][0] == "s1"


def test_two_processes_upgrading_the_reference_schema_at_once(
    fresh_url: URL, child_env: Callable[[URL], dict[str, str]], tmp_path: Path
) -> None:
    results = run_together(["upgrade"], child_env(fresh_url), tmp_path)
    assert sorted(len(r["applied"]) for r in results) == [0, 2]
    assert query(fresh_url, "SELECT version_num FROM alembic_version")[0][0] == "0002"


@pytest.mark.requires("server")
def test_the_servers_lock_is_per_database(
    fresh_url: URL, backend: Backend, storelayer_provisioner: Any,
    child_env: Callable[[URL], dict[str, str]], tmp_path: Path,
) -> None:
    """Migrations of two databases on one server do not wait for each other (MySQL's
    user locks are server-wide: the lock name includes the database)."""
    from storelayer.testing import provision_or_skip

    other = provision_or_skip(storelayer_provisioner, backend)
    directory = slow_migrations(tmp_path)
    (tmp_path / RELEASE).touch()  # each body runs straight through
    command = [sys.executable, "-m", "storelayer", "migrate", "--directory", str(directory),
               "upgrade"]
    processes = [subprocess.Popen(command, env=child_env(url), cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for url in (fresh_url, other)]
    errors = [process.communicate(timeout=PATIENCE)[1] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], errors
    assert all(BODY_STARTED in err and WAITING not in err for err in errors)

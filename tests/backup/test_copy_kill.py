"""``storelayer copy`` killed (SIGTERM, SIGKILL) at its start (schema created, no row
yet), in the middle of a table and while it verifies, as a real process on every
backend: after SIGTERM the target is as it was and the one-line error says what was
undone; after SIGKILL nothing was committed, and ``copy --prune-stale`` (or the next
copy) drops the tables the killed copy created."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sample_tables import fill_sample
from sqlalchemy import MetaData, func, select

import storelayer
from storelayer import Database
from storelayer.backup.counts import table_names
from storelayer.cli import cli

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")

#: The storelayer CLI with a hang at ``stage``: it touches ``ready`` and sleeps there.
DRIVER = """
import sys, time, pathlib
stage, ready = sys.argv[1], pathlib.Path(sys.argv[2])

def hang():
    ready.touch()
    time.sleep(600)

from storelayer.copy import rows, run
if stage == "start":
    fill = run.fill
    def hang_then_fill(*args, **kwargs):
        hang()
        return fill(*args, **kwargs)
    run.fill = hang_then_fill
elif stage == "mid-table":
    insert = rows._copy_table
    def hang_in_second_table(reader, writer, target, table, batch, advance, *rest):
        def counted(n):
            advance(n)
            if n and seen.append(n) is None and len(seen) == 2:
                hang()
        return insert(reader, writer, target, table, batch, counted, *rest)
    seen = []
    rows._copy_table = hang_in_second_table
elif stage == "verify":
    verify = rows.verify
    def hang_then_verify(*args, **kwargs):
        hang()
        return verify(*args, **kwargs)
    rows.verify = hang_then_verify
from storelayer.cli import main
sys.argv = ["storelayer", *sys.argv[3:]]
main()
"""
STAGES = ("start", "mid-table", "verify")
#: Seconds the copy gets to reach its hang, and a killed process to go.
SETTLE = 120.0


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _run_until(stage: str, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    ready = tmp_path / f"ready-{stage}"
    ready.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = subprocess.Popen(
        [sys.executable, "-c", DRIVER, stage, str(ready), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    _wait_for(lambda: ready.exists() or process.poll() is not None, f"the {stage} hang")
    assert process.poll() is None, process.communicate()
    return process


def _storelayer(*args: str) -> Result:
    """The next command, run in this process (what matters is the killed one's)."""
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": None})


def _rows(db: Database) -> dict[str, int]:
    metadata = MetaData()
    metadata.reflect(db.engine)
    with db.engine.connect() as connection:
        return {
            name: int(connection.execute(select(func.count()).select_from(t)).scalar_one())
            for name, t in metadata.tables.items()
        }


def _url(db: Database) -> str:
    return db.url.render_as_string(hide_password=False)


@pytest.fixture
def source(tmp_path: Path) -> str:
    """A SQLite source of two tables (authors, notes) and 65 rows."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    with storelayer.connect(url) as db:
        fill_sample(db)
    return url


@pytest.mark.parametrize("stage", STAGES)
def test_sigterm_undoes_the_copy_and_says_so(
    stage: str, source: str, tmp_path: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    process = _run_until(
        stage, tmp_path, "copy", "--from", source, "--to", _url(target),
        "--batch-size", "10",
    )
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=SETTLE)
    lines = err.decode().strip().splitlines()
    assert process.returncode == 2, err
    assert lines[-1].startswith("storelayer: error: the copy was stopped and undone: the 2 "
                                "tables it created in the target were dropped"), err
    target.dispose()
    assert table_names(target.engine) == []


@pytest.mark.parametrize("stage", STAGES)
def test_after_sigkill_nothing_is_committed_and_leftovers_are_pruned(
    stage: str, source: str, tmp_path: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    process = _run_until(
        stage, tmp_path, "copy", "--from", source, "--to", _url(target),
        "--batch-size", "10",
    )
    process.kill()
    process.communicate(timeout=SETTLE)
    target.dispose()
    assert "storelayer_copy_in_progress" in table_names(target.engine)
    assert set(_rows(target).values()) <= {0, 1}  # the marker's row; no copied row
    pruned = _storelayer("copy", "--to", _url(target), "--prune-stale")
    assert pruned.exit_code == 0, pruned.output
    assert "dropped 2 tables left by a killed copy" in pruned.stderr
    target.dispose()
    assert table_names(target.engine) == []


def test_a_killed_data_only_copy_leaves_the_migrated_tables_empty(
    source: str, tmp_path: Path, new_database: Callable[[], Database]
) -> None:
    target = new_database()
    first = _storelayer("copy", "--from", source, "--to", _url(target))
    assert first.exit_code == 0, first.output
    metadata = MetaData()
    metadata.reflect(target.engine)
    with target.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())  # notes, then authors
    process = _run_until(
        "mid-table", tmp_path, "copy", "--data-only", "--from", source,
        "--to", _url(target), "--batch-size", "10",
    )
    process.kill()
    process.communicate(timeout=SETTLE)
    target.dispose()
    assert set(_rows(target).values()) == {0}
    again = _storelayer("copy", "--data-only", "--from", source,
                        "--to", _url(target))
    assert again.exit_code == 0, again.output
    assert sum(_rows(target).values()) == 65

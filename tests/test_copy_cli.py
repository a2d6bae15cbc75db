"""``storelayer copy`` on the command line: where the schema comes from (reference
revision, --app models, --data-only), --json output untouched by progress, a rich
progress bar on a terminal with status lines above it, nothing of it off a terminal."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import storelayer
from copy_datasets import fill_all_types, fill_reference
from storelayer.backup.counts import table_names
from storelayer.cli import cli
from storelayer.cli.copy import CopyDisplay
from storelayer.migrations import MigrationManager

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": None})


@pytest.fixture
def reference_source(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    with storelayer.connect(url) as db:
        fill_reference(db.engine)
    return url


def test_json_is_one_document_and_stderr_stays_quiet(
    reference_source: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = run("--json", "copy", "--from", reference_source, "--to", target)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["rows"] == 49 and document["schema"].startswith("migrations in ")
    assert result.stderr == ""
    with MigrationManager(target) as manager:
        assert manager.check() == []


def test_off_a_terminal_status_lines_but_no_bar(reference_source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = run("copy", "--from", reference_source, "--to", target, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "row counts and checksums match" in result.stdout
    lines = result.stderr.splitlines()
    assert "storelayer: copying users (5 rows)" in lines
    assert all(line.startswith("storelayer: ") for line in lines)
    assert "━" not in result.stderr and "\r" not in result.stderr


def test_on_a_terminal_lines_print_above_the_bar() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with CopyDisplay(quiet=False, console=console).shown() as display:
        display.progress(0, 40)
        display.say("copying users (5 rows)")
        display.progress(20, 40)
        display.say("copying projects (4 rows)")
        display.progress(40, 40)
    text = ANSI.sub("", screen.getvalue())
    assert "storelayer: copying users (5 rows)\n" in text
    assert "storelayer: copying projects (4 rows)\n" in text
    for line in text.replace("\r", "\n").splitlines():
        if "storelayer:" in line:  # a status line never shares its line with the bar
            assert "copying rows" not in line and "━" not in line, line
    assert "20/40" in text or "40/40" in text


def test_app_models_make_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    source = f"sqlite:///{tmp_path / 'types.db'}"
    with storelayer.connect(source) as db:
        fill_all_types(db.engine)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = run("--json", "copy", "--from", source, "--to", target,
                 "--app", "copy_datasets:AllTypesBase")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema"] == "the application's models"


def test_data_only_into_a_migrated_target(reference_source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with MigrationManager(target) as manager:
        manager.upgrade()
    result = run("--json", "copy", "--data-only", "--from", reference_source, "--to", target)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 49
    again = run("copy", "--data-only", "--from", reference_source, "--to", target)
    assert again.exit_code == 2
    assert "already have rows" in again.stderr and "nothing was changed" in again.stderr


def test_refusals_are_one_line(reference_source: str, tmp_path: Path) -> None:
    same = run("copy", "--from", reference_source, "--to", reference_source)
    assert same.exit_code == 2 and "the same database" in same.stderr
    missing = run("copy", "--to", f"sqlite:///{tmp_path / 'x.db'}")
    assert missing.exit_code == 2 and "--from" in missing.stderr
    clean = run("copy", "--to", f"sqlite:///{tmp_path / 'x.db'}", "--prune-stale")
    assert clean.exit_code == 0 and "no leftovers" in clean.stderr
    assert table_names(storelayer.connect(f"sqlite:///{tmp_path / 'x.db'}").engine) == []


def test_data_only_needs_the_same_revision(reference_source: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    with MigrationManager(target) as manager:
        manager.upgrade("0001")
    result = run("copy", "--data-only", "--from", reference_source, "--to", target)
    assert result.exit_code == 2
    assert "the source is at revision 0002 but the target at 0001" in result.stderr


def test_a_copy_without_a_revision_loads_no_alembic(tmp_path: Path) -> None:
    # Alembic, the migrations and the reference models cost a third of a second of the
    # command's start: a copy of tables without a revision imports none of them.
    source, target = tmp_path / "plain.db", tmp_path / "copied.db"
    with storelayer.connect(f"sqlite:///{source}") as db, db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)")
        connection.exec_driver_sql("INSERT INTO item VALUES (1, 'a')")
    script = (
        "import sys\n"
        "from storelayer.cli import cli\n"
        f"cli.main(['copy', '--from', 'sqlite:///{source}', '--to', 'sqlite:///{target}',"
        " '--json'], standalone_mode=False)\n"
        "loaded = [m for m in ('alembic', 'storelayer.migrations', 'storelayer.reference')"
        " if m in sys.modules]\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={**os.environ, "DATABASE_URL": ""},
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
    with storelayer.connect(f"sqlite:///{target}") as copied:
        assert table_names(copied.engine) == ["item"]


def test_no_verify_checks_counts_only_and_copies_the_same_rows(
    reference_source: str, tmp_path: Path
) -> None:
    checked, counted = (f"sqlite:///{tmp_path / name}" for name in ("checked.db", "counted.db"))
    full = json.loads(run("--json", "copy", "--from", reference_source, "--to", checked).stdout)
    result = run("--json", "copy", "--no-verify", "--from", reference_source, "--to", counted)
    assert result.exit_code == 0, result.output
    fast = json.loads(result.stdout)
    assert {n: t["rows"] for n, t in fast["tables"].items()} == {
        n: t["rows"] for n, t in full["tables"].items()
    }
    assert all(t["checksum"] is None for t in fast["tables"].values())
    assert all(t["checksum"] for t in full["tables"].values())
    said = run("copy", "--no-verify", "--from", reference_source, "--to",
               f"sqlite:///{tmp_path / 'said.db'}").stdout  # fmt: skip
    assert "row counts match (--no-verify)" in said and "checksums match" not in said
    with storelayer.connect(checked) as a, storelayer.connect(counted) as b:
        for name in full["tables"]:
            query = f'SELECT * FROM "{name}" ORDER BY 1'
            with a.engine.connect() as ca, b.engine.connect() as cb:
                assert ca.exec_driver_sql(query).all() == cb.exec_driver_sql(query).all()


def test_a_count_that_differs_fails_the_copy(tmp_path: Path) -> None:
    from sqlalchemy import Column, Integer, MetaData, Table, create_engine

    from storelayer.backup.counts import TableChecksum
    from storelayer.copy.rows import verify_counts
    from storelayer.errors import BackupError

    tables = MetaData()
    Table("things", tables, Column("id", Integer, primary_key=True))
    engine = create_engine(f"sqlite:///{tmp_path / 'counts.db'}")
    tables.create_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO things (id) VALUES (1), (2)")
        expected = {"things": TableChecksum()}
        expected["things"].rows = 2
        verify_counts(connection, tables, expected)  # as many: no error
        expected["things"].rows = 3
        with pytest.raises(BackupError, match="things: 2 rows, source 3 rows"):
            verify_counts(connection, tables, expected)
    engine.dispose()

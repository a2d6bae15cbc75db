"""``storelayer migrate`` through click's CliRunner, on every backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import URL

from storelayer.cli import cli
from storelayer.database import Database

CLEAN_ENV: dict[str, str | None] = dict.fromkeys(("DATABASE_URL", "STORELAYER_BACKEND"))


def migrate(url: URL, *args: str) -> Result:
    plain = url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--url", plain, "migrate", *args], env=CLEAN_ENV)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_upgrade_current_history(fresh_url: URL) -> None:
    assert migrate(fresh_url, "current").stdout.startswith("base (no migration applied)")
    first = migrate(fresh_url, "upgrade")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        "upgraded 0001: The reference schema.",
        "upgraded 0002: users.display_name: what the platform shows for a user.",
        "the database is at 0002",
    ]
    again = migrate(fresh_url, "upgrade")
    assert again.stdout == "nothing to do: the database is at 0002\n"
    assert migrate(fresh_url, "current").stdout == "0002 (head)\n"
    header, newest, oldest = migrate(fresh_url, "history").stdout.splitlines()
    assert header.split() == ["REVISION", "REVISES", "STATE", "MESSAGE"]
    assert newest.split()[:4] == ["0002", "0001", "head,", "current"]
    assert oldest.split()[:2] == ["0001", "base"]


def test_json_output(fresh_url: URL) -> None:
    upgraded = as_json(migrate(fresh_url, "upgrade", "--json"))
    assert [s["revision"] for s in upgraded["applied"]] == ["0001", "0002"]
    assert upgraded["current"] == ["0002"]
    current = as_json(migrate(fresh_url, "--json", "current"))
    assert (current["current"], current["heads"], current["up_to_date"]) == (
        ["0002"], ["0002"], True)
    history = as_json(migrate(fresh_url, "history", "--json"))
    assert [h["revision"] for h in history] == ["0002", "0001"]
    assert as_json(migrate(fresh_url, "check", "--json")) == {
        "clean": True, "differences": [], "current": ["0002"]}


def test_downgrade_relative_and_to_base_then_stamp(fresh_url: URL) -> None:
    migrate(fresh_url, "upgrade")
    one = migrate(fresh_url, "downgrade", "-1")
    assert one.exit_code == 0, one.output
    assert one.stdout.splitlines()[-1] == "the database is at 0001"
    assert "run 'migrate upgrade'" in migrate(fresh_url, "current").stdout
    base = migrate(fresh_url, "downgrade", "base")
    assert base.stdout.splitlines()[-1] == "the database is at base (no migration applied)"
    stamped = migrate(fresh_url, "stamp", "0001")
    assert stamped.stdout.splitlines()[0].startswith("stamped 0001")


def test_check_exits_1_when_models_and_migrations_disagree(
    fresh_url: URL, fresh_db: Database
) -> None:
    migrate(fresh_url, "upgrade")
    clean = migrate(fresh_url, "check")
    assert (clean.exit_code, clean.stdout) == (
        0, "the models and the migrations agree (database at 0002)\n")
    with fresh_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE projects ADD COLUMN archived INTEGER"))
    drift = migrate(fresh_url, "check")
    assert drift.exit_code == 1
    assert "- column projects.archived is in the database but not in the models" in drift.stdout
    assert "1 difference(s)" in drift.stdout
    document = json.loads(migrate(fresh_url, "--json", "check").stdout)
    assert document["clean"] is False


def test_errors_are_one_line_with_exit_2(fresh_url: URL) -> None:
    for args in (["upgrade", "nosuch"], ["check"], ["downgrade"]):
        result = migrate(fresh_url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == ""
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("storelayer: error:")


def test_revision_in_a_directory_of_ones_own(fresh_url: URL, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(
        "from storelayer.migrations import run_migrations\nrun_migrations(None)\n")
    reference = Path(__file__).resolve().parents[2] / "alembic" / "script.py.mako"
    (directory / "script.py.mako").write_text(reference.read_text())
    written = as_json(migrate(fresh_url, "-d", str(directory), "revision", "-m", "first",
                              "--empty", "--rev-id", "a1", "--json"))["written"]
    assert [Path(p).name for p in written] == ["a1_first.py"]
    upgraded = migrate(fresh_url, "--directory", str(directory), "upgrade")
    assert "upgraded a1: first" in upgraded.stdout


def test_the_demo_runs_twice_on_every_backend(fresh_url: URL) -> None:
    plain = fresh_url.render_as_string(hide_password=False)
    for _ in range(2):
        result = CliRunner().invoke(cli, ["--url", plain, "--json", "demo"], env=CLEAN_ENV)
        assert result.exit_code == 0, result.output
        steps = json.loads(result.stdout)["steps"]
        assert steps["commands"] == {"ran": 12, "failed": 2}
        assert steps["aggregate"]["min"] == 700.0
        assert steps["aggregate"]["percentiles"]["p50"] == 2750
        assert steps["cache"]["hit"] == {"commands": 12}

"""The sample application (examples/taskboard) migrated from an empty directory with the
documented commands, on every backend, in a database that also holds the reference
schema; and the rollback fixtures it tests with really roll back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import URL

from storelayer.backend import Backend
from storelayer.database import Database, connect
from storelayer.testing import Provisioner, provision_or_skip, rolled_back

EXAMPLE = Path(__file__).parents[1] / "examples" / "taskboard"
APP_TABLES = {"tb_projects", "tb_tasks", "tb_comments"}


def storelayer(workdir: Path, url: URL, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script, run the way a user runs it: from the project's directory,
    nothing on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "storelayer", *args], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_documented_commands_migrate_the_example_from_an_empty_directory(
    backend: Backend, storelayer_provisioner: Provisioner, tmp_path: Path
) -> None:
    url = provision_or_skip(storelayer_provisioner, backend)
    shutil.copytree(EXAMPLE / "taskboard", tmp_path / "taskboard")
    ok(storelayer(tmp_path, url, "migrate", "upgrade"))  # someone else's tables
    with connect(url, backend=backend.name) as db:
        foreign = set(inspect(db.engine).get_table_names())
    assert "alembic_version" in foreign

    ok(storelayer(tmp_path, url, "migrate", "--version-table", "taskboard_versions",
                  "init", "migrations", "--app", "taskboard.models:Base"))
    written = ok(storelayer(tmp_path, url, "migrate", "-d", "migrations", "revision",
                            "-m", "projects, tasks and comments"))
    script = Path(written.split("wrote ", 1)[1].strip()).read_text()
    assert script.count("op.create_table(") == 3
    assert "drop_table" not in script.split("def downgrade")[0]
    assert "upgraded" in ok(storelayer(tmp_path, url, "migrate", "-d", "migrations", "upgrade"))
    assert "agree" in ok(storelayer(tmp_path, url, "migrate", "-d", "migrations", "check"))
    again = ok(storelayer(tmp_path, url, "migrate", "-d", "migrations", "revision", "-m", "none"))
    empty = Path(again.split("wrote ", 1)[1].strip()).read_text()
    assert "op." not in empty  # nothing to do: the reference schema's tables are left alone

    with connect(url, backend=backend.name) as db:
        tables = set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM taskboard_versions")).all()
    assert tables == foreign | APP_TABLES | {"taskboard_versions"}
    assert len(versions) == 1
    reference_head = ok(storelayer(tmp_path, url, "migrate", "current"))
    assert reference_head.endswith("(head)\n")


def test_a_failure_is_one_line_and_exit_2(backend: Backend, storelayer_provisioner: Provisioner,
                                          tmp_path: Path) -> None:
    url = provision_or_skip(storelayer_provisioner, backend)
    result = storelayer(tmp_path, url, "migrate", "-d", str(EXAMPLE / "migrations"), "upgrade")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "No module named 'taskboard'" in result.stderr
    debug = storelayer(tmp_path, url, "--debug", "migrate", "-d", str(EXAMPLE / "migrations"),
                       "upgrade")
    assert "Traceback" in debug.stderr
    assert debug.returncode == 2


def test_rolled_back_undoes_what_code_under_test_committed(migrated_database: Database) -> None:
    from taskboard.models import Project
    from taskboard.service import start_project

    with rolled_back(migrated_database) as db:
        start_project(db, "kept-until-the-end", ["a"])
        with db.read_session() as s:
            assert s.scalars(select(Project.name)).all() == ["kept-until-the-end"]
    with migrated_database.read_session() as s:
        assert s.scalars(select(Project.name)).all() == []


@pytest.fixture(scope="session")
def storelayer_schema():  # type: ignore[no-untyped-def]
    from storelayer.testing import AppSchema

    return AppSchema(migrations=EXAMPLE / "migrations")

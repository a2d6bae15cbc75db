"""``storelayer inspect``, ``dump``/``load`` across backends, and ``--json`` errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.engine import URL

from storelayer.backend import Backend
from storelayer.cli import cli
from storelayer.database import connect
from storelayer.plugins import get_plugin_manager
from storelayer.testing import AppSchema, Provisioner, provision_or_skip

EXAMPLE = Path(__file__).parents[1] / "examples" / "taskboard"
SCHEMA = AppSchema(migrations=EXAMPLE / "migrations")
CLEAN_ENV: dict[str, str | None] = dict.fromkeys(("DATABASE_URL", "STORELAYER_BACKEND"))


def run(url: URL, *args: str, stdin: str | None = None) -> Result:
    plain = url.render_as_string(hide_password=False)
    return CliRunner().invoke(cli, ["--url", plain, *args], env=CLEAN_ENV, input=stdin)


def get_sqlite() -> Backend:
    return get_plugin_manager().backends()["sqlite"]


def taskboard_on(url: URL, backend: str, rows: bool) -> None:
    from taskboard.service import finish, start_project

    with connect(url, backend=backend) as db:
        SCHEMA.apply(db)
        if rows:
            start_project(db, "alpha", ["design", "build"])
            finish(db, 1, "done with ünïcode")


def test_dump_from_sqlite_loads_into_every_backend(
    backend: Backend, storelayer_provisioner: Provisioner, tmp_path: Path
) -> None:
    from taskboard.models import Comment, Project, Task

    source = provision_or_skip(storelayer_provisioner, get_sqlite())
    taskboard_on(source, "sqlite", rows=True)
    dumped = run(source, "dump")
    assert dumped.exit_code == 0, dumped.output
    lines = dumped.stdout.splitlines()
    assert json.loads(lines[0]) == {"format": "storelayer-jsonl", "version": 1}
    assert "taskboard_versions" not in dumped.stdout

    target = provision_or_skip(storelayer_provisioner, backend)
    taskboard_on(target, backend.name, rows=False)
    loaded = run(target, "load", "--json", stdin=dumped.stdout)
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.stdout)["loaded"] == {
        "tb_projects": 1, "tb_tasks": 2, "tb_comments": 1}
    with connect(source) as a, connect(target, backend=backend.name) as b:
        for model in (Project, Task, Comment):
            with a.read_session() as sa_, b.read_session() as sb:
                left = [r.to_dict() for r in sa_.scalars(select(model).order_by(model.id))]
                right = [r.to_dict() for r in sb.scalars(select(model).order_by(model.id))]
            assert left == right
        from taskboard.service import start_project

        assert start_project(b, "beta", []) == 2  # the sequences moved on
    again = run(target, "load", stdin=dumped.stdout)
    assert again.exit_code == 2
    assert "not empty" in again.stderr


def test_inspect_lists_tables_columns_indexes_and_rows(
    backend: Backend, storelayer_provisioner: Provisioner
) -> None:
    url = provision_or_skip(storelayer_provisioner, backend)
    taskboard_on(url, backend.name, rows=True)
    result = run(url, "inspect", "--json")
    assert result.exit_code == 0, result.output
    tables = {t["name"]: t for t in json.loads(result.stdout)["tables"]}
    assert {n: t["rows"] for n, t in tables.items()} == {
        "tb_projects": 1, "tb_tasks": 2, "tb_comments": 1, "taskboard_versions": 1}
    tasks = tables["tb_tasks"]
    assert [c["name"] for c in tasks["columns"] if c["primary_key"]] == ["id"]
    assert {"name": "ix_tb_tasks_project_id_status", "columns": ["project_id", "status"],
            "unique": False} in tasks["indexes"]
    text = run(url, "inspect", "tb_tasks").stdout
    assert "tb_tasks (2 rows)" in text
    assert "index ix_tb_tasks_project_id_status (project_id, status)" in text


def test_json_errors_are_a_json_document_on_stdout(tmp_path: Path) -> None:
    url = URL.create("sqlite", database=str(tmp_path / "x.db"))
    for args in (["--json", "inspect", "nope"], ["migrate", "upgrade", "nope", "--json"]):
        result = run(url, *args)
        assert result.exit_code == 2
        document = json.loads(result.stdout)
        assert document["exit_code"] == 2
        assert document["error"] in result.stderr


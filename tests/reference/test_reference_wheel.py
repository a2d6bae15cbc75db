"""The built wheels, installed into a fresh virtualenv with no checkout in sight, migrate
a new SQLite database: the migrations ship inside the package."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from storelayer.reference import metadata

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the storelayer and storelayer-sqlite wheels, built from this
    checkout as for a release, and their dependencies from the package index."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build the wheels (pip install uv)")
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    release = {**os.environ, "STORELAYER_RELEASE": "1"}  # plain names, as on an index
    run([uv, "build", "--all-packages", "--wheel", "--out-dir", str(dist)], cwd=ROOT, env=release)
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    wheels = [str(next(dist.glob(f"{name}-*.whl"))) for name in ("storelayer", "storelayer_sqlite")]
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--find-links", str(dist), *wheels], cwd=work)
    return venv


def test_storelayer_migrate_upgrade_from_the_installed_wheel(
    installed: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "elsewhere"  # no alembic/ here, and the checkout is not on sys.path
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "STORELAYER_", "PYTHON", "VIRTUAL_ENV", "UV_"))}
    env["DATABASE_URL"] = "sqlite:///new.db"
    storelayer = str(installed / "bin" / "storelayer")

    output = run([storelayer, "migrate", "upgrade"], cwd=workdir, env=env)
    assert "upgraded 0001" in output
    assert "upgraded 0002" in output

    facts = json.loads(run([storelayer, "--json", "migrate", "current"], cwd=workdir, env=env))
    assert facts["up_to_date"] is True
    location = Path(facts["directory"])
    assert location.is_relative_to(installed)  # the packaged migrations, not the checkout
    assert not location.is_relative_to(ROOT)

    with closing(sqlite3.connect(workdir / "new.db")) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert run([storelayer, "migrate", "check"], cwd=workdir, env=env).startswith(
        "the models and the migrations agree")

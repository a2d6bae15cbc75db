"""``pip install .`` and ``pip install -e .`` from a copy of the checkout, in a fresh
virtualenv that has nothing but pip, then ``storelayer demo``: what the README promises a
newcomer. The core must pull the bundled SQLite plugin from the checkout's
``backends/sqlite`` (no index has it). Packages come from the index as for any user
(pip's cache makes the second run cheap); one virtualenv serves both installs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
#: Not part of a clone (outside git): environments, caches, build output, databases.
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", ".dev-tools", "__pycache__", "*.egg-info", "build", "dist", "site",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.db", "*.db-wal", "*.db-shm",
)
#: Generous: pip may have to download on a cold cache, on a loaded machine.
TIMEOUT = 900


def copy_checkout(target: Path) -> None:
    """What a clone holds, with local changes: the files git tracks or would track (no
    build output, environments or databases); the whole tree but those outside git."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=False,
    )
    if listed.returncode != 0:
        shutil.copytree(ROOT, target, ignore=LEFT_OUT, symlinks=True)
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a deleted file is still listed until committed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"{args[:3]}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


def demo_and_plugins(venv: Path, cwd: Path) -> dict[str, object]:
    """Run the demo in ``cwd``; the installed plugins as ``storelayer plugins`` says."""
    storelayer = str(venv / "bin" / "storelayer")
    run([storelayer, "demo"], cwd)
    assert (cwd / "storelayer.db").is_file()
    listed = json.loads(run([storelayer, "plugins", "--json"], cwd).stdout)
    return {p["distribution"]: p for p in listed}


def test_pip_install_from_a_clone_then_the_demo_runs(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    copy_checkout(clone)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]

    run([*pip, "."], clone)
    first = tmp_path / "first"
    first.mkdir()
    plugins = demo_and_plugins(venv, first)
    assert plugins["storelayer-sqlite"]["status"] == "loaded"

    run([*pip, "-e", "."], clone)
    python = str(venv / "bin" / "python")
    where = run([python, "-c", "import storelayer; print(storelayer.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(clone / "src"), where.stdout
    second = tmp_path / "second"
    second.mkdir()
    assert demo_and_plugins(venv, second)["storelayer-sqlite"]["status"] == "loaded"

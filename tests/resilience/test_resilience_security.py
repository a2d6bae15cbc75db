"""What docs/security.md promises, checked: no password in reprs, logs, errors, health
or metrics; no subprocess through a shell; backup files 0600; plugins limited to an
allow-list."""

from __future__ import annotations

import ast
import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import storelayer
from storelayer import PluginManager

ROOT = Path(__file__).parents[2]
SOURCES = [ROOT / "src", *sorted((ROOT / "backends").glob("*/src"))]
SECRET = "Pw0rd-never-shown"

#: Calls that would hand a command line to a shell.
SHELL_CALLS = {"system", "popen", "getoutput", "getstatusoutput"}


def shell_uses(path: Path) -> list[str]:
    """``shell=True`` arguments and shell-running calls in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(f"{path}:{node.lineno}: shell=")
        name = getattr(node.func, "attr", None)
        owner = getattr(getattr(node.func, "value", None), "id", None)
        if name in SHELL_CALLS and owner in {"os", "subprocess"}:
            found.append(f"{path}:{node.lineno}: {owner}.{name}()")
    return found


def test_no_subprocess_goes_through_a_shell() -> None:
    files = [p for source in SOURCES for p in source.rglob("*.py")]
    assert files
    assert [use for path in files for use in shell_uses(path)] == []


@pytest.mark.requires("server")
def test_no_password_in_reprs_logs_errors_health_or_metrics(
    database_url: URL, backend: storelayer.Backend, caplog: pytest.LogCaptureFixture
) -> None:
    url = database_url.set(password=SECRET)  # the shared test servers ignore or accept it
    caplog.set_level(logging.DEBUG)
    try:
        db = storelayer.connect(url, backend=backend.name, echo=True, slow_statement_ms=0)
    except storelayer.ConnectionFailed:
        pytest.skip("this server checks passwords")
    with db:
        try:
            db.run_in_transaction(lambda s: s.execute(text("SELECT 1")))
        except storelayer.ConnectionFailed as error:  # a server that checks passwords
            said = str(error) + repr(error)
        else:
            said = ""
        said += repr(db) + repr(db.engine) + repr(db.settings) + str(db.url)
        said += repr(db.health().to_dict()) + repr(db.metrics())
    assert SECRET not in said + caplog.text


def test_backup_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    with storelayer.connect(f"sqlite:///{tmp_path / 'app.db'}") as db:
        with db.session() as s:
            s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        target = tmp_path / "backup.tar"
        try:
            db.backup(target)
        except NotImplementedError:
            pytest.skip("no backup strategy")
    written = [p for p in tmp_path.iterdir() if p.name.startswith("backup")]
    assert written
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_plugin_loading_can_be_limited_to_an_allow_list() -> None:
    manager = PluginManager(environ={"STORELAYER_LOAD_PLUGINS": "sqlite"})
    status = {info.name: info.status for info in manager.plugins()}
    assert status.get("sqlite") == "loaded"
    assert {name for name, s in status.items() if s == "loaded"} == {"sqlite"}
    with pytest.raises(storelayer.BackendNotFound, match="disabled"):
        manager.resolve("postgresql")

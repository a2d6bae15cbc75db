"""The ``storelayer`` command line, driven through click's CliRunner."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from storelayer import Backend, BackendRegistry, get_plugin_manager, hookimpl
from storelayer.cli import cli

SECRET = "s3cret"
PREFIX = "storelayer: error:"

#: The environment the CLI reads, cleared so a developer's settings cannot leak in.
CLEAN_ENV: dict[str, str | None] = dict.fromkeys((
    "DATABASE_URL", "DATABASE_REPLICA_URLS", "STORELAYER_BACKEND", "STORELAYER_POOL_SIZE",
    "STORELAYER_MAX_OVERFLOW", "STORELAYER_POOL_TIMEOUT", "STORELAYER_POOL_RECYCLE",
    "STORELAYER_ECHO",
))


class FakeServerBackend(Backend):
    """A server backend served by SQLAlchemy's postgresql dialect, so the password and
    unreachable-server tests run before (and besides) the real PostgreSQL plugin."""

    name = "fakeserver"
    schemes = ("fakeserver",)
    dialect = "postgresql"
    default_driver = "psycopg2"


class FakeServerPlugin:
    @hookimpl
    def storelayer_register_backends(self, register: BackendRegistry) -> None:
        register(FakeServerBackend())


@pytest.fixture
def fake_server() -> Iterator[None]:
    pytest.importorskip("psycopg2")
    manager = get_plugin_manager()
    name = manager.register(FakeServerPlugin(), name="test-fakeserver")
    yield
    manager.unregister(name)


def _postgresql_registered() -> bool:
    return "postgresql" in get_plugin_manager().backends()


SERVER_SCHEMES = [
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not _postgresql_registered(), reason="the postgresql backend is not registered yet"
        ),
    ),
    "fakeserver",
]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={**CLEAN_ENV, **(env or {})})


def as_json(result: Result) -> Any:
    """The one JSON document on stdout (fails on anything more or less)."""
    return json.loads(result.stdout)


def assert_one_error_line(result: Result) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PREFIX)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def server_url(scheme: str) -> str:
    """A server on 127.0.0.1 where nothing listens (port 1), with a password."""
    return f"{scheme}://u:{SECRET}@127.0.0.1:1/x"


# -- info ---------------------------------------------------------------------------


def test_info_text_on_sqlite(sqlite_url: str) -> None:
    result = run("--url", sqlite_url, "info")
    assert result.exit_code == 0, result.output
    for expected in ("backend", "storelayer-sqlite", sqlite_url.split("///")[1], "pool",
                     "QueuePool", "features", "returning", "plugins", "DISTRIBUTION"):
        assert expected in result.stdout


def test_info_json_on_sqlite(sqlite_url: str) -> None:
    facts = as_json(run("--url", sqlite_url, "--json", "info"))
    assert facts["backend"]["name"] == "sqlite"
    assert facts["backend"]["distribution"] == "storelayer-sqlite"
    assert facts["backend"]["version"]
    assert facts["url"].startswith("sqlite")
    assert set(facts["pool"]) == {"class", "size", "max_overflow", "timeout", "recycle",
                                  "pre_ping"}
    assert facts["features"]["savepoints"] is True
    assert "sqlite" in {p["name"] for p in facts["plugins"]}


def test_info_shows_the_pool_in_effect(sqlite_url: str) -> None:
    env = {"STORELAYER_POOL_SIZE": "7", "STORELAYER_POOL_RECYCLE": "90"}
    pool = as_json(run("--url", sqlite_url, "info", "--json", env=env))["pool"]
    assert (pool["size"], pool["recycle"]) == (7, 90)


def test_info_reads_database_url_and_url_wins(tmp_path: Path, sqlite_url: str) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'from-env.db'}"}
    assert "from-env.db" in as_json(run("--json", "info", env=env))["url"]
    assert "cli.db" in as_json(run("--url", sqlite_url, "--json", "info", env=env))["url"]


@pytest.mark.usefixtures("fake_server")
@pytest.mark.parametrize("scheme", SERVER_SCHEMES)
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_info_never_shows_the_password_and_does_not_connect(
    scheme: str, json_flag: list[str]
) -> None:
    result = run("--url", server_url(scheme), *json_flag, "info")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.stdout + result.stderr
    assert "***" in result.stdout


# -- plugins ------------------------------------------------------------------------


def test_plugins_json_lists_the_bundled_distributions() -> None:
    result = run("plugins", "--json")
    assert result.exit_code == 0, result.output
    plugins = {p["name"]: p for p in as_json(result)}
    for name in ("sqlite", "postgresql", "mysql"):
        assert plugins[name]["distribution"] == f"storelayer-{name}"
        assert plugins[name]["status"] == "loaded"
        assert set(plugins[name]) == {"name", "distribution", "version", "backends",
                                      "schemes", "status", "error"}
    assert plugins["sqlite"]["backends"] == ["sqlite"]


@pytest.mark.usefixtures("fake_server")
def test_plugins_lists_each_backend_once_after_a_plugin_was_registered() -> None:
    get_plugin_manager().backends()  # the registry is rebuilt with the fake plugin
    plugins = {p["name"]: p for p in as_json(run("plugins", "--json"))}
    assert plugins["sqlite"]["backends"] == ["sqlite"]
    assert plugins["test-fakeserver"]["backends"] == ["fakeserver"]


def test_plugins_text_table() -> None:
    result = run("plugins")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "BACKENDS", "SCHEMES",
                              "STATUS", "ERROR"]
    assert any(row.startswith("sqlite ") and "storelayer-sqlite" in row for row in rows)


# -- health -------------------------------------------------------------------------


def test_health_is_exit_0_on_sqlite(sqlite_url: str) -> None:
    result = run("--url", sqlite_url, "health")
    assert result.exit_code == 0, result.output
    assert "healthy" in result.stdout
    report = as_json(run("--url", sqlite_url, "health", "--json"))
    assert report["healthy"] is True
    assert report["latency_ms"] is not None


@pytest.mark.usefixtures("fake_server")
@pytest.mark.parametrize("scheme", SERVER_SCHEMES)
def test_health_is_exit_1_when_the_server_is_unreachable(scheme: str) -> None:
    result = run("--json", "--url", server_url(scheme), "health")
    assert result.exit_code == 1, result.output
    report = as_json(result)
    assert report["healthy"] is False
    assert "127.0.0.1" in report["error"]
    assert SECRET not in result.stdout + result.stderr


# -- errors -------------------------------------------------------------------------


def test_unknown_scheme_is_exit_2_and_one_line() -> None:
    result = run("--url", f"nosuch://u:{SECRET}@h/x", "info")
    assert_one_error_line(result)
    assert "nosuch" in result.stderr
    assert SECRET not in result.stderr


@pytest.mark.parametrize(
    "args", [["no-such-command"], ["info", "--no-such-option"], ["--url", "not a url", "info"],
             ["--backend", "no_such_backend", "info"]],
)
def test_usage_and_configuration_problems_are_one_line(args: list[str]) -> None:
    assert_one_error_line(run(*args))


def test_debug_shows_the_traceback() -> None:
    result = run("--debug", "--url", "nosuch://h/x", "info")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(PREFIX)


# -- demo ---------------------------------------------------------------------------


def test_demo_runs_again_and_again(sqlite_url: str, tmp_path: Path) -> None:
    first = run("--url", sqlite_url, "demo")
    assert first.exit_code == 0, first.output
    for step in ("migrate: applied 0001", "commands:", "aggregate:", "page:", "cache:"):
        assert step in first.stdout
    second = run("--url", sqlite_url, "--json", "demo")
    assert second.exit_code == 0, second.output
    steps = as_json(second)["steps"]
    assert steps["migrate"] == {"applied": [], "current": ["0002"]}
    assert steps["setup"]["cleared_commands"] == steps["page"]["total"] == 12
    assert steps["aggregate"]["count"] == 12
    assert steps["cache"]["purged"] == 1
    assert steps["health"]["healthy"] is True
    with closing(sqlite3.connect(tmp_path / "cli.db")) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table'")}
    assert {"alembic_version", "users", "projects", "commands"} <= tables


# -- python -m storelayer -----------------------------------------------------------


def test_python_m_storelayer(sqlite_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env["DATABASE_URL"] = sqlite_url
    done = subprocess.run(
        [sys.executable, "-m", "storelayer", "info", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backend"]["name"] == "sqlite"

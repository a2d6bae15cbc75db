"""``db.health()`` and ``storelayer health``: per-engine reports, readiness and exit
codes that tell healthy, degraded and down apart."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import storelayer
from storelayer.cli import cli
from storelayer.cli.health import DEGRADED_EXIT, DOWN_EXIT, HEALTHY_EXIT


def health(url: str, *options: str) -> tuple[int, dict[str, object]]:
    args = ["--url", url, "health", "--json", *options]
    result = CliRunner().invoke(cli, args, env={"DATABASE_URL": ""})
    return result.exit_code, json.loads(result.stdout)


def test_a_healthy_database_exits_0_with_one_report_per_engine(tmp_path: Path) -> None:
    code, report = health(f"sqlite:///{tmp_path / 'ok.db'}")
    assert code == HEALTHY_EXIT and report["status"] == "healthy" and report["ready"] is True
    (primary,) = report["engines"]  # type: ignore[misc]
    assert primary["role"] == "primary" and primary["reachable"] is True
    assert primary["server_version"] and primary["latency_ms"] is not None
    assert {"size", "checked_out", "waits"} <= set(primary["pool"])


def test_migrations_behind_head_make_it_degraded_and_not_ready(tmp_path: Path) -> None:
    code, report = health(f"sqlite:///{tmp_path / 'empty.db'}", "--migrations", "reference")
    assert code == DEGRADED_EXIT and report["status"] == "degraded" and report["ready"] is False
    migrations = report["readiness"]["migrations"]  # type: ignore[index]
    assert migrations["checked"] is True and migrations["at_head"] is False
    assert any("migrations not at head" in p for p in report["problems"])  # type: ignore[union-attr]


def test_an_unreachable_primary_is_down(tmp_path: Path) -> None:
    code, report = health("postgresql://app:pw@127.0.0.1:1/app")
    assert code == DOWN_EXIT and report["status"] == "down" and report["ready"] is False
    assert "pw@" not in json.dumps(report)


def test_health_in_python_matches(tmp_path: Path) -> None:
    with storelayer.connect(f"sqlite:///{tmp_path / 'ok.db'}") as db:
        report = db.health()
    assert report.healthy and report.status == "healthy"
    assert report.engines[0].pool["recycle_source"] == "backend"
    assert storelayer.HealthReport is type(report)

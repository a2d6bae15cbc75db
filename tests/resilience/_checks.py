"""Assertions and figures shared by the resilience tests of each server (those of the
backends, backends/*/tests/test_*_resilience.py, included)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from _processes import freeze, thaw
from _workload import Base, run_under_restarts, stored_rows
from sqlalchemy.engine import URL

import storelayer

#: Where each test appends its measured figures (one JSON object per line), if set.
FIGURES = os.environ.get("STORELAYER_RESILIENCE_FIGURES")


def record(name: str, figures: dict[str, Any]) -> None:
    """Print the figures and append them to ``$STORELAYER_RESILIENCE_FIGURES``."""
    line = json.dumps({"test": name, **figures}, default=str)
    print(line)
    if FIGURES:
        with open(FIGURES, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def assert_nothing_lost_or_doubled(
    db: storelayer.Database, result: dict[str, Any]
) -> dict[str, Any]:
    """Every acknowledged row is stored exactly once and nothing else is stored."""
    tally = result["tally"]
    assert tally.errors == [], tally.errors
    assert result["hung_workers"] == 0
    stored = stored_rows(db)
    for table in ("keyed", "plain"):
        duplicates = [row for row, n in Counter(stored[table]).items() if n > 1]
        assert duplicates == [], f"{table}: duplicated rows {duplicates[:10]}"
        assert set(stored[table]) == tally.acknowledged[table], table
    metrics = db.metrics()["engines"]["primary"]
    return {
        "rows": sum(len(v) for v in stored.values()),
        "retries": metrics["retries"],
        "unknown_commits": tally.unknown_commits,
        "disconnects": metrics["disconnects"],
        "seconds": result["seconds"],
        "restart_seconds": result["restart_seconds"],
    }


def wait_until_healthy(db: storelayer.Database, seconds: float = 15.0) -> storelayer.HealthReport:
    """Poll ``db.health()`` until it is healthy (or the time is up)."""
    deadline = time.monotonic() + seconds
    report = db.health()
    while report.status != "healthy" and time.monotonic() < deadline:
        time.sleep(0.2)
        report = db.health()
    return report


def workload_database(backend_name: str, server_url: URL) -> URL:
    """A database ``resilience`` on ``server_url``, with the workload's tables."""
    created = storelayer.get_plugin_manager().backends()[backend_name].provisioning.create_database(
        server_url, "resilience"
    )
    with storelayer.connect(created) as db:
        Base.metadata.create_all(db.engine)
    return created


def check_restart_under_load(url: URL, restart: Callable[[], None], name: str) -> None:
    """Restarts under load lose and double no row, and were felt (retries) and ridden out."""
    with storelayer.connect(url, pool_size=8, max_overflow=0, connect_timeout=2) as db:
        figures = assert_nothing_lost_or_doubled(db, run_under_restarts(db, restart))
    record(f"{name} restart under load", figures)
    assert figures["rows"] > 0
    assert figures["retries"] > 0


def check_a_hung_server(url: URL, pid: int, name: str) -> None:
    """With the server process ``pid`` stopped (alive, holding its sockets, silent),
    ``health()`` says down within 2 s and touches no pooled connection; once the
    server runs again, healthy."""
    with storelayer.connect(url, pool_size=2, health_timeout=1.0) as db:
        assert wait_until_healthy(db).status == "healthy"
        checkouts = db.metrics()["engines"]["primary"]["pool"]["checkouts"]
        frozen = freeze(pid)
        try:
            timings = []
            for _ in range(2):
                started = time.monotonic()
                report = db.health()
                timings.append(round(time.monotonic() - started, 2))
                assert report.status == "down"
                assert "no answer" in (report.error or "") or "timeout" in (report.error or "")
        finally:
            thaw(frozen)
        after = db.metrics()["engines"]["primary"]["pool"]
        assert after["checkouts"] == checkouts and after["checked_out"] == 0
        assert wait_until_healthy(db).status == "healthy"
    record(f"{name} hung server health", {"health_seconds": timings})
    assert max(timings) < 2.0

"""Assertions and figures shared by the resilience tests of each server."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

from _workload import stored_rows

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

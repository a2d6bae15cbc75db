"""Writers that trust ``run_in_transaction`` while the server goes away: 8 threads insert
rows keyed by (writer, number) into a table without a unique key, through
``run_in_transaction`` with default arguments (no ``idempotent``, no handling of their
own), while the server is restarted (a clean shutdown, then a kill -9). Afterwards every
acknowledged row is stored exactly once, nothing else is stored, and no writer saw an
error: lost connections and lost COMMITs were all resolved underneath.

Only the database's ``RetryPolicy`` is set, a time budget that covers the restart window
(``connect(retry=...)``); the figures are recorded like the other resilience tests'."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from _checks import record
from _workload import PlainRow
from sqlalchemy import delete, select
from sqlalchemy.engine import URL

import storelayer
from storelayer import RetryPolicy, Session

WRITERS = 8
#: Seconds the writers run between two restarts, and after the last.
BETWEEN = 1.0
#: The budget each unit may spend retrying: far more than a restart takes here.
BUDGET = RetryPolicy(max_seconds=180.0)


@dataclass
class Writers:
    """What the writers saw."""

    acknowledged: set[tuple[int, int]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def insert(worker: int, seq: int) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        s.add(PlainRow(worker=worker, seq=seq))

    return unit


def write_until(db: storelayer.Database, worker: int, stop: threading.Event, seen: Writers) -> None:
    """Insert rows 0, 1, 2... until ``stop``; any error ends the writer and is kept."""
    seq = 0
    while not stop.is_set():
        try:
            db.run_in_transaction(insert(worker, seq))
        except Exception as error:  # reaching a writer is what the test forbids
            with seen.lock:
                seen.errors.append(f"writer {worker} row {seq}: {type(error).__name__}: {error}")
            return
        with seen.lock:
            seen.acknowledged.add((worker, seq))
        seq += 1


def run_writers(db: storelayer.Database, restarts: Sequence[Callable[[], None]]) -> dict[str, Any]:
    """Run the writers through ``restarts``; the figures, the writers' view and what
    the database stores."""
    stop, seen = threading.Event(), Writers()
    threads = [
        threading.Thread(target=write_until, args=(db, n, stop, seen)) for n in range(WRITERS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    restart_seconds = []
    for restart in restarts:
        time.sleep(BETWEEN)
        began = time.monotonic()
        restart()
        restart_seconds.append(round(time.monotonic() - began, 2))
    time.sleep(BETWEEN)
    stop.set()
    for thread in threads:
        thread.join((BUDGET.max_seconds or 0) + 60)
    with db.read_session() as s:
        stored = [(r.worker, r.seq) for r in s.execute(select(PlainRow.worker, PlainRow.seq))]
    return {
        "seen": seen,
        "stored": stored,
        "hung": sum(thread.is_alive() for thread in threads),
        "seconds": round(time.monotonic() - started, 2),
        "restart_seconds": restart_seconds,
    }


def check_restarts_reach_no_writer(
    url: URL, restarts: Sequence[Callable[[], None]], name: str
) -> None:
    """Through ``restarts`` of the server behind ``url``: 0 rows lost, 0 duplicated,
    0 errors reaching the writers, and the restarts were felt (retries)."""
    options: dict[str, Any] = {"pool_size": WRITERS, "max_overflow": 0, "connect_timeout": 2}
    with storelayer.connect(url, retry=BUDGET, **options) as db:
        with db.session() as s:
            s.execute(delete(PlainRow))
        result = run_writers(db, restarts)
        metrics = db.metrics()["engines"]["primary"]
    seen: Writers = result["seen"]
    stored: list[tuple[int, int]] = result["stored"]
    duplicated = sorted(row for row, n in Counter(stored).items() if n > 1)
    lost = sorted(seen.acknowledged - set(stored))
    figures = {
        "rows": len(stored),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "errors": len(seen.errors),
        "retries": metrics["retries"],
        "disconnects": metrics["disconnects"],
        "seconds": result["seconds"],
        "restart_seconds": result["restart_seconds"],
    }
    record(f"{name} restarts under default run_in_transaction", figures)
    assert seen.errors == [], seen.errors[:5]
    assert result["hung"] == 0
    assert lost == [], lost[:10]
    assert duplicated == [], duplicated[:10]
    assert set(stored) == seen.acknowledged  # nothing stored that no writer was told of
    assert len(stored) > 0
    assert metrics["retries"] > 0  # the restarts were felt

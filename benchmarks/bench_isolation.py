"""What each isolation level costs, on every backend, side by side in one run.

    uv run python -m benchmarks.bench_isolation [--backend sqlite,postgresql,mysql]
        [--threads 8] [--units 400] [--rows 400] [--repeats 3]

Two workloads through ``run_in_transaction`` (sync API, default retry policy):

* contended counter: ``--threads`` threads share ``--units`` increments of one row;
  "read_committed + for_update" locks the row (the way that was correct before
  isolation levels), the others read it plainly and count on the level;
* uncontended inserts: one thread, ``--rows`` units of one INSERT each.

Each cell is the median of ``--repeats`` rounds (the levels take turns within a round,
after one warm-up round): units per second, retries per unit, and for the counter
whether it ended exact (a lost update shows as "lost n").
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from sqlalchemy import String, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from benchmarks.bench_async import scratch_databases
from storelayer import Session

#: (label, isolation, lock the row with for_update)
LEVELS: tuple[tuple[str, str | None, bool], ...] = (
    ("database default (None)", None, False),
    ("read_committed + for_update", "read_committed", True),
    ("read_committed", "read_committed", False),
    ("repeatable_read", "repeatable_read", False),
    ("serializable (default)", "serializable", False),
)


class Base(DeclarativeBase):
    pass


class Counter(Base):
    __tablename__ = "bench_isolation_counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int]


class Event(Base):
    __tablename__ = "bench_isolation_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


def increment(for_update: bool) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        counter = s.repository(Counter).get_or_raise(1, for_update=for_update)
        counter.value += 1

    return unit


def contended(
    db: storelayer.Database, isolation: str | None, for_update: bool, threads: int, units: int
) -> tuple[float, int, int]:
    """Seconds, retries and the counter's final value for ``units`` increments."""
    with db.session() as s:
        s.merge(Counter(id=1, value=0))
    db.reset_metrics()
    work, start = increment(for_update), threading.Barrier(threads + 1)

    def run(n: int) -> None:
        start.wait()
        for _ in range(n):
            db.run_in_transaction(work, isolation=isolation)

    shares = [units // threads + (i < units % threads) for i in range(threads)]
    workers = [threading.Thread(target=run, args=(n,)) for n in shares]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    took = time.perf_counter() - began
    with db.read_session() as s:
        value = s.repository(Counter).get_or_raise(1).value
    return took, db.metrics()["engines"]["primary"]["retries"], value


def record(name: str) -> Callable[[Session], None]:
    def unit(s: Session) -> None:
        s.add(Event(name=name))

    return unit


def uncontended(
    db: storelayer.Database, isolation: str | None, rows: int
) -> tuple[float, int, int]:
    """Seconds, retries and rows for ``rows`` one-row insert units."""
    with db.session() as s:
        s.execute(delete(Event))
    db.reset_metrics()
    began = time.perf_counter()
    for n in range(rows):
        db.run_in_transaction(record(f"event {n}"), isolation=isolation)
    took = time.perf_counter() - began
    with db.read_session() as s:
        count = s.repository(Event).count()
    return took, db.metrics()["engines"]["primary"]["retries"], count


def measure(url: object, args: argparse.Namespace) -> list[tuple[str, str, str, str, str]]:
    with storelayer.connect(url, slow_statement_ms=60_000) as db:  # type: ignore[arg-type]
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        samples: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
        for round_ in range(args.repeats + 1):
            for label, isolation, for_update in LEVELS:
                runs = {
                    "contended counter": contended(
                        db, isolation, for_update, args.threads, args.units
                    )
                }
                if not for_update:  # nothing to lock in an insert
                    runs["uncontended inserts"] = uncontended(db, isolation, args.rows)
                if round_:  # round 0 warms up
                    for workload, sample in runs.items():
                        samples.setdefault((workload, label), []).append(sample)
        Base.metadata.drop_all(db.engine)
    rows = []
    for (workload, label), kept in samples.items():
        took = statistics.median(r[0] for r in kept)
        units = args.units if workload == "contended counter" else args.rows
        retries = statistics.median(r[1] for r in kept) / units
        lost = units - min(r[2] for r in kept)
        exact = "exact" if lost == 0 else f"lost {lost}"
        exact = exact if workload == "contended counter" else "—"
        rows.append((workload, label, f"{units / took:,.0f}", f"{retries:.2f}", exact))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite,postgresql,mysql")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--units", type=int, default=400)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| backend | workload | isolation | units/s | retries/unit | counter |")
    print("|---|---|---|---:|---:|---|")
    for backend, url in scratch_databases(args.backend, "bench_isolation"):
        for row in sorted(measure(url, args), key=lambda r: r[0]):
            print(f"| {backend} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

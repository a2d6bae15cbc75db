"""What does read routing cost? A primary-key read in ``db.read_session()``, routed to a
replica, against the same read in a session opened on that replica's engine directly
(and in an unrouted storelayer unit of work on that replica).

Starts its own primary with one replica (PostgreSQL streaming replication by default,
MariaDB with ``--backend mysql``), loads a table, then runs ``--rounds`` rounds of
``--reads`` reads per path, the paths taking turns read by read, and reports median and
90th-percentile latency per path and the overhead of routing. Standalone (not part of
``python -m benchmarks``)::

    uv run python benchmarks/bench_replica_routing.py
    uv run python benchmarks/bench_replica_routing.py --backend mysql --rounds 15 --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import storelayer
from storelayer.routing import RoutingPolicy
from storelayer.session import Session

ROWS = 10_000


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_routing_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


def start_cluster(backend: str) -> AbstractContextManager[Any]:
    """A primary with one replica of ``backend``."""
    if backend == "postgresql":
        from storelayer_postgresql.testing import PostgreSQLReplicaSet

        return PostgreSQLReplicaSet(replicas=1)
    from storelayer_mysql.testing import MariaDBReplicaSet

    return MariaDBReplicaSet(replicas=1)


def timed(read: Callable[[int], object], ids: list[int]) -> tuple[float, float]:
    """Wall-clock and CPU seconds per read over ``ids``."""
    started, cpu = time.perf_counter(), time.process_time()
    for key in ids:
        read(key)
    return (time.perf_counter() - started) / len(ids), (time.process_time() - cpu) / len(ids)


def run(backend: str, reads: int, rounds: int) -> dict[str, Any]:
    """Load the table, then interleave the three paths read by read; report the median
    and 90th percentile latency of each and the overhead of routing against the others:

    - ``engine``: a plain SQLAlchemy session on the replica's engine (``db.engines()``);
    - ``unrouted``: ``read_session()`` of a database whose primary URL is the replica,
      i.e. storelayer's unit of work on that server without routing;
    - ``routed``: ``read_session()`` of the database with the replica configured.
    """
    with start_cluster(backend) as cluster:
        cluster.create_database("bench_routing")
        primary_url, replica_urls = cluster.database_urls("bench_routing")
        db = storelayer.connect(primary_url, replicas=replica_urls, routing=RoutingPolicy())
        Base.metadata.create_all(db.engine)
        with db.session() as s:
            rows = ({"id": i, "name": f"item {i}"} for i in range(1, ROWS + 1))
            s.repository(Item).bulk_create(rows)
        cluster.wait_replayed()
        direct_db = storelayer.connect(replica_urls[0])
        engine = sessionmaker(db.engines()["replica:0"], class_=Session, expire_on_commit=False)

        def engine_read(key: int) -> object:
            with engine() as s, s.begin():
                return s.execute(select(Item).where(Item.id == key)).scalar_one()

        def unrouted_read(key: int) -> object:
            with direct_db.read_session() as s:
                return s.execute(select(Item).where(Item.id == key)).scalar_one()

        def routed_read(key: int) -> object:
            with db.read_session() as s:
                return s.execute(select(Item).where(Item.id == key)).scalar_one()

        paths = {"engine": engine_read, "unrouted": unrouted_read, "routed": routed_read}
        rng = random.Random(7)
        for read in paths.values():  # warm-up: pools, statement caches, lag sample
            timed(read, [rng.randrange(1, ROWS + 1) for _ in range(reads)])
        latencies, cpu = interleaved(paths, reads, rounds, rng)
        stats = db.routing_stats()
        direct_db.dispose()
        db.dispose()
    medians = {name: statistics.median(values) * 1e6 for name, values in latencies.items()}
    p90 = {name: statistics.quantiles(v, n=10)[-1] * 1e6 for name, v in latencies.items()}
    cpus = {name: statistics.median(values) * 1e6 for name, values in cpu.items()}
    return {
        "backend": backend,
        "reads_per_path": reads * rounds,
        **{f"{name}_median_us": round(value, 1) for name, value in medians.items()},
        **{f"{name}_p90_us": round(value, 1) for name, value in p90.items()},
        **{f"{name}_cpu_us": round(value, 1) for name, value in cpus.items()},
        "overhead_vs_engine_percent": percent(medians["routed"], medians["engine"]),
        "overhead_vs_unrouted_percent": percent(medians["routed"], medians["unrouted"]),
        # Routing's own work, less sensitive to a busy machine than wall-clock ratios:
        # the extra CPU time per routed read, as a share of a direct read's latency.
        "cpu_overhead_vs_engine_percent": round(
            (cpus["routed"] - cpus["engine"]) / medians["engine"] * 100, 2
        ),
        "routed_reads_on_replica": stats.reads.get("replica:0", 0),
        "routed_reads_on_primary": stats.reads.get("primary", 0),
    }


def interleaved(
    paths: dict[str, Callable[[int], object]], reads: int, rounds: int, rng: random.Random
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-read latencies with the paths taking turns read by read (so a slow spell of
    the machine hits each alike), and per-round CPU time per read of each path."""
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for round_number in range(rounds):
        used = dict.fromkeys(names, 0.0)
        for index in range(reads):
            key = rng.randrange(1, ROWS + 1)
            shift = (round_number + index) % len(names)
            for name in names[shift:] + names[:shift]:
                started, cpu_started = time.perf_counter(), time.process_time()
                paths[name](key)
                latencies[name].append(time.perf_counter() - started)
                used[name] += time.process_time() - cpu_started
        for name in names:
            cpu[name].append(used[name] / reads)
    return latencies, cpu


def percent(value: float, baseline: float) -> float:
    """``value`` over ``baseline``, in percent more."""
    return round((value / baseline - 1) * 100, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "mysql"), default="postgresql")
    parser.add_argument("--reads", type=int, default=500, help="reads per round and path")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    result = run(args.backend, args.reads, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['backend']}, median us per read: engine {result['engine_median_us']}, "
            f"unrouted {result['unrouted_median_us']}, routed {result['routed_median_us']}"
            f"\nrouting overhead: {result['overhead_vs_engine_percent']}% vs the replica's "
            f"engine, {result['overhead_vs_unrouted_percent']}% vs storelayer on the replica "
            f"unrouted; routing CPU {result['cpu_overhead_vs_engine_percent']}% of a read "
            f"({result['routed_reads_on_replica']} routed reads on the replica, "
            f"{result['routed_reads_on_primary']} on the primary)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

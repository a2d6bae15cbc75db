"""The cost of one read in its own unit of work, storelayer against SQLAlchemy's own.

    uv run python -m benchmarks.bench_reads [--backend sqlite,postgresql,mysql] [--gets 1000]

Each round runs ``--gets`` primary-key reads per path, each in its own unit, on a
``--gets``-row table; paths run interleaved (A B C, A B C ...), the first round is
dropped. Reported per path: the median time of one read in microseconds with the
fastest and slowest round, and the median (with range) of the per-round ratio
anchor time / path time (higher is better; >= 1.00 costs no more than the anchor).

Anchors: sync paths against SQLAlchemy Core on a default engine of the same URL
(``with engine.connect() as c: c.execute(select(...)).first()``); async paths against
SQLAlchemy's ``AsyncSession.get`` on storelayer's own async engine.

``--clock cpu`` times with ``time.process_time`` (this process's CPU, every thread)
instead of the wall clock: on a machine shared with other work it shows what the code
costs without the waits for a CPU; it leaves out the server's time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import sessionmaker

import storelayer
from benchmarks.bench_async import Base, Item, rows, scratch_databases

SYNC_ANCHOR = "core connect+execute"
ASYNC_ANCHOR = "sqlalchemy AsyncSession.get"


def sync_paths(db: storelayer.Database, ids: list[int]) -> dict[str, Callable[[], Any]]:
    """Sync paths: the anchor, SQLAlchemy's ORM, and storelayer's reads."""
    core = create_engine(db.engine.url)
    table = Item.__table__
    orm = sessionmaker(core, expire_on_commit=False)

    def core_get() -> None:
        for id_ in ids:
            with core.connect() as c:
                c.execute(select(table).where(table.c.id == id_)).first()

    def orm_get() -> None:
        for id_ in ids:
            with orm() as s:
                s.get(Item, id_)

    def unit(**options: Any) -> Callable[[], None]:
        def run() -> None:
            for id_ in ids:
                with db.read_session(**options) as s:
                    s.repository(Item).get(id_)

        return run

    def rows_get() -> None:
        reader = db.rows(Item)
        for id_ in ids:
            reader.get(id_)

    def write_unit_get() -> None:
        for id_ in ids:
            with db.session() as s:
                s.repository(Item).get(id_)

    return {
        SYNC_ANCHOR: core_get,
        "sqlalchemy Session.get": orm_get,
        "read_session() repo.get": unit(),
        "read_session(autocommit=True) repo.get": unit(autocommit=True),
        "session() repo.get": write_unit_get,
        "db.rows(M).get": rows_get,
    }


def async_paths(db: storelayer.AsyncDatabase, ids: list[int]) -> dict[str, Callable[[], Any]]:
    """Async paths: the anchor and storelayer's async reads."""
    plain = async_sessionmaker(db.engine, expire_on_commit=False)

    async def sqlalchemy_get() -> None:
        for id_ in ids:
            async with plain() as s:
                await s.get(Item, id_)

    def unit(**options: Any) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for id_ in ids:
                async with db.read_session(**options) as s:
                    await s.repository(Item).get(id_)

        return run

    async def rows_get() -> None:
        reader = db.rows(Item)
        for id_ in ids:
            await reader.get(id_)

    return {
        ASYNC_ANCHOR: sqlalchemy_get,
        "async read_session() repo.get": unit(),
        "async read_session(autocommit=True) repo.get": unit(autocommit=True),
        "async db.rows(M).get": rows_get,
    }


async def measure(
    url: URL, gets: int, repeats: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Seconds per round of every path (warm-up round dropped)."""
    sync_db = storelayer.connect(url)
    async_db = storelayer.connect_async(url)
    Base.metadata.drop_all(sync_db.engine)
    Base.metadata.create_all(sync_db.engine)
    with sync_db.session() as s:
        s.repository(Item).bulk_create(rows(gets))
    ids = list(range(1, gets + 1))
    paths = {**sync_paths(sync_db, ids), **async_paths(async_db, ids)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats + 1):
        for name, run in paths.items():
            started = clock()
            result = run()
            if asyncio.iscoroutine(result):
                await result
            times[name].append(clock() - started)
    await async_db.dispose()
    Base.metadata.drop_all(sync_db.engine)
    sync_db.dispose()
    return {name: t[1:] for name, t in times.items()}


def table(backend: str, times: dict[str, list[float]], gets: int, clock: str = "wall") -> str:
    """A markdown table: µs per read (median, range) and ratio to the anchor."""
    lines = [
        f"\n{backend}: one get in its own unit ({gets} gets a round, {clock} clock)\n",
        "| path | µs per get, median (range) | anchor / path, median (range) |",
        "|---|---|---|",
    ]
    for name, seconds in times.items():
        anchor = times[ASYNC_ANCHOR if name.startswith(("async", "sqlalchemy A")) else SYNC_ANCHOR]
        ratios = [a / s for a, s in zip(anchor, seconds, strict=True)]
        per_get = [s / gets * 1e6 for s in seconds]
        lines.append(
            f"| {name} | {statistics.median(per_get):.0f} ({min(per_get):.0f}-{max(per_get):.0f})"
            f" | {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite,postgresql,mysql")
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    for backend, url in scratch_databases(args.backend, "bench_reads"):
        times = asyncio.run(measure(url, args.gets, args.repeats, clock))
        print(table(backend, times, args.gets, args.clock))


if __name__ == "__main__":
    main()

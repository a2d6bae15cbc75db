"""What the savepoint around each repository write costs (it is what keeps a unit of
work usable after a caught ``Conflict``), on every backend.

    uv run python -m benchmarks.bench_savepoint [--backend sqlite,postgresql,mysql]
        [--rows 2000] [--repeats 3]

Two workloads, each with the savepoint (as shipped) and without it (a repository whose
writes skip it, as before):

* ``create`` x rows in one unit of work (the savepoint's worst case: two more
  statements, ``SAVEPOINT`` and ``RELEASE``, per one-row ``INSERT``);
* one ``create`` per unit of work (BEGIN, INSERT, COMMIT plus the two).

Each cell is the median of ``--repeats`` rounds: rows per second.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from sqlalchemy import String, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from benchmarks.bench_async import scratch_databases
from storelayer import Database, Repository


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_savepoint_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class NoSavepoint(Repository[Item]):
    """The repository as it was: writes without a savepoint."""

    model = Item
    savepoint_writes = False


def repository(with_savepoint: bool) -> Callable[..., Repository[Item]]:
    return (lambda s: Repository(s, Item)) if with_savepoint else NoSavepoint


def one_unit(db: Database, rows: int, with_savepoint: bool) -> float:
    make = repository(with_savepoint)
    start = time.perf_counter()
    with db.session() as s:
        items = make(s)
        for i in range(rows):
            items.create(name=f"item-{i}")
    return rows / (time.perf_counter() - start)


def unit_per_row(db: Database, rows: int, with_savepoint: bool) -> float:
    make = repository(with_savepoint)
    start = time.perf_counter()
    for i in range(rows):
        with db.session() as s:
            make(s).create(name=f"item-{i}")
    return rows / (time.perf_counter() - start)


WORKLOADS = (("creates in one unit", one_unit), ("unit per create", unit_per_row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite,postgresql,mysql")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| backend | workload | with savepoint | without | cost |")
    print("|---|---|---|---|---|")
    for backend, url in scratch_databases(args.backend, "bench_savepoint"):
        with storelayer.connect(url) as db:
            Base.metadata.create_all(db.engine)
            for label, workload in WORKLOADS:
                rates: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(args.repeats):
                    for flag in (True, False):
                        with db.session() as s:
                            s.execute(delete(Item))
                        rates[flag].append(workload(db, args.rows, flag))
                on, off = statistics.median(rates[True]), statistics.median(rates[False])
                print(f"| {backend} | {label} | {on:,.0f} rows/s | {off:,.0f} rows/s | "
                      f"{(off - on) / off:+.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()

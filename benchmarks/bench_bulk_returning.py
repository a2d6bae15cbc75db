"""What ``bulk_create(returning=True)`` costs over the count-only fast path.

    uv run python -m benchmarks.bench_bulk_returning [--backend sqlite,postgresql,mysql]
        [--rows 20000] [--repeats 3]

Both insert ``--rows`` dicts in one unit of work into an empty table: the fast path
(``bulk_create(rows)``, the backend's bulk insert: COPY on PostgreSQL, multi-row
executemany elsewhere, returns how many) and the ORM path (``bulk_create(rows,
returning=True)``: instances flushed in batches with ``INSERT ... RETURNING`` where the
backend has it, returns the objects with their keys). Each cell is the median of
``--repeats`` rounds after one warm-up round.
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import String, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import storelayer
from benchmarks.bench_async import scratch_databases


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "bench_bulk_returning"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int]


def one_round(db: storelayer.Database, rows: int, returning: bool) -> float:
    with db.session() as s:
        s.execute(delete(Row))
    data = [{"name": f"row {i}", "quantity": i} for i in range(rows)]
    started = time.perf_counter()
    with db.session() as s:
        made = s.repository(Row).bulk_create(data, returning=returning)
    elapsed = time.perf_counter() - started
    assert (len(made) if returning else made) == rows  # type: ignore[arg-type]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite,postgresql,mysql")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| backend | rows | count-only (fast path) | returning=True | ratio |")
    print("|---|---:|---:|---:|---:|")
    for backend, url in scratch_databases(args.backend, "bench_bulk_returning"):
        with storelayer.connect(url) as db:
            Base.metadata.create_all(db.engine)
            medians = {}
            for returning in (False, True):
                one_round(db, args.rows, returning)
                runs = [one_round(db, args.rows, returning) for _ in range(args.repeats)]
                medians[returning] = statistics.median(runs)
            fast, slow = medians[False], medians[True]
            print(f"| {backend} | {args.rows} | {args.rows / fast:,.0f} rows/s | "
                  f"{args.rows / slow:,.0f} rows/s | {slow / fast:.1f}x slower |")


if __name__ == "__main__":
    main()

"""The six benchmarked operations: what state each needs, what it runs, how much work
one run is, and how its result is checked against the workload's expectations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.impl_base import Implementation
from benchmarks.workload import Expected, Sizes, Workload

#: Table states an operation can start from.
EMPTY, BASE, STREAM = "empty", "base", "stream"


@dataclass(frozen=True)
class Operation:
    """One benchmarked operation."""

    name: str
    #: What one unit of "ops/sec" is.
    unit: str
    #: Table state before a run: ``EMPTY``, ``BASE`` (the insert-size data set) or
    #: ``STREAM`` (the stream-size data set).
    state: str
    #: Whether a run changes the table, so the state is rebuilt before every run.
    writes: bool
    #: Units of work in one run.
    units: Callable[[Sizes], int]
    #: The timed call.
    run: Callable[[Implementation, Workload, int], Any]
    #: Whether the run happens in a fresh subprocess (for memory measurement).
    subprocess: bool = False

    def describe(self, sizes: Sizes) -> str:
        """E.g. ``bulk_insert (100000 rows)``."""
        return f"{self.name} ({self.units(sizes)} {self.unit})"


def _insert(impl: Implementation, work: Workload, _batch: int) -> None:
    impl.insert(work.base_rows)


def _get(impl: Implementation, work: Workload, _batch: int) -> Expected:
    return impl.get_by_id(work.get_ids)


def _pages(impl: Implementation, work: Workload, _batch: int) -> Expected:
    return impl.pages(work.page_queries)


def _counts(impl: Implementation, work: Workload, _batch: int) -> int:
    return impl.counts(work.count_queries)


def _upsert(impl: Implementation, work: Workload, _batch: int) -> None:
    impl.upsert(work.upsert_rows)


def _stream(impl: Implementation, work: Workload, batch: int) -> Expected:
    return impl.stream(batch)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("bulk_insert", "rows", EMPTY, True, lambda s: s.insert_rows, _insert),
        Operation("get_by_id", "gets", BASE, False, lambda s: s.gets, _get),
        Operation("filtered_page", "pages", BASE, False, lambda s: s.pages, _pages),
        Operation("filtered_count", "counts", BASE, False, lambda s: s.counts, _counts),
        Operation("upsert", "rows", BASE, True, lambda s: s.upsert_rows, _upsert),
        Operation(
            "stream", "rows", STREAM, False, lambda s: s.stream_rows, _stream, subprocess=True
        ),
    )
}


def expected_result(op: Operation, work: Workload) -> Any:
    """What ``op.run`` must return (None for writes: those are checked on the table)."""
    return {
        "get_by_id": work.expect_gets,
        "filtered_page": work.expect_pages,
        "filtered_count": work.expect_counts,
        "stream": work.expect_stream,
    }.get(op.name)


def expected_table(op: Operation, work: Workload) -> Expected | None:
    """``(rows, sum of quantity)`` the table must hold after a writing run."""
    if op.name == "bulk_insert":
        return work.expect_table
    if op.name == "upsert":
        return work.expect_after_upsert
    return None


def check(op: Operation, work: Workload, result: Any, table: Expected | None) -> str | None:
    """None when the run did the right work, else what was wrong."""
    want = expected_result(op, work)
    if want is not None and result != want:
        return f"returned {result}, expected {want}"
    want_table = expected_table(op, work)
    if want_table is not None and table != want_table:
        return f"table holds {table}, expected {want_table}"
    return None

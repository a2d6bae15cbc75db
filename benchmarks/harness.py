"""The measurement loop: for each operation, rounds of A B C ... (every implementation
once per round, in a fixed order), the table rebuilt before every writing run, each
result checked, warm-up rounds discarded, medians kept."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from benchmarks.impl_base import Implementation, Unavailable, create_implementation
from benchmarks.impl_raw import raw_implementation
from benchmarks.operations import BASE, EMPTY, Operation, check
from benchmarks.schema import reset_table, table_summary, tune_sqlite_connections
from benchmarks.targets import Target
from benchmarks.workload import Expected, Workload, row_chunks

ROOT = Path(__file__).resolve().parent.parent
STREAM_TIMEOUT_SECONDS = 3600


@dataclass
class Measurement:
    """Every sample of one implementation doing one operation on one backend."""

    backend: str
    operation: str
    impl: str
    units: int
    seconds: list[float] = field(default_factory=list)
    rss_growth_kib: list[int] = field(default_factory=list)
    status: str = "ok"  # ok | n/a | error | wrong
    note: str = ""

    @property
    def median(self) -> float | None:
        """Median seconds of the kept samples."""
        return statistics.median(self.seconds) if self.seconds and self.status == "ok" else None

    @property
    def median_rss_kib(self) -> int | None:
        """Median peak RSS growth (streaming only)."""
        return int(statistics.median(self.rss_growth_kib)) if self.rss_growth_kib else None

    def fail(self, status: str, note: str) -> None:
        """Stop measuring this pair; keep why."""
        self.status, self.note = status, " ".join(note.split())[:200]
        self.seconds.clear()
        self.rss_growth_kib.clear()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy with the medians."""
        data = asdict(self)
        data.update(median=self.median, median_rss_kib=self.median_rss_kib)
        return data


Progress = Callable[[str], None]


class BackendRun:
    """All operations on one backend, for the chosen implementations."""

    def __init__(
        self, target: Target, work: Workload, impl_names: Sequence[str], *,
        repeats: int, warmup: int, batch_size: int, progress: Progress,
    ) -> None:
        self.target, self.work, self.impl_names = target, work, list(impl_names)
        self.repeats, self.warmup, self.batch_size = repeats, warmup, batch_size
        self.progress = progress
        self.admin: Engine = create_engine(target.url(), poolclass=NullPool)
        tune_sqlite_connections(self.admin)
        self.loader = raw_implementation(target)
        self.impls: dict[str, Implementation] = {}
        self.unavailable: dict[str, str] = {}
        self.state: str | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open the loader and every implementation; remember which cannot run."""
        self.loader.open()
        for name in self.impl_names:
            try:
                impl = create_implementation(name, self.target)
                impl.open()
            except Unavailable as why:
                self.unavailable[name] = str(why)
            except Exception as error:  # a broken implementation must not stop the run
                self.unavailable[name] = f"cannot open: {type(error).__name__}: {error}"
            else:
                self.impls[name] = impl

    def close(self) -> None:
        """Close every connection this run opened."""
        for impl in self.impls.values():
            impl.close()
        self.loader.close()
        self.admin.dispose()

    # -- table states ------------------------------------------------------------------

    def prepare_state(self, state: str) -> None:
        """Rebuild the table: empty, the base data set, or the stream data set (loaded
        through the raw driver path, in chunks)."""
        reset_table(self.admin)
        if state == BASE:
            self.loader.insert(self.work.base_rows)
        elif state != EMPTY:
            for chunk in row_chunks(self.work.sizes.stream_rows):
                self.loader.insert(chunk)
        self.state = state

    def table(self) -> Expected:
        """``(rows, sum of quantity)`` of the table now."""
        return Expected(*table_summary(self.admin))

    # -- measuring ---------------------------------------------------------------------

    def run_operation(self, op: Operation) -> list[Measurement]:
        """Interleaved rounds of ``op`` over all implementations."""
        units = op.units(self.work.sizes)
        results = {
            name: Measurement(self.target.backend, op.name, name, units)
            for name in self.impl_names
        }
        for name, why in self.unavailable.items():
            results[name].fail("n/a", why)
        if not op.writes:
            self.prepare_state(op.state)
        for round_ in range(self.warmup + self.repeats):
            keep = round_ >= self.warmup
            times = []
            for name, measurement in results.items():
                if measurement.status != "ok":
                    continue
                seconds = self._run_once(op, name, measurement, keep)
                times.append(f"{name} {seconds:.3f}s" if seconds is not None else f"{name} -")
            label = "warm-up" if not keep else f"round {round_ - self.warmup + 1}/{self.repeats}"
            self.progress(f"[{self.target.backend}] {op.name} {label}: {', '.join(times)}")
        return list(results.values())

    def _run_once(
        self, op: Operation, name: str, measurement: Measurement, keep: bool
    ) -> float | None:
        """One timed run, checked; returns its seconds, or None when it failed."""
        if op.writes:
            self.prepare_state(op.state)
        try:
            if op.subprocess:
                seconds, result, rss = self._run_in_subprocess(op, name)
            else:
                seconds, result, rss = self._run_here(op, name)
        except Unavailable as why:
            measurement.fail("n/a", str(why))
            return None
        except Exception as error:
            measurement.fail("error", f"{type(error).__name__}: {error}")
            self._reopen(name)
            return None
        table = self.table() if op.writes else None
        wrong = check(op, self.work, result, table)
        if wrong:
            measurement.fail("wrong", wrong)
            return None
        if keep:
            measurement.seconds.append(seconds)
            if rss is not None:
                measurement.rss_growth_kib.append(rss)
        return seconds

    def _run_here(self, op: Operation, name: str) -> tuple[float, Any, int | None]:
        impl = self.impls[name]
        started = time.perf_counter()
        result = op.run(impl, self.work, self.batch_size)
        return time.perf_counter() - started, result, None

    def _run_in_subprocess(self, op: Operation, name: str) -> tuple[float, Any, int | None]:
        """Run ``op`` in a fresh interpreter (see ``stream_child``) and read its report."""
        spec = {"target": asdict(self.target), "impl": name, "batch_size": self.batch_size}
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.stream_child", json.dumps(spec)],
            cwd=ROOT, capture_output=True, text=True, timeout=STREAM_TIMEOUT_SECONDS,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"child exited {done.returncode}: {tail}")
        report = json.loads(lines[-1])
        if report["status"] == "n/a":
            raise Unavailable(report["note"])
        if report["status"] != "ok":
            raise RuntimeError(report["note"])
        result = Expected(report["rows"], report["checksum"])
        return report["seconds"], result, report["rss_growth_kib"]

    def _reopen(self, name: str) -> None:
        """After an error, give the implementation fresh connections (no open
        transaction left behind to block the next reset)."""
        impl = self.impls[name]
        try:
            impl.close()
            impl.open()
        except Exception as error:
            self.progress(f"[{self.target.backend}] {name}: reopen failed: {error}")

"""Run one implementation's ``stream()`` in this fresh interpreter and print one JSON
line: seconds, rows, checksum and peak RSS growth.

Memory is the resident set size (RSS) high-water mark, not tracemalloc: what streaming
must bound is mostly buffered outside Python's allocator (libpq's client-side result
set, the driver's row buffers, SQLite's page cache), which tracemalloc cannot see, and
tracemalloc slows every allocation, which would distort the time taken in the same run.
A fresh process per run keeps one implementation's heap, caches and imported modules
from polluting another's numbers.

Method: open the implementation and run one small query (imports, connection and
statement caches are set up), read ``VmRSS`` as the baseline, reset the kernel's
high-water mark by writing ``5`` to ``/proc/self/clear_refs``, stream, then read
``VmHWM``. Growth = ``VmHWM - baseline``. Where the reset is impossible (not Linux), the
peak since process start is used, which can only overstate the growth.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from benchmarks.impl_base import Unavailable, create_implementation, prepare_implementations
from benchmarks.targets import Target
from benchmarks.workload import CountQuery

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int | None:
    """A ``VmRSS``/``VmHWM`` line of ``/proc/self/status`` in KiB, if readable."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark to the current RSS; False when impossible."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def rss_kib() -> int:
    """Current RSS in KiB (the peak so far when the current value is unavailable)."""
    return _status_kib("VmRSS") or peak_rss_kib()


def peak_rss_kib() -> int:
    """RSS high-water mark in KiB."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Open, warm up, stream and measure, as described in the module docstring."""
    target = Target(**spec["target"])
    prepare_implementations([spec["impl"]], [target])
    impl = create_implementation(spec["impl"], target)
    impl.open()
    try:
        impl.counts([CountQuery("cat-00", 0)])  # warm-up: connect, compile, cache
        baseline = rss_kib()
        exact = reset_peak_rss()
        started = time.perf_counter()
        result = impl.stream(spec["batch_size"])
        seconds = time.perf_counter() - started
        growth = max(0, peak_rss_kib() - baseline)
    finally:
        impl.close()
    return {
        "status": "ok", "seconds": seconds, "rows": result.rows,
        "checksum": result.checksum, "rss_growth_kib": growth,
        "peak_reset": exact,
    }


def main(argv: list[str]) -> int:
    """Entry point: ``python -m benchmarks.stream_child SPEC_JSON``."""
    warnings.filterwarnings("ignore", message=r".*does \*not\* support Decimal objects")
    spec = json.loads(argv[0])
    try:
        report = measure(spec)
    except Unavailable as why:
        report = {"status": "n/a", "note": str(why)}
    except Exception as error:
        traceback.print_exc()
        report = {"status": "error", "note": f"{type(error).__name__}: {error}"}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

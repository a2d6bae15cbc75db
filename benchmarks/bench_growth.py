"""Costs as the data grows: the benchmark table filled to each size (10k, 100k, 1M rows
by default) on each backend, and at each size:

- a page in the middle of the table by offset (``rows.page``) and by keyset
  (``rows.keyset`` after a cursor at the same place), latency;
- ``count()`` of the whole table, latency;
- streaming every row (``repo.rows.stream``) in a fresh process, once through the sync
  API and once through the async API (``storelayer.connect_async``): seconds and peak
  RSS growth (``benchmarks.stream_child``, the same method as the main suite), the rows
  read checked against the size;
- ``storelayer copy`` of the SQLite table at that size into the server backends, rows
  per second (the whole command, verification included).

Each is reported as the median and min-max of ``--repeats`` timed calls (latencies) or
``--runs`` runs (streams, copies).

Writes ``growth.json`` (rewritten after every measurement, so an interrupted run keeps
what it measured) and one PNG per measure (matplotlib) into ``--out``; with ``--doc``,
replaces the Markdown tables between the ``growth-table`` markers of that file. One
command regenerates docs/performance.md's tables and plots::

    uv run --all-packages --group bench python -m benchmarks.bench_growth \\
        --backend sqlite,postgresql,mysql --sizes 10000,100000,1000000 \\
        --out docs/img --doc docs/performance.md

``--replot`` redraws the plots and tables from ``--out``/growth.json without measuring.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

import storelayer
from benchmarks.schema import BenchItem, reset_table
from benchmarks.summary import replace_block
from benchmarks.targets import create_database, drop_database, make_target
from benchmarks.workload import make_rows

ROOT = Path(__file__).resolve().parent.parent
FILL_BATCH = 50_000
MEASURES = {
    "offset_page_ms": "page of 50 at the middle, by offset (ms)",
    "keyset_page_ms": "page of 50 at the middle, by keyset cursor (ms)",
    "count_ms": "count(*) of the whole table (ms)",
    "stream_seconds": "stream every row, sync API (s)",
    "stream_async_seconds": "stream every row, async API (s)",
    "stream_rss_mib": "stream, sync API: peak RSS growth (MiB)",
    "stream_async_rss_mib": "stream, async API: peak RSS growth (MiB)",
    "copy_rows_per_s": "storelayer copy from SQLite (rows/s)",
}
#: The tables written into the document: (title, [(measure, series label)], number format).
TABLES = [
    ("Page of 50 in the middle of the table, median ms",
     [("offset_page_ms", "offset"), ("keyset_page_ms", "keyset")], "{:,.1f}"),
    ("`count()` of the whole table, median ms", [("count_ms", "")], "{:,.1f}"),
    ("Streaming every row: peak RSS growth, MiB",
     [("stream_rss_mib", "sync"), ("stream_async_rss_mib", "async")], "{:,.2f}"),
    ("Streaming every row: seconds",
     [("stream_seconds", "sync"), ("stream_async_seconds", "async")], "{:,.2f}"),
    ("`storelayer copy` from SQLite, rows per second (whole command)",
     [("copy_rows_per_s", "")], "{:,.0f}"),
]
STREAM_IMPLS = {
    "": "storelayer_rows",
    "_async": "benchmarks.impl_storelayer:AsyncStorelayerRowsImplementation",
}
DOC_BLOCK = re.compile(
    r"(<!-- growth-table:begin -->\n).*?(<!-- growth-table:end -->)", re.DOTALL
)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed_ms(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()  # warm: statement caches, pages in memory
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def fill(db: storelayer.Database, have: int, want: int) -> None:
    while have < want:
        batch = min(FILL_BATCH, want - have)
        with db.session() as s:
            s.repository(BenchItem).bulk_create(make_rows(have, batch))
        have += batch


def cursor_at(db: storelayer.Database, position: int) -> str:
    """A keyset cursor just before the row at ``position`` (ordered by id)."""
    with db.read_session() as s:
        page = s.repository(BenchItem).rows.keyset(limit=1, id__gte=position - 1)
    assert page.next_cursor is not None
    return page.next_cursor


def stream_in_child(target: Any, impl: str, size: int) -> tuple[float, float]:
    """(seconds, peak RSS growth in MiB) of streaming every row in a fresh process."""
    spec = {"target": asdict(target), "impl": impl, "batch_size": 1000}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stream_child", json.dumps(spec)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["status"] != "ok":
        raise RuntimeError(report["note"])
    if report["rows"] != size:
        raise RuntimeError(f"{impl} streamed {report['rows']} rows of {size}")
    return report["seconds"], report["rss_growth_kib"] / 1024


def copy_rate(source: Any, target: Any, rows: int) -> float:
    """Rows per second of ``storelayer copy`` (the whole command) into an empty target."""
    drop_database(target)
    create_database(target)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "storelayer", "copy", "--from", source.storelayer_url(),
         "--to", target.storelayer_url()],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if done.returncode:
        raise RuntimeError(f"storelayer copy exited {done.returncode}: {done.stderr.strip()}")
    return rows / (time.perf_counter() - started)


def summarize(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Each measure's median, and its (min, max) as ``<measure>_range``."""
    found: dict[str, Any] = {}
    for name, values in samples.items():
        found[name] = statistics.median(values)
        found[f"{name}_range"] = [min(values), max(values)]
    return found


def measure(
    db: storelayer.Database, target: Any, size: int, repeats: int, runs: int
) -> dict[str, Any]:
    """Every measure but copy, on ``db`` holding ``size`` rows: ``runs`` fresh-process
    streams per API mode (sync and async in turn), ``repeats`` timed calls per latency."""
    middle = size // 2
    cursor = cursor_at(db, middle)
    reader = db.rows(BenchItem)
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        for mode, impl in STREAM_IMPLS.items():
            seconds, growth = stream_in_child(target, impl, size)
            samples.setdefault(f"stream{mode}_seconds", []).append(seconds)
            samples.setdefault(f"stream{mode}_rss_mib", []).append(growth)
    latencies: dict[str, Callable[[], Any]] = {
        "offset_page_ms": lambda: reader.list(order_by="id", offset=middle, limit=50),
        "keyset_page_ms": lambda: reader.keyset(after=cursor, limit=50),
        "count_ms": reader.count,
    }
    for name, fn in latencies.items():
        samples[name] = timed_ms(fn, repeats)
    return summarize(samples)


def run(
    backends: list[str], sizes: list[int], repeats: int, runs: int, workdir: Path, out: Path
) -> dict[str, Any]:
    targets = {b: make_target(b, workdir, name="storelayer_growth") for b in backends}
    sqlite = targets.get("sqlite") or make_target("sqlite", workdir, name="storelayer_growth")
    copies = {
        b: make_target(b, workdir, name="storelayer_growth_copy") for b in backends if b != "sqlite"
    }
    keys = [*MEASURES, *(f"{m}_range" for m in MEASURES)]
    results: dict[str, Any] = {b: {m: [None] * len(sizes) for m in keys} for b in backends}
    data = {
        "sizes": sizes, "repeats": repeats, "runs": runs, "results": results,
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": load_average(), "load_end": None,
    }
    out.mkdir(parents=True, exist_ok=True)
    dbs = {}
    for name, target in [*targets.items(), ("source", sqlite)]:
        if name == "source" and "sqlite" in targets:
            continue
        drop_database(target)
        create_database(target)
        reset_table(create_engine(target.url()))
        dbs[name] = storelayer.connect(target.storelayer_url())
    filled: dict[str, int] = dict.fromkeys(dbs, 0)
    try:
        for at, size in enumerate(sizes):
            for name, db in dbs.items():
                fill(db, filled[name], size)
                filled[name] = size
            for backend in backends:
                found = results[backend]
                measured = measure(dbs[backend], targets[backend], size, repeats, runs)
                if backend in copies:
                    rates = [copy_rate(sqlite, copies[backend], size) for _ in range(runs)]
                    measured |= summarize({"copy_rows_per_s": rates})
                for key, value in measured.items():
                    found[key][at] = value
                data["load_end"] = load_average()
                (out / "growth.json").write_text(json.dumps(data, indent=1))
                print(backend, size, measured, data["load_end"], flush=True)
    finally:
        for db in dbs.values():
            db.dispose()
        for target in [*targets.values(), *copies.values()]:
            drop_database(target)
    return data


def cell(value: float | None, spread: list[float] | None, number: str) -> str:
    """One table cell: the value, with its (min-max) when measured more than once."""
    if value is None:
        return "-"
    if spread is None:
        return number.format(value)
    low, high = spread
    return f"{number.format(value)} ({number.format(low)}-{number.format(high)})"


def markdown(data: dict[str, Any]) -> str:
    """The tables of docs/performance.md's growth section ("-": not measured)."""
    sizes = data["sizes"]
    lines = [
        f"Median (min-max) of {data['repeats']} calls (latencies, after a warm-up call) or "
        f"{data['runs']} runs (streaming, copy). Run of {data['started']}, load average "
        f"{data['load_start']} at the start and {data['load_end']} at the end (1, 5, 15 min; "
        "2 cores).",
        "",
    ]
    for title, series, number in TABLES:
        lines += [f"**{title}**", "", "| backend | " + " | ".join(f"{s:,}" for s in sizes) + " |"]
        lines.append("|---|" + "---:|" * len(sizes))
        for backend, found in data["results"].items():
            for measure, label in series:
                if all(v is None for v in found[measure]) and measure == "copy_rows_per_s":
                    continue  # copy goes from SQLite to the servers only
                ranges = found.get(f"{measure}_range") or [None] * len(sizes)
                cells = [cell(v, r, number) for v, r in zip(found[measure], ranges, strict=True)]
                name = f"{backend} ({label})" if label else backend
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


SERIES = {m: label for _, series, _ in TABLES for m, label in series}
TITLES = {
    "growth-pages.png": "page of 50 at the middle: offset (solid) vs keyset (dashed), ms",
    "growth-stream.png": "stream every row: peak RSS growth, sync (solid) vs async (dashed)",
}


def plot(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    sizes = data["sizes"]
    panels = [
        ("growth-pages.png", ["offset_page_ms", "keyset_page_ms"], "latency (ms)"),
        ("growth-count.png", ["count_ms"], "latency (ms)"),
        ("growth-stream.png", ["stream_rss_mib", "stream_async_rss_mib"],
         "peak RSS growth (MiB)"),
        ("growth-copy.png", ["copy_rows_per_s"], "rows per second"),
    ]
    for filename, measures, ylabel in panels:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for index, (backend, found) in enumerate(data["results"].items()):
            for measure in measures:
                values = found[measure]
                if all(v is None for v in values):
                    continue
                style = "--" if measure.startswith(("keyset", "stream_async")) else "-"
                label = backend + (f" ({SERIES[measure]})" if len(measures) > 1 else "")
                ranges = found.get(f"{measure}_range") or [None] * len(sizes)
                points = [
                    (s, v, r or [v, v])
                    for s, v, r in zip(sizes, values, ranges, strict=True) if v is not None
                ]
                xs, ys, spreads = zip(*points, strict=True)
                bars = [[y - r[0] for y, r in zip(ys, spreads, strict=True)],
                        [r[1] - y for y, r in zip(ys, spreads, strict=True)]]
                ax.errorbar(xs, ys, yerr=bars, fmt=style, marker="o", color=f"C{index}",
                            capsize=3, label=label)
        if filename == "growth-stream.png":
            ax.axhline(5, color="grey", linestyle=":", label="5 MiB target")
            ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        if filename in ("growth-pages.png", "growth-count.png"):
            ax.set_yscale("log")  # offset and count grow by orders of magnitude
        ax.set_xlabel("rows in the table")
        ax.set_ylabel(ylabel)
        ax.set_title(TITLES.get(filename, MEASURES[measures[0]]), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, handlelength=3)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="sqlite,postgresql,mysql")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per latency")
    p.add_argument("--runs", type=int, default=3, help="streams per mode and copies per size")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--doc", type=Path, help="Markdown file whose growth tables to replace")
    p.add_argument("--replot", action="store_true", help="redraw from --out/growth.json")
    args = p.parse_args(argv)
    if args.replot:
        data = json.loads((args.out / "growth.json").read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="storelayer-growth-") as tmp:
            data = run(
                args.backend.split(","), [int(s) for s in args.sizes.split(",")], args.repeats,
                args.runs, Path(tmp), args.out,
            )
    plot(data, args.out)
    tables = markdown(data)
    if args.doc:
        replace_block(args.doc, DOC_BLOCK, tables)
    print(tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

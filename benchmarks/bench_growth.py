"""Costs as the data grows: the benchmark table filled to each size (10k, 100k, 1M rows
by default) on each backend, and at each size:

- a page in the middle of the table by offset (``rows.page``) and by keyset
  (``rows.keyset`` after a cursor at the same place), median latency;
- ``count()`` of the whole table, median latency;
- streaming every row (``repo.rows.stream``) in a fresh process: seconds and peak RSS
  growth (``benchmarks.stream_child``, the same method as the main suite);
- ``storelayer copy`` of the SQLite table at that size into the server backends, rows
  per second (the whole command, verification included).

Writes a Markdown table and one PNG per measure (matplotlib), used by
docs/performance.md::

    uv run --all-packages --group bench python -m benchmarks.bench_growth \\
        --backend sqlite,postgresql,mysql --sizes 10000,100000,1000000 --out docs/img
"""

from __future__ import annotations

import argparse
import json
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
from benchmarks.targets import create_database, drop_database, make_target
from benchmarks.workload import make_rows

ROOT = Path(__file__).resolve().parent.parent
FILL_BATCH = 50_000
MEASURES = {
    "offset_page_ms": "page of 50 at the middle, by offset (ms)",
    "keyset_page_ms": "page of 50 at the middle, by keyset cursor (ms)",
    "count_ms": "count(*) of the whole table (ms)",
    "stream_seconds": "stream every row (s)",
    "stream_rss_mib": "stream: peak RSS growth (MiB)",
    "copy_rows_per_s": "storelayer copy from SQLite (rows/s)",
}


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm: statement caches, pages in memory
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


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


def stream_in_child(target: Any) -> tuple[float, float]:
    spec = {"target": asdict(target), "impl": "storelayer_rows", "batch_size": 1000}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stream_child", json.dumps(spec)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["status"] != "ok":
        raise RuntimeError(report["note"])
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


def measure(db: storelayer.Database, target: Any, size: int, repeats: int) -> dict[str, Any]:
    """Every measure but copy, on ``db`` holding ``size`` rows."""
    middle = size // 2
    cursor = cursor_at(db, middle)
    reader = db.rows(BenchItem)
    seconds, growth = stream_in_child(target)
    return {
        "offset_page_ms": median_ms(
            lambda: reader.list(order_by="id", offset=middle, limit=50), repeats
        ),
        "keyset_page_ms": median_ms(lambda: reader.keyset(after=cursor, limit=50), repeats),
        "count_ms": median_ms(reader.count, repeats),
        "stream_seconds": seconds,
        "stream_rss_mib": growth,
    }


def run(backends: list[str], sizes: list[int], repeats: int, workdir: Path) -> dict[str, Any]:
    targets = {b: make_target(b, workdir, name="storelayer_growth") for b in backends}
    sqlite = targets.get("sqlite") or make_target("sqlite", workdir, name="storelayer_growth")
    copies = {
        b: make_target(b, workdir, name="storelayer_growth_copy") for b in backends if b != "sqlite"
    }
    results: dict[str, Any] = {b: {m: [] for m in MEASURES} for b in backends}
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
        for size in sizes:
            for name, db in dbs.items():
                fill(db, filled[name], size)
                filled[name] = size
            for backend in backends:
                found = results[backend]
                measured = measure(dbs[backend], targets[backend], size, repeats)
                measured["copy_rows_per_s"] = (
                    copy_rate(sqlite, copies[backend], size) if backend in copies else None
                )
                for key, value in measured.items():
                    found[key].append(value)
                print(backend, size, {m: v[-1] for m, v in found.items()}, flush=True)
    finally:
        for db in dbs.values():
            db.dispose()
        for target in [*targets.values(), *copies.values()]:
            drop_database(target)
    return {"sizes": sizes, "results": results}


def markdown(data: dict[str, Any]) -> str:
    sizes = data["sizes"]
    lines = []
    for measure, title in MEASURES.items():
        lines += [f"**{title}**", "", "| backend | " + " | ".join(f"{s:,}" for s in sizes) + " |"]
        lines.append("|---|" + "---|" * len(sizes))
        for backend, found in data["results"].items():
            cells = ["n/a" if v is None else f"{v:,.2f}" for v in found[measure]]
            lines.append(f"| {backend} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    sizes = data["sizes"]
    panels = [
        ("growth-pages.png", ["offset_page_ms", "keyset_page_ms"], "latency (ms)"),
        ("growth-count.png", ["count_ms"], "latency (ms)"),
        ("growth-stream.png", ["stream_rss_mib"], "peak RSS growth (MiB)"),
        ("growth-copy.png", ["copy_rows_per_s"], "rows per second"),
    ]
    for filename, measures, ylabel in panels:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for index, (backend, found) in enumerate(data["results"].items()):
            for measure in measures:
                values = found[measure]
                if all(v is None for v in values):
                    continue
                style = "--" if measure.startswith("keyset") else "-"
                label = backend + (f" ({measure.split('_')[0]})" if len(measures) > 1 else "")
                ax.plot(sizes, values, style, marker="o", color=f"C{index}", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("rows in the table")
        ax.set_ylabel(ylabel)
        ax.set_title(MEASURES[measures[0]].replace(", by offset", ""), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename, dpi=110)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="sqlite,postgresql,mysql")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="storelayer-growth-") as tmp:
        data = run(
            args.backend.split(","), [int(s) for s in args.sizes.split(",")], args.repeats,
            Path(tmp),
        )
    plot(data, args.out)
    (args.out / "growth.md").write_text(markdown(data))
    (args.out / "growth.json").write_text(json.dumps(data, indent=1))
    print(markdown(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The main suite's results as docs/performance.md shows them: per backend, each
implementation's ratio to the raw driver (median, with the range of the round-by-round
ratios), the path the page recommends against SQLAlchemy Core round by round, and one
PNG of the same ratios (matplotlib). Written by ``python -m benchmarks --doc FILE
--plots DIR``, or again from a saved run without measuring::

    uv run --group bench python -m benchmarks.summary results.json \\
        --doc docs/performance.md --plots docs/img

Round by round: implementations run interleaved, so the ratio of two of them in one
round shares the machine's state; the median and the range of those ratios is what a
loaded machine still supports.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The implementations shown, in this order, and their column titles.
SHOWN = {
    "core": "Core", "orm": "ORM", "advanced_alchemy": "advanced-alchemy", "django": "Django",
    "storelayer": "storelayer (instances)", "storelayer_rows": "storelayer `rows`",
}  # fmt: skip
#: The path docs/performance.md recommends for each operation.
RECOMMENDED = {
    "get_by_id": "storelayer_rows", "filtered_page": "storelayer_rows",
    "filtered_count": "storelayer_rows", "stream": "storelayer_rows",
    "bulk_insert": "storelayer", "upsert": "storelayer",
}  # fmt: skip
MARKERS = re.compile(r"(<!-- ratio-table:begin -->\n).*?(<!-- ratio-table:end -->)", re.DOTALL)


def replace_block(doc: Path, markers: re.Pattern[str], text: str) -> None:
    """Replace what lies between ``doc``'s two markers (``markers`` captures them)."""
    found = doc.read_text()
    if not markers.search(found):
        raise SystemExit(f"{doc}: no {markers.pattern[:30]}... markers")
    doc.write_text(markers.sub(lambda m: m[1] + "\n" + text + "\n" + m[2], found))


def per_round(
    results: Sequence[dict[str, Any]], operation: str, impl: str | None, anchor: str
) -> list[float]:
    """anchor time / ``impl`` time, round by round (higher is better for ``impl``)."""
    found = {r["impl"]: r for r in results if r["operation"] == operation}
    mine, theirs = found.get(impl), found.get(anchor)
    if not mine or not theirs or not mine["seconds"] or not theirs["seconds"]:
        return []
    return [a / b for a, b in zip(theirs["seconds"], mine["seconds"], strict=False) if b]


def cell(ratios: list[float], bold: bool = False) -> str:
    """``median (min-max)``, or ``n/a``."""
    if not ratios:
        return "n/a"
    text = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
    return f"**{text}**" if bold else text


def markdown(data: dict[str, Any]) -> str:
    """The tables of every backend in ``data`` (the suite's JSON)."""
    run = data["run"]
    lines = [
        f"Scale {run['scale']}, median of {run['repeats']} interleaved rounds after "
        f"{run['warmup']} warm-up; {run['environment']}; load average {run['load']}.",
        "Ratio to the raw driver, median (range of the round-by-round ratios); the last "
        "column is Core's time over the recommended path's, round by round (>= 1.00: at "
        "or above Core; bold where even its slowest round is).",
    ]
    for backend, results in data["results"].items():
        impls = [i for i in SHOWN if any(r["impl"] == i for r in results)]
        header = ["operation", *(SHOWN[i] for i in impls), "recommended / Core"]
        lines += ["", f"**{backend}**", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]  # fmt: skip
        for operation in dict.fromkeys(r["operation"] for r in results):
            best = RECOMMENDED.get(operation)
            cells = [
                cell(per_round(results, operation, i, "raw"), bold=i == best) for i in impls
            ]
            versus = per_round(results, operation, best, "core") if best else []
            cells.append(cell(versus, bold=bool(versus) and min(versus) >= 1))
            lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(data: dict[str, Any], out: Path) -> Path:
    """One panel per backend: each implementation's ratio to raw per operation, the
    bar at the median, the whisker over the rounds' range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(data["results"])
    fig, axes = plt.subplots(len(backends), 1, figsize=(8, 3 * len(backends)), squeeze=False)
    for ax, backend in zip(axes[:, 0], backends, strict=True):
        results = data["results"][backend]
        operations = list(dict.fromkeys(r["operation"] for r in results))
        impls = [i for i in SHOWN if any(r["impl"] == i for r in results)]
        width = 0.8 / len(impls)
        for k, impl in enumerate(impls):
            spans = [per_round(results, op, impl, "raw") for op in operations]
            xs = [n + (k - (len(impls) - 1) / 2) * width for n in range(len(operations))]
            mids = [statistics.median(s) if s else 0.0 for s in spans]
            low = [m - min(s) if s else 0.0 for m, s in zip(mids, spans, strict=True)]
            high = [max(s) - m if s else 0.0 for m, s in zip(mids, spans, strict=True)]
            ax.bar(xs, mids, width, yerr=[low, high], capsize=2, label=SHOWN[impl],
                   color=f"C{k}", error_kw={"elinewidth": 0.8})  # fmt: skip
        ax.set_xticks(range(len(operations)), operations, fontsize=8)
        ax.set_ylabel("ratio to raw (higher is better)", fontsize=8)
        ax.set_title(backend, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ratios.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def publish(data: dict[str, Any], doc: Path | None, plots: Path | None) -> str:
    """Write the tables into ``doc`` and the PNG into ``plots`` (each when given)."""
    tables = markdown(data)
    if doc:
        replace_block(doc, MARKERS, tables)
    if plots:
        plot(data, plots)
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="JSON of a run (python -m benchmarks --json F)")
    p.add_argument("--doc", type=Path, help="Markdown file whose ratio tables to replace")
    p.add_argument("--plots", type=Path, help="directory of ratios.png")
    args = p.parse_args(argv)
    print(publish(json.loads(args.results.read_text()), args.doc, args.plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

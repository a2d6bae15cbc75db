"""Turning measurements into a text table, a markdown report and JSON.

ratio = raw median / implementation median: 1.00 is as fast as the raw driver path,
0.50 takes twice as long (higher is better)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import Measurement

HEADERS = ("operation", "implementation", "median s", "vs raw", "ops/s", "peak RSS Δ", "note")


@dataclass(frozen=True)
class RunInfo:
    """How the numbers were taken (printed above every table)."""

    scale: float
    repeats: int
    warmup: int
    batch_size: int
    environment: str
    load: str = ""

    def line(self) -> str:
        """One-line summary."""
        load = f"; load average {self.load}" if self.load else ""
        return (
            f"scale {self.scale}, median of {self.repeats} interleaved repeats "
            f"(+{self.warmup} warm-up), stream batch {self.batch_size}; "
            f"{self.environment}{load}"
        )


def ratio(m: Measurement, raw: Measurement | None) -> float | None:
    """raw median / this median (higher is better)."""
    if raw is None or raw.median is None or m.median is None or m.median == 0:
        return None
    return raw.median / m.median


def _unit(operation: str) -> str:
    return {"get_by_id": "gets", "filtered_page": "pages", "filtered_count": "counts"}.get(
        operation, "rows"
    )


def rows_for(measurements: Sequence[Measurement]) -> list[tuple[str, ...]]:
    """Table rows (strings) for one backend, grouped by operation."""
    out: list[tuple[str, ...]] = []
    by_op: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_op.setdefault(m.operation, []).append(m)
    for operation, group in by_op.items():
        raw = next((m for m in group if m.impl == "raw"), None)
        for i, m in enumerate(group):
            label = operation if i == 0 else (f"({m.units} {_unit(operation)})" if i == 1 else "")
            out.append(_cells(label, m, ratio(m, raw)))
    return out


def _cells(label: str, m: Measurement, r: float | None) -> tuple[str, ...]:
    if m.median is None:
        note = f"{m.status}: {m.note}" if m.note else m.status
        return (label, m.impl, "-", "-", "-", "-", note)
    rss = m.median_rss_kib
    return (
        label, m.impl, f"{m.median:.4f}", f"{r:.2f}" if r is not None else "-",
        f"{m.units / m.median:,.0f}", f"{rss / 1024:.1f} MiB" if rss is not None else "",
        "",
    )


def text_table(rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> str:
    """A fixed-width table."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    numeric = {2, 3, 4, 5}

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def ratio_matrix(measurements: Sequence[Measurement]) -> tuple[list[str], list[list[str]]]:
    """Operations x implementations of ratios (the compact summary)."""
    impls = list(dict.fromkeys(m.impl for m in measurements))
    ops = list(dict.fromkeys(m.operation for m in measurements))
    cell = {(m.operation, m.impl): m for m in measurements}
    body = []
    for op in ops:
        raw = cell.get((op, "raw"))
        row = [op]
        for impl in impls:
            m = cell.get((op, impl))
            r = ratio(m, raw) if m else None
            row.append(f"{r:.2f}" if r is not None else (m.status if m else ""))
        body.append(row)
    return ["operation", *impls], body


def render_text(by_backend: dict[str, list[Measurement]], info: RunInfo) -> str:
    """The full console report."""
    parts = [info.line()]
    for backend, ms in by_backend.items():
        headers, body = ratio_matrix(ms)
        parts += [
            "", f"== {backend} ==", text_table(rows_for(ms)), "",
            f"ratio to raw (raw time / implementation time, higher is better) — {backend}",
            text_table(body, headers),
        ]
    return "\n".join(parts) + "\n"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines)


def render_markdown(by_backend: dict[str, list[Measurement]], info: RunInfo) -> str:
    """The report as markdown: per backend, the ratio matrix then the details."""
    parts = ["# storelayer benchmark results", "", info.line()]
    for backend, ms in by_backend.items():
        headers, body = ratio_matrix(ms)
        parts += [
            "", f"## {backend}", "", "Ratio to raw (raw time / implementation time, "
            "higher is better):", "", _md_table(headers, body), "",
            _md_table(HEADERS, rows_for(ms)),
        ]
    return "\n".join(parts) + "\n"


def render_json(by_backend: dict[str, list[Measurement]], info: RunInfo) -> str:
    """Every sample and median, plus the run's settings."""
    data: dict[str, Any] = {"run": info.__dict__, "results": {}}
    for backend, ms in by_backend.items():
        raw = {m.operation: m for m in ms if m.impl == "raw"}
        data["results"][backend] = [
            {**m.to_dict(), "ratio_to_raw": ratio(m, raw.get(m.operation))} for m in ms
        ]
    return json.dumps(data, indent=2)

"""``storelayer copy`` against pgloader: one SQLite file (three tables, about 1M rows by
default, with integers, text, timestamps, numerics, floats, booleans and NULLs) copied
into an empty PostgreSQL database by each tool in turn, as whole commands:

- ``pgloader``: ``pgloader sqlite:///FILE postgresql://.../DB`` (Debian's package);
- ``storelayer copy``: ``storelayer copy --from sqlite:///FILE --to postgresql://.../DB
  --json``, whose report splits its time into stages: ``rows`` (moving them, the
  source's checksums taken as they pass), ``verify`` (the target's rows read back and
  their per-table checksums compared with the source's), ``commit``, ``setup``. The
  command's wall time less ``verify`` is reported as ``wall_without_verify``;
- ``storelayer copy --no-verify``: the same copy checked by row counts only (no
  checksum of either side), so what the verification costs is measured, not inferred.

Rounds are interleaved (pgloader, storelayer, pgloader, storelayer, ...) after one
warm-up round that is not counted; the target database is dropped and created again
before every run, untimed. Each run's result is checked: the target's row counts must
be the source's. The report gives, per command, the median wall time with its min-max
spread, and the ratios storelayer/pgloader (with and without the verification) computed
round by round (the two runs of a round share the machine's state). Python may write
its bytecode cache (``PYTHONDONTWRITEBYTECODE`` is dropped), so storelayer's runs after
the warm-up import as an installed copy does, without compiling its modules::

    uv run --all-packages --group bench python -m benchmarks.bench_copy --rows 1000000 \\
        --repeats 5 --markdown copy.md

Needs ``pgloader`` on the PATH (``apt-get install pgloader``) and a PostgreSQL server
(``--postgresql-server``, default ``postgresql://postgres@127.0.0.1:5432``); only the
database named ``storelayer_bench_copy`` is created and dropped there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
)

from benchmarks.targets import Target, create_database, drop_database, make_target

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "storelayer_bench_copy"
#: Each table's share of the rows.
SHARES = {"customer": 0.1, "orders": 0.4, "order_line": 0.5}
STATUSES = ["new", "paid", "shipped", "delivered", "cancelled", "returned"]
EPOCH = dt.datetime(2024, 1, 1)
FILL_BATCH = 20_000


def schema() -> MetaData:
    """The source's tables, as an application's models would declare them."""
    metadata = MetaData()
    Table(
        "customer", metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False),
        Column("email", String(200), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("active", Boolean, nullable=False),
        Column("balance", Numeric(12, 2), nullable=False),
    )
    Table(
        "orders", metadata,
        Column("id", Integer, primary_key=True),
        Column("customer_id", Integer, ForeignKey("customer.id"), nullable=False),
        Column("placed_at", DateTime, nullable=False),
        Column("status", String(20), nullable=False),
        Column("total", Numeric(12, 2), nullable=False),
        Column("paid", Boolean, nullable=False),
        Column("note", Text),
    )
    Table(
        "order_line", metadata,
        Column("id", Integer, primary_key=True),
        Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
        Column("sku", String(32), nullable=False),
        Column("quantity", Integer, nullable=False),
        Column("unit_price", Numeric(10, 2), nullable=False),
        Column("weight_kg", Float),
        Column("shipped_at", DateTime),
    )
    return metadata


def sizes(rows: int) -> dict[str, int]:
    """Rows per table for ``rows`` in all."""
    return {name: max(1, int(rows * share)) for name, share in SHARES.items()}


def _money(rng: random.Random, high: int) -> Decimal:
    return Decimal(rng.randrange(high * 100)) / 100


def _when(rng: random.Random) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=rng.randrange(3 * 365 * 86400),
                                microseconds=rng.randrange(1_000_000))


def _rows(
    name: str, count: int, counts: dict[str, int], rng: random.Random
) -> Iterator[dict[str, Any]]:
    for i in range(1, count + 1):
        if name == "customer":
            yield {"id": i, "name": f"Customer {i} Ünïcode", "email": f"c{i}@example.com",
                   "created_at": _when(rng), "active": rng.random() < 0.8,
                   "balance": _money(rng, 10_000)}
        elif name == "orders":
            yield {"id": i, "customer_id": rng.randint(1, counts["customer"]),
                   "placed_at": _when(rng), "status": rng.choice(STATUSES),
                   "total": _money(rng, 2_000), "paid": rng.random() < 0.7,
                   "note": None if rng.random() < 0.7 else f"note\t{i}: leave at the door"}
        else:
            yield {"id": i, "order_id": rng.randint(1, counts["orders"]),
                   "sku": f"SKU-{rng.randrange(50_000):06d}", "quantity": rng.randint(1, 20),
                   "unit_price": _money(rng, 500),
                   "weight_kg": None if rng.random() < 0.1 else rng.random() * 30,
                   "shipped_at": None if rng.random() < 0.3 else _when(rng)}


def make_source(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """A SQLite file at ``path`` holding ``rows`` rows over the tables of
    :func:`schema`, written through SQLAlchemy (so values are stored as an application's
    would be). Returns the rows per table."""
    path.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    metadata = schema()
    metadata.create_all(engine)
    counts = sizes(rows)
    rng = random.Random(seed)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            batch: list[dict[str, Any]] = []
            for row in _rows(table.name, counts[table.name], counts, rng):
                batch.append(row)
                if len(batch) == FILL_BATCH:
                    connection.execute(table.insert(), batch)
                    batch = []
            if batch:
                connection.execute(table.insert(), batch)
    engine.dispose()
    return counts


@dataclass
class Tool:
    """One command's samples."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Median and spread of each figure."""
        figures = {"wall_s": self.seconds, "cpu_s": self.cpu_seconds}
        figures.update({f"{k}_s": v for k, v in self.phases.items()})
        return {key: spread(values) for key, values in figures.items() if values}


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


#: The environment of the commands: Python may write its bytecode cache (the warm-up
#: round does), as an installed storelayer has it; without it every run compiles every
#: module again (about 1 s of CPU).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (the command and its children; not the server's) of one run
    of ``command``, and its stdout. A failed run stops the benchmark."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=_ENV, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"{command[0]} exited {done.returncode}: " + " | ".join(tail))
    return wall, _children_cpu() - cpu, done.stdout


def target_counts(target: Target, names: list[str]) -> dict[str, int]:
    """Rows of each table in the target database."""
    engine = create_engine(target.url())
    try:
        with engine.connect() as connection:
            return {
                n: int(connection.exec_driver_sql(f'SELECT count(*) FROM "{n}"').scalar_one())
                for n in names
            }
    finally:
        engine.dispose()


def commands(source: Path, target: Target) -> dict[str, list[str]]:
    """The command line of each tool."""
    pg_url = target.storelayer_url()
    return {
        "pgloader": ["pgloader", "--quiet", f"sqlite:///{source}", pg_url],
        "storelayer": [sys.executable, "-m", "storelayer", "--json", "copy",
                       "--from", f"sqlite:///{source}", "--to", pg_url],
        # The same copy checked by row counts only: what the checksums cost, measured.
        "storelayer --no-verify": [sys.executable, "-m", "storelayer", "--json", "copy",
                                   "--no-verify", "--from", f"sqlite:///{source}", "--to",
                                   pg_url],
    }


def run(rows: int, repeats: int, warmup: int, server: str | None, workdir: Path,
        say: Any) -> dict[str, Any]:
    """Make the source, then the interleaved rounds; returns every sample."""
    if shutil.which("pgloader") is None:
        raise SystemExit("pgloader is not on the PATH: apt-get install pgloader")
    load_start = os.getloadavg()
    source = workdir / "source.db"
    say(f"making the source: {rows} rows in {source}")
    counts = make_source(source, rows)
    target = make_target("postgresql", workdir, server=server, name=DATABASE)
    lines = commands(source, target)
    tools = {name: Tool(name) for name in lines}
    try:
        for round_ in range(warmup + repeats):
            for name, command in lines.items():
                create_database(target)
                wall, cpu, out = timed(command)
                found = target_counts(target, list(counts))
                if found != counts:
                    raise SystemExit(f"{name} copied {found}, the source has {counts}")
                if round_ < warmup:
                    continue
                tool = tools[name]
                tool.seconds.append(wall)
                tool.cpu_seconds.append(cpu)
                if name.startswith("storelayer"):
                    for phase, seconds in json.loads(out).get("phases", {}).items():
                        tool.phases.setdefault(phase, []).append(seconds)
                say(f"round {round_ - warmup + 1}: {name} {wall:.2f} s")
    finally:
        drop_database(target)
    ours, theirs = tools["storelayer"], tools["pgloader"]
    counted = tools["storelayer --no-verify"]
    unverified = [w - v for w, v in zip(ours.seconds, ours.phases.get("verify", []), strict=True)]
    ours.phases["wall_without_verify"] = unverified
    return {
        "rows": sum(counts.values()), "tables": counts, "repeats": repeats,
        "load_start": load_start, "load": os.getloadavg(),
        "tools": {n: t.summary() for n, t in tools.items()},
        "samples": {n: asdict(t) for n, t in tools.items()},
        "ratios": {
            "storelayer / pgloader": _ratios(ours.seconds, theirs.seconds),
            "storelayer without verify / pgloader": _ratios(unverified, theirs.seconds),
            "storelayer --no-verify / pgloader": _ratios(counted.seconds, theirs.seconds),
            "storelayer / storelayer --no-verify": _ratios(ours.seconds, counted.seconds),
        },
    }


def _ratios(ours: list[float], theirs: list[float]) -> dict[str, float] | None:
    """Round-by-round ratios, summarized."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return spread(ratios) if ratios else None


def _cell(figure: dict[str, float]) -> str:
    return f"{figure['median']:.2f} ({figure['min']:.2f}-{figure['max']:.2f})"


def markdown(data: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        f"{data['rows']:,} rows ({', '.join(f'{n} {c:,}' for n, c in data['tables'].items())}),"
        f" {data['repeats']} interleaved rounds; load average at the start "
        f"{', '.join(f'{x:.1f}' for x in data['load_start'])}, at the end "
        f"{', '.join(f'{x:.1f}' for x in data['load'])}.",
        "",
        "| command | figure | median (min-max) |",
        "|---|---|---|",
    ]
    for name, figures in data["tools"].items():
        for key, figure in figures.items():
            lines.append(f"| {name} | {key} | {_cell(figure)} |")
    for name, ratio in data["ratios"].items():
        if ratio:
            lines.append(f"| {name} | wall, round by round | {_cell(ratio)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--postgresql-server", default=None)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="storelayer-copy-bench-", dir=args.workdir) as tmp:
        data = run(args.rows, args.repeats, args.warmup, args.postgresql_server, Path(tmp), say)
    text = markdown(data)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

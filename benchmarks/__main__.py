"""Command line: ``uv run --group bench python -m benchmarks --backend sqlite --scale 1``.

See ``benchmarks/README.md`` for the method."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from benchmarks.harness import BackendRun, Measurement
from benchmarks.impl_base import IMPLEMENTATIONS, prepare_implementations
from benchmarks.operations import OPERATIONS
from benchmarks.report import RunInfo, render_json, render_markdown, render_text
from benchmarks.summary import publish
from benchmarks.targets import BACKENDS, create_database, drop_database, make_target
from benchmarks.workload import Sizes, Workload


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse ``type`` for a comma-separated subset of ``choices``."""

    def parse(value: str) -> list[str]:
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--backend", type=_csv(BACKENDS), default=["sqlite"],
                   help="comma-separated: sqlite,postgresql,mysql (default sqlite)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies every size (1.0 = 100k-row insert, 1M-row stream)")
    p.add_argument("--repeats", type=int, default=5, help="kept rounds (median of these)")
    p.add_argument("--warmup", type=int, default=1, help="discarded rounds first")
    p.add_argument("--impl", type=_csv(list(IMPLEMENTATIONS)), default=list(IMPLEMENTATIONS),
                   help="comma-separated implementations (raw is always run)")
    p.add_argument("--ops", type=_csv(list(OPERATIONS)), default=list(OPERATIONS),
                   help="comma-separated operations")
    p.add_argument("--batch-size", type=int, default=1000, help="stream batch size")
    p.add_argument("--postgresql-server", default=None,
                   help="server URL (default postgresql://postgres@127.0.0.1:5432)")
    p.add_argument("--mysql-server", default=None,
                   help="server URL (default mysql://root@127.0.0.1:3306)")
    p.add_argument("--workdir", type=Path, default=None, help="directory of the SQLite file")
    p.add_argument("--keep", action="store_true", help="keep the storelayer_bench databases")
    p.add_argument("--markdown", type=Path, default=None, help="also write a markdown report")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write JSON to FILE (or, with no FILE, print it instead of the table)")
    p.add_argument("--doc", type=Path, default=None,
                   help="Markdown file whose ratio tables to replace (benchmarks/summary.py)")
    p.add_argument("--plots", type=Path, default=None, help="directory to draw ratios.png in")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-round progress")
    args = p.parse_args(argv)
    if "raw" not in args.impl:
        args.impl.insert(0, "raw")
    args.impl.sort(key=list(IMPLEMENTATIONS).index)
    return args


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "missing"


def environment() -> str:
    """Interpreter, library versions and CPU count."""
    libs = ", ".join(
        f"{d} {_version(d)}" for d in ("sqlalchemy", "django", "advanced-alchemy", "storelayer")
    )
    return f"Python {platform.python_version()}, {libs}, {os.cpu_count()} CPUs"


def run_backend(args: argparse.Namespace, backend: str, work: Workload) -> list[Measurement]:
    """Create the database, run every operation, drop the database."""
    target = args.targets[backend]
    create_database(target)
    run = BackendRun(
        target, work, args.impl, repeats=args.repeats, warmup=args.warmup,
        batch_size=args.batch_size,
        progress=(lambda _line: None) if args.quiet else _progress,
    )
    results: list[Measurement] = []
    try:
        run.open()
        for name in args.ops:
            results += run.run_operation(OPERATIONS[name])
    finally:
        run.close()
        if not args.keep:
            drop_database(target)
    return results


def _load() -> str:
    """The 1-minute load average, or "?" where the platform has none."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print or write the reports."""
    warnings.filterwarnings("ignore", message=r".*does \*not\* support Decimal objects")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="storelayer-bench-"))
    servers = {"postgresql": args.postgresql_server, "mysql": args.mysql_server}
    args.targets = {b: make_target(b, workdir, servers.get(b)) for b in args.backend}
    prepare_implementations(args.impl, list(args.targets.values()))
    work = Workload.build(Sizes.from_scale(args.scale))
    load_before = _load()
    by_backend = {b: run_backend(args, b, work) for b in args.backend}
    info = RunInfo(
        args.scale, args.repeats, args.warmup, args.batch_size, environment(),
        load=f"{load_before} at start, {_load()} at end (other work on the machine skews "
        "times; interleaving spreads it over all implementations)",
    )
    if args.json == "-":
        print(render_json(by_backend, info))
    else:
        print(render_text(by_backend, info), end="")
    if args.json not in (None, "-"):
        Path(args.json).write_text(render_json(by_backend, info) + "\n")
    if args.markdown:
        args.markdown.write_text(render_markdown(by_backend, info))
    if args.doc or args.plots:
        publish(json.loads(render_json(by_backend, info)), args.doc, args.plots)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

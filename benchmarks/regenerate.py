"""Every generated table and plot of docs/performance.md, measured again in one
command: the main suite's ratio tables and ``ratios.png`` (``benchmarks.summary``), then
the growth tables and their four plots (``benchmarks.bench_growth``)::

    uv run --all-packages --group bench python -m benchmarks.regenerate

Needs the PostgreSQL and MySQL servers the two benchmarks default to; takes about an
hour on a 2-core machine (``--scale`` and ``--sizes`` make it shorter).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import __main__ as suite
from benchmarks import bench_growth

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    p.add_argument("--img", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--backend", default="sqlite,postgresql,mysql")
    p.add_argument("--scale", default="0.1", help="of the main suite")
    p.add_argument("--sizes", default="10000,100000,1000000", help="of the growth benchmark")
    args = p.parse_args(argv)
    common = ["--backend", args.backend, "--doc", str(args.doc)]
    suite.main([*common, "--scale", args.scale, "--repeats", "3", "--plots", str(args.img),
                "--impl", "core,orm,advanced_alchemy,django,storelayer,storelayer_rows"])
    return bench_growth.main([*common, "--sizes", args.sizes, "--out", str(args.img)])


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the demo district generator at district scale.

Usage::

    .venv/bin/python benchmarks/bench_generate.py [--residents 400000] [--courses 3000]
        [--format csv|parquet] [--out DIR] [--seed 0] [--events-per-resident 25] [--progress]

Prints one table: rows and file size per table, seconds per stage, events per second and the
peak resident memory of the process (``resource.getrusage``). Without ``--out`` the files go to a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
from pathlib import Path

from recommender.demo.generator import generate_district


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux and bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark once and print its table; returns the generator's summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--residents", type=int, default=400_000)
    p.add_argument("--courses", type=int, default=3_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--events-per-resident", type=float, default=25.0)
    p.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1))
    p.add_argument("--out", type=Path, default=None, help="keep the files here")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_generate_") as tmp:
        out = args.out if args.out is not None else Path(tmp)
        summary = generate_district(
            out,
            residents=args.residents,
            courses=args.courses,
            seed=args.seed,
            fmt=args.format,
            as_of=args.as_of,
            progress=args.progress,
            events_per_resident=args.events_per_resident,
        )
        sizes = {f: (out / f).stat().st_size for f in summary["files"]}

    rows, secs = summary["rows"], summary["seconds"]
    n_ev = rows["participations"]
    print(
        f"generate_district: {args.residents:,} residents, {args.courses:,} courses, "
        f"format={args.format}, seed={args.seed}, as_of={args.as_of}"
    )
    print(f"{'table':<16}{'rows':>14}{'file MB':>10}")
    for name, n in rows.items():
        size = sizes.get(f"{name}.{args.format}", 0) / 1e6
        print(f"{name:<16}{n:>14,}{size:>10.1f}")
    side = sum(v for k, v in sizes.items() if not k.endswith(f".{args.format}")) / 1e6
    print(f"{'side files':<16}{'':>14}{side:>10.1f}")
    print(f"{'stage':<16}{'seconds':>14}")
    for stage, s in summary["stage_seconds"].items():
        print(f"{stage:<16}{s:>14.1f}")
    print(f"{'total':<16}{secs:>14.1f}")
    print(f"events/resident {n_ev / max(1, rows['residents']):>14.1f}")
    print(f"events/s        {n_ev / secs:>14,.0f}")
    print(f"peak RSS MB     {_peak_rss_mb():>14,.0f}")
    return summary


if __name__ == "__main__":
    main()

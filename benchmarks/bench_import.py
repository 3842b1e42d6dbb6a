"""District import at scale: rows, seconds, rows/s and peak memory per table.

Target: the validated import of a 400k-resident / 3k-course / 10M-event district is
timed and its peak memory reported; the design asks that 10M events validate and import in a
few minutes.

Usage::

    .venv/bin/python benchmarks/bench_import.py --data var/bench_district          # SQLite
    .venv/bin/python benchmarks/bench_import.py --data DIR --db postgresql+psycopg://...
    .venv/bin/python benchmarks/bench_import.py --data DIR --residents 20000 --courses 300

If ``DIR`` holds no district yet, one of ``--residents`` / ``--courses`` (default 400k / 3k)
is generated into it first, in a child process, so the import's peak RSS is its own. Without
``--db`` the import goes into a fresh SQLite file in a temporary folder (deleted afterwards); a
PostgreSQL URL must point at empty tables (e.g. a dedicated schema via
``?options=-csearch_path%3Dbench_import``). ``insert s`` is the time spent inside
``Store.insert`` (the rest is reading and validation). ``--reimport`` imports the folder a
second time to time the all-duplicate path.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.data.ingest import import_folder  # noqa: E402
from recommender.data.store import open_store  # noqa: E402
from recommender.domain import TABLE_ORDER  # noqa: E402


def _has_district(folder: Path) -> bool:
    return all(any((folder / f"{t}.{ext}").is_file() for ext in ("csv", "parquet"))
               for t in TABLE_ORDER)


def _generate(folder: Path, residents: int, courses: int, seed: int, fmt: str) -> float:
    """Generate in a child process; return its wall time."""
    code = ("import sys; from recommender.demo.generator import generate_district; "
            f"generate_district({str(folder)!r}, residents={residents}, courses={courses}, "
            f"seed={seed}, fmt={fmt!r}, progress=True)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def _timed_store(store):
    """Wrap ``store.insert`` to add up the seconds spent in it, per table."""
    spent: dict[str, float] = dict.fromkeys(TABLE_ORDER, 0.0)
    insert = store.insert

    def timed(table, frame):
        t0 = time.perf_counter()
        try:
            return insert(table, frame)
        finally:
            spent[table] += time.perf_counter() - t0

    store.insert = timed
    return spent


def _run(folder: Path, url: str, label: str, progress: bool) -> None:
    store = open_store(url)
    spent = _timed_store(store)
    t0 = time.perf_counter()
    report = import_folder(folder, store, progress=progress)
    total = time.perf_counter() - t0
    store.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{label}: {store.backend}, {folder}")
    print(f"{'table':<16}{'rows':>11}{'accepted':>11}{'duplicate':>11}{'rejected':>10}"
          f"{'seconds':>9}{'insert s':>10}{'rows/s':>10}")
    rows_all = 0
    for name, t in report.tables.items():
        rows_all += t.rows
        rate = t.rows / t.seconds if t.seconds else float("nan")
        print(f"{name:<16}{t.rows:>11,}{t.accepted:>11,}{t.duplicate:>11,}{t.rejected:>10,}"
              f"{t.seconds:>9.1f}{spent[name]:>10.1f}{rate:>10,.0f}")
    print(f"{'total':<16}{rows_all:>11,}{'':>32}{total:>9.1f}{sum(spent.values()):>10.1f}"
          f"{rows_all / total:>10,.0f}")
    print(f"peak RSS of this process so far: {peak_mb:,.0f} MB; exit code {report.exit_code}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="district folder (generated if "
                    "it holds none)")
    ap.add_argument("--db", default=None, help="store URL (default: a temporary SQLite file)")
    ap.add_argument("--residents", type=int, default=400_000)
    ap.add_argument("--courses", type=int, default=3_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--reimport", action="store_true", help="import a second time")
    ap.add_argument("--progress", action="store_true", help="show progress bars")
    args = ap.parse_args(argv)

    if not _has_district(args.data):
        seconds = _generate(args.data, args.residents, args.courses, args.seed, args.format)
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"generated {args.residents:,} residents / {args.courses:,} courses into "
              f"{args.data} in {seconds:.1f} s (peak RSS {child:,.0f} MB)")
    size = sum(p.stat().st_size for p in args.data.iterdir() if p.is_file())
    print(f"folder size {size / 2**20:,.0f} MiB")

    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        _run(args.data, url, "import", args.progress)
        if args.reimport:
            _run(args.data, url, "re-import", args.progress)


if __name__ == "__main__":
    main()

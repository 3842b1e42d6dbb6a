"""The district benchmark in one command: generate, import, train, evaluate, serve, load-test.

    .venv/bin/python benchmarks/district.py                              # 400k / 3k / ~10M
    .venv/bin/python benchmarks/district.py --residents 20000 --courses 300   # a quick run
    .venv/bin/python benchmarks/district.py --out var/district-400k --skip-generate --skip-import

Every step runs as its own process (the commands a district would run, timed from start to
exit, peak RSS from ``os.wait4``), and each figure sits next to a baseline measured in the same
run, because the machine is shared and only ratios travel:

* **generate** ``recommender generate`` (parquet, seed 0, as of 2026-11-01) and **import**
  ``recommender import`` into an SQLite store;
* **train** ``recommender train --data`` against the bare pipeline of
  ``benchmarks/bench_train.py`` (pandas reads the participations file, ids factorized,
  implicit ALS 64 factors x 15 iterations), alternated for ``--rounds`` rounds, the fastest
  run of each side counting;
* **quality** ``recommender benchmark --protocol temporal``: the hybrid's nDCG@10 against
  popularity and against the best tuned baseline on the same split and candidates;
* **serving** the API in ``--workers`` uvicorn workers (default 2) on the imported store and the
  trained artifact, loaded by ``--concurrency`` keep-alive clients (default 32, the raw-socket
  client of ``bench_serving.py``), a different resident per request; against the same route
  of the same app answering a canned list in as many workers (``bench_serving.floor_app``), and
  ``/healthz``. Peak memory is the sum of the server processes' RSS.

``--skip-generate`` / ``--skip-import`` / ``--skip-train`` / ``--skip-quality`` /
``--skip-serving`` reuse what an earlier run left in ``--out`` (or leave a step out). The table
is also written to ``OUT/district.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_serving  # noqa: E402
import bench_train  # noqa: E402
from bench_train import child_env, timed_process  # noqa: E402

# The train command sets this for itself; the server and the benchmark's own children get it too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "recommender.cli", *args]


def step(name: str) -> None:
    print(f"\n== {name} ({time.strftime('%H:%M:%S')})", flush=True)


def generate(args, data: Path) -> dict:
    step(f"generate {args.residents} residents / {args.courses} courses into {data}")
    run = timed_process(cli("generate", "--out", str(data), "--residents", str(args.residents),
                            "--courses", str(args.courses), "--seed", "0", "--format", "parquet",
                            "--as-of", bench_train.AS_OF.isoformat()), child_env())
    summary = json.loads(run.pop("stdout"))
    return {**run, "events": int(summary["rows"]["participations"])}


def import_store(db_file: Path, data: Path) -> dict:
    step(f"import {data} into {db_file}")
    db_file.unlink(missing_ok=True)
    run = timed_process(cli("import", str(data), "--db", f"sqlite:///{db_file}"), child_env())
    print(run.pop("stdout").strip().splitlines()[-1])
    return run


def train(data: Path, artifacts: Path, rounds: int) -> dict:
    step(f"bare implicit-ALS pipeline and recommender train, alternated, {rounds} rounds")
    # Each round runs the bare pipeline with both OpenMP wait policies and the train command
    # once; the fastest of each counts, so a slow moment of the machine hurts neither side.
    result = bench_train.compare(data, artifacts, rounds)
    print(f"   bare {result['bare']['seconds']:.1f} s ({result['bare']['omp_wait_policy']} OpenMP "
          f"wait policy), train {result['train']['seconds']:.1f} s; all rounds: bare "
          f"{[round(x, 1) for x in result['all_bare_s']]}, train "
          f"{[round(x, 1) for x in result['all_train_s']]}")
    return result


def quality(data: Path, out: Path, budget: float) -> dict:
    step(f"recommender benchmark --protocol temporal --budget {budget:g}")
    path = out / "quality.json"
    run = timed_process(cli("benchmark", "--dataset", str(data), "--protocol", "temporal",
                            "--budget", str(budget), "--json", str(path)), child_env())
    models = json.loads(path.read_text())["models"]
    baselines = {k: v["ndcg@10"] for k, v in models.items() if k != "hybrid"}
    best = max(baselines, key=baselines.get)
    return {"seconds": run["seconds"], "peak_mb": run["peak_mb"],
            "hybrid": models["hybrid"]["ndcg@10"],
            "served_by": models["hybrid"].get("guard", {}).get("served_by"),
            "popularity": baselines["popularity"], "best": best, "best_ndcg": baselines[best]}


class TreeMemory:
    """The largest summed RSS of this process's descendants (the server and its workers)."""

    def __init__(self):
        import psutil

        self.me, self.peak_mb, self._stop = psutil.Process(), 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            total = 0
            for child in self.me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def residents_sample(data: Path, n: int) -> list[str]:
    import numpy as np
    import pandas as pd

    ids = pd.read_parquet(data / "residents.parquet", columns=["resident_id"])["resident_id"]
    return [str(x) for x in np.random.default_rng(0).choice(ids.to_numpy(), n, replace=False)]


def serving(args, db_file: Path, artifacts: Path, data: Path) -> dict:
    step(f"serving: {args.workers} workers, {args.concurrency} clients, "
         f"{args.http_requests} requests per endpoint and round, {args.rounds} rounds")
    db = f"sqlite:///{db_file}"
    residents = residents_sample(data, min(args.http_requests, args.residents))
    paths = bench_serving._recommendation_paths(residents, args.http_requests)
    load = argparse.Namespace(rounds=args.rounds, concurrency=args.concurrency)
    with TreeMemory() as memory:
        real = bench_serving._http(db, artifacts, {"/healthz": ["/healthz"] * args.http_requests,
                                                   "recommendations": paths}, load,
                                   workers=args.workers, port=args.port)
    print(f"   recommendations {real['recommendations']['rps']:.0f} req/s; canned list ...")
    canned = bench_serving._http(db, artifacts, {"recommendations": paths}, load,
                                 factory="bench_serving:floor_app", workers=args.workers,
                                 port=args.port)
    return {"healthz": real["/healthz"], "recommendations": real["recommendations"],
            "canned": canned["recommendations"], "server_peak_mb": memory.peak_mb}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def table(r: dict, args) -> list[tuple[str, str, str, str, str]]:
    """(measure, value, peak memory, baseline, ratio) rows of whatever ran."""
    rows = []
    if "generate" in r:
        g = r["generate"]
        rows.append(("generate (recommender generate, parquet)", f"{g['seconds']:.0f} s",
                     f"{g['peak_mb']:.0f} MB", f"{g['events']:,} events", "-"))
    if "import" in r:
        i = r["import"]
        rows.append(("import into SQLite (recommender import)", f"{i['seconds']:.0f} s",
                     f"{i['peak_mb']:.0f} MB", "-", "-"))
    if "train" in r:
        b, t = r["train"]["bare"], r["train"]["train"]
        rows.append(("bare ALS pipeline (pandas, factorize, 64f x 15 it)",
                     f"{b['seconds']:.1f} s", f"{b['peak_mb']:.0f} MB", "baseline", "1.00x"))
        rows.append(("recommender train (whole command)", f"{t['seconds']:.1f} s",
                     f"{t['peak_mb']:.0f} MB", f"bare ALS {b['seconds']:.1f} s",
                     _ratio(t["seconds"], b["seconds"])))
    if "quality" in r:
        q = r["quality"]
        rows.append((f"quality: hybrid nDCG@10, temporal ({q['served_by']})",
                     f"{q['hybrid']:.4f}", f"{q['peak_mb']:.0f} MB",
                     f"popularity {q['popularity']:.4f}", _ratio(q["hybrid"], q["popularity"])))
        rows.append(("quality: hybrid vs the best tuned baseline", f"{q['hybrid']:.4f}", "-",
                     f"{q['best']} {q['best_ndcg']:.4f}", _ratio(q["hybrid"], q["best_ndcg"])))
        rows.append(("quality: benchmark run (tuning included)", f"{q['seconds']:.0f} s", "-",
                     "-", "-"))
    if "serving" in r:
        s = r["serving"]
        rec, canned, health = s["recommendations"], s["canned"], s["healthz"]
        c = f"c={args.concurrency}, {args.workers} workers"
        rows.append((f"recommendations, req/s ({c})", f"{rec['rps']:.0f}",
                     f"{s['server_peak_mb']:.0f} MB", f"canned list {canned['rps']:.0f}",
                     _ratio(rec["rps"], canned["rps"])))
        rows.append(("recommendations, req/s vs /healthz", f"{rec['rps']:.0f}", "-",
                     f"/healthz {health['rps']:.0f}", _ratio(rec["rps"], health["rps"])))
        rows.append(("recommendations, p50 / p99 ms", f"{rec['p50_ms']:.1f} / "
                     f"{rec['p99_ms']:.1f}", "-", f"canned {canned['p50_ms']:.1f} / "
                     f"{canned['p99_ms']:.1f}", _ratio(rec["p99_ms"], canned["p99_ms"])))
    return rows


def print_table(rows) -> None:
    widths = [max(len(row[k]) for row in rows + [HEADER]) for k in range(5)]
    for n, row in enumerate([HEADER, *rows]):
        print("  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                        for k, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("-" * (sum(widths) + 8))


HEADER = ("measure", "value", "peak memory", "baseline (same run)", "ratio")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=400_000)
    parser.add_argument("--courses", type=int, default=3_000)
    parser.add_argument("--out", type=Path, help="Working folder (default "
                        "var/district-RESIDENTS-COURSES): data/, store.db, artifacts/.")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="Tuning seconds per baseline in the quality step.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--port", type=int, help="The server's port (default: a free one).")
    parser.add_argument("--http-requests", type=int, default=2000,
                        help="Requests per endpoint and round.")
    parser.add_argument("--rounds", type=int, default=2, help="The best round counts.")
    for name in ("generate", "import", "train", "quality", "serving"):
        parser.add_argument(f"--skip-{name}", action="store_true",
                            help=f"Leave the {name} step out (reuse what --out holds).")
    args = parser.parse_args(argv)
    out = (args.out or ROOT / "var" / f"district-{args.residents}-{args.courses}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    data, db_file, artifacts = out / "data", out / "store.db", out / "artifacts"
    started, results = time.perf_counter(), {}
    steps = {"generate": lambda: generate(args, data),
             "import": lambda: import_store(db_file, data),
             "train": lambda: train(data, artifacts, args.rounds),
             "quality": lambda: quality(data, out, args.budget),
             "serving": lambda: serving(args, db_file, artifacts, data)}
    for name, run in steps.items():
        if not getattr(args, f"skip_{name}"):
            results[name] = run()
            # kept after every step: a long run stopped half-way keeps what it measured
            (out / "district-steps.json").write_text(json.dumps(results, indent=2, default=str))
    rows = table(results, args)
    print(f"\nDistrict benchmark: {args.residents:,} residents, {args.courses:,} courses "
          f"({out}); {time.perf_counter() - started:.0f} s in all; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores\n")
    print_table(rows)
    (out / "district.json").write_text(json.dumps({"args": {k: str(v) for k, v in
                                                            vars(args).items()},
                                                   "results": results, "table": rows},
                                                  indent=2, default=str))
    return results


if __name__ == "__main__":
    main()

"""The whole ``recommender train`` command against a bare implicit-ALS pipeline, same run.

    .venv/bin/python benchmarks/bench_train.py                        # 100k x 1k and 400k x 3k
    .venv/bin/python benchmarks/bench_train.py --scale 100000x1000 --repeats 2
    .venv/bin/python benchmarks/bench_train.py --data DIR [--data DIR2 ...]
    .venv/bin/python benchmarks/bench_train.py --data DIR --profile var/train.prof

For each district (generated as parquet under ``--out`` when missing, seed 0, as of
2026-11-01, and reused on the next run) two fresh processes are timed from start to exit, each
with its own peak RSS (``os.wait4``):

* **bare**: read the same ``participations`` file with pandas, factorize the resident and
  course ids, build the CSR matrix of ones and fit ``implicit``'s CPU ALS with 64 factors x 15
  iterations (what anyone would write first; the "at most 3x" reference). It runs twice, with
  OpenMP's default idle threads and with ``OMP_WAIT_POLICY=PASSIVE`` (what the train command
  sets), and the faster run counts;
* **train**: ``python -m recommender.cli train --data DIR --out ...`` (read and validate the
  four tables, features, validation cut, every component twice, the trees, the held-out lists,
  calibration, writing and sealing the artifact).

With ``--repeats N`` the two alternate N times and the fastest of each counts (the machine is
shared; alternating spreads the load over both). The table gives the stage times the train
command writes to the artifact's manifest next to the totals. ``--profile FILE`` runs the train
command under cProfile once more and prints its 25 most expensive calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 1)
FACTORS, ITERATIONS = 64, 15  # the ALS baseline's defaults (models.collaborative.ALS)


def bare_pipeline(folder: Path) -> dict:
    """Read, factorize and fit: the bare implicit-ALS pipeline, timed per step (seconds)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    path = participations_file(folder)
    columns = ["resident_id", "course_id"]
    frame = (pd.read_parquet(path, columns=columns) if path.suffix == ".parquet"
             else pd.read_csv(path, usecols=columns, dtype=str))
    t1 = time.perf_counter()
    users, user_ids = pd.factorize(frame["resident_id"])
    items, item_ids = pd.factorize(frame["course_id"])
    X = sp.csr_matrix((np.ones(users.size, dtype=np.float32), (users, items)),
                      shape=(user_ids.size, item_ids.size))
    X.sum_duplicates()
    t2 = time.perf_counter()
    # implicit threads over users; a multi-threaded BLAS underneath only slows it down
    with threadpool_limits(1, "blas"):
        AlternatingLeastSquares(factors=FACTORS, iterations=ITERATIONS, random_state=0).fit(
            X, show_progress=False)
    return {"read_s": t1 - t0, "matrix_s": t2 - t1, "fit_s": time.perf_counter() - t2,
            "users": int(user_ids.size), "items": int(item_ids.size), "events": int(users.size)}


def participations_file(folder: Path) -> Path:
    for ext in ("parquet", "csv"):
        if (folder / f"participations.{ext}").exists():
            return folder / f"participations.{ext}"
    raise SystemExit(f"--data {folder}: no participations.parquet or participations.csv")


def timed_process(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; its wall seconds, peak RSS (MB) and standard output. Exits on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{out}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "stdout": out}


def child_env(**extra: str | None) -> dict:
    env = {**os.environ, **extra,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return {k: v for k, v in env.items() if v is not None}


def run_bare(folder: Path) -> dict:
    """The bare pipeline twice, with OpenMP's default (spinning) idle threads and with the
    sleeping ones the train command sets; the faster run is the reference."""
    runs = []
    for policy in (None, "PASSIVE"):
        run = timed_process([sys.executable, __file__, "--bare", str(folder)],
                            child_env(OMP_WAIT_POLICY=policy))
        runs.append({**run, **json.loads(run.pop("stdout").strip().splitlines()[-1]),
                     "omp_wait_policy": policy or "default"})
    return min(runs, key=lambda r: r["seconds"])


def run_train(folder: Path, artifacts: Path, profile: Path | None = None) -> dict:
    prefix = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    run = timed_process([*prefix, "-m", "recommender.cli", "train", "--data", str(folder),
                         "--out", str(artifacts), "--seed", "0"], child_env())
    manifest = json.loads((artifacts / "current" / "manifest.json").read_text())
    return {**run, "timings": manifest.get("timings", {}),
            "validation_ndcg": manifest["validation_metrics"].get("hybrid", {}).get("ndcg@10")}


def ensure_district(out: Path, residents: int, courses: int) -> Path:
    folder = out / f"district-{residents}-{courses}"
    if not any((folder / f"participations.{e}").exists() for e in ("parquet", "csv")):
        from recommender.demo.generator import generate_district

        print(f"generating {residents} residents / {courses} courses into {folder}", flush=True)
        generate_district(folder, residents=residents, courses=courses, seed=0, fmt="parquet",
                          as_of=AS_OF, progress=True)
    return folder


def compare(folder: Path, artifacts: Path, repeats: int) -> dict:
    """The bare pipeline and the train command, alternated ``repeats`` times; fastest of each."""
    bares, trains = [], []
    load_before = os.getloadavg()[0]
    for n in range(repeats):
        print(f"[{folder.name}] round {n + 1}/{repeats}: bare ALS pipeline ...", flush=True)
        bares.append(run_bare(folder))
        print(f"[{folder.name}]   {bares[-1]['seconds']:.1f} s; recommender train ...", flush=True)
        trains.append(run_train(folder, artifacts))
        print(f"[{folder.name}]   {trains[-1]['seconds']:.1f} s", flush=True)
    bare = min(bares, key=lambda r: r["seconds"])
    train = min(trains, key=lambda r: r["seconds"])
    return {"data": folder.name, "bare": bare, "train": train,
            "ratio": train["seconds"] / bare["seconds"],
            "all_bare_s": [r["seconds"] for r in bares],
            "all_train_s": [r["seconds"] for r in trains],
            # the machine is shared: the 1-minute load average when the rounds began and ended
            "load": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def print_table(results: list[dict]) -> None:
    print(f"\n{'district':<22}{'events':>11}{'bare read':>10}{'bare fit':>9}{'bare s':>8}"
          f"{'bare MB':>9}{'train s':>9}{'features':>9}{'fit':>7}{'train MB':>9}{'ratio':>7}")
    print("-" * 110)
    for r in results:
        b, t = r["bare"], r["train"]
        print(f"{r['data']:<22}{b['events']:>11,}{b['read_s'] + b['matrix_s']:>10.1f}"
              f"{b['fit_s']:>9.1f}{b['seconds']:>8.1f}{b['peak_mb']:>9.0f}{t['seconds']:>9.1f}"
              f"{t['timings'].get('features_s', float('nan')):>9.1f}"
              f"{t['timings'].get('fit_s', float('nan')):>7.1f}{t['peak_mb']:>9.0f}"
              f"{r['ratio']:>6.2f}x")
    print("\nbare s / train s: whole processes, start to exit (the fastest of the rounds: "
          f"bare {[[round(s, 1) for s in r['all_bare_s']] for r in results]}, "
          f"train {[[round(s, 1) for s in r['all_train_s']] for r in results]}; load average "
          f"at the start and end {[r['load'] for r in results]} on {os.cpu_count()} cores); "
          "features / fit: the train command's own stages (manifest timings); target ratio <= 3x")


def print_profile(path: Path, n: int = 25) -> None:
    import pstats

    pstats.Stats(str(path)).sort_stats("cumulative").print_stats(n)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="An existing district folder (repeatable).")
    parser.add_argument("--scale", action="append", default=[],
                        help="RESIDENTSxCOURSES to generate under --out (repeatable; default "
                        "100000x1000 and 400000x3000 when no --data is given).")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench_train")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="Also profile one train run into FILE.")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # the child's entry point
    args = parser.parse_args(argv)
    if args.bare:
        print(json.dumps(bare_pipeline(args.bare)))
        return []
    folders = list(args.data)
    scales = args.scale or ([] if folders else ["100000x1000", "400000x3000"])
    for scale in scales:
        residents, _, courses = scale.partition("x")
        folders.append(ensure_district(args.out, int(residents), int(courses)))
    results = []
    for folder in folders:
        results.append(compare(folder, args.out / f"artifacts-{folder.name}", args.repeats))
        if args.profile:
            run_train(folder, args.out / f"artifacts-{folder.name}", args.profile)
            print_profile(args.profile)
    print_table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()

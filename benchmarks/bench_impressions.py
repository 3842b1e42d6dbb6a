"""The impression log's cost per request: the same service with logging off and on, same run.

Target: logging every served list (and serving an A/B test) adds at most one millisecond to a
request. The service ranks one resident's top-10 with rules and reasons in process, in three modes:

* ``off``: the impression log disabled (it still names the list);
* ``on``: every list queued and written behind the request by the log's thread;
* ``on + A/B``: an experiment runs between the artifact and a copy of it under another version
  name (the same model, so only the experiment's own work differs: the running experiment's
  cached read, the hash assignment, the variant's snapshot).

The modes take turns every ``--block`` requests (the same residents in each), so a noisy shared
machine hits every mode alike. The figures are per request (mean, p50, p99) and the mean's
difference from ``off``; then the cost of one ``ImpressionLog.record`` call alone and how fast
the writer stores rows. Everything comes
from ``benchmarks/bench_serving.py``'s preparation (the district generated, imported into the
store and trained once, under ``--out``).

Usage::

    .venv/bin/python benchmarks/bench_impressions.py                      # 50k / 800, generated
    .venv/bin/python benchmarks/bench_impressions.py --residents 400000 --courses 3000
    .venv/bin/python benchmarks/bench_impressions.py --data DIR --artifacts ART [--db URL]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_serving import _prepare  # noqa: E402

from recommender.data.store import open_store  # noqa: E402
from recommender.serving import ModelHolder, RecommendationService  # noqa: E402
from recommender.serving.experiments import ExperimentBook  # noqa: E402
from recommender.training import artifacts as artifact_files  # noqa: E402

MODES = ("off", "on", "on + A/B")


def _copy_version(artifacts: Path) -> tuple[str, str]:
    """The current version and a copy of it under another name (made once)."""
    current = artifact_files.resolve(artifacts)
    copy = artifacts / f"{current.name}-abcopy"
    if not copy.exists():
        shutil.copytree(current, copy)
    return current.name, copy.name


def _time(service, residents, ms: list[float]) -> None:
    for rid in residents:
        started = time.perf_counter()
        out = service.for_resident(rid, k=10, explain=True)
        ms.append(1000 * (time.perf_counter() - started))
        assert out["items"], rid


def _services(db: str, artifacts: Path, experiment: tuple[str, str]) -> dict:
    """One service per mode over one store and one loaded model; the A/B service's experiment
    runs in the store, the others read experiments from an empty in-memory store, so the modes
    can take turns every few requests without a model load in between."""
    store = open_store(db)
    if store.running_experiment() is not None:
        store.stop_experiment(by="bench_impressions")
    holder = ModelHolder(artifacts, store)
    holder.reload()
    plain, logged, ab = (RecommendationService(store, holder) for _ in MODES)
    no_experiments = open_store("sqlite://")
    plain.experiments = ExperimentBook(no_experiments, holder)
    logged.experiments = ExperimentBook(no_experiments, holder)
    plain.impressions.enabled = False
    ab.experiments.start(*experiment, share=0.5, started_by="bench_impressions")
    return {"off": plain, "on": logged, "on + A/B": ab, "store": store}


def run(args) -> dict:
    db, artifacts = _prepare(args)
    experiment = _copy_version(artifacts)
    services = _services(db, artifacts, experiment)
    store = services.pop("store")
    rng = np.random.default_rng(args.seed)
    users = services["off"].holder.engine.users.index.to_numpy()
    residents = [str(r) for r in rng.choice(users, args.block * args.rounds, replace=False)]
    for service in services.values():  # warm caches, both variants' models, the writer
        _time(service, residents[:100], [])
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        block = residents[round_ * args.block:(round_ + 1) * args.block]
        order = MODES if round_ % 2 == 0 else MODES[::-1]
        for mode in order:  # the same residents in every mode, the modes in turn
            _time(services[mode], block, times[mode])
    written = sum(s.impressions.written + s.impressions.pending for s in services.values())
    services["on + A/B"].experiments.stop("bench_impressions")

    log = services["on"].impressions
    items = [{"course_id": f"K{n:05d}"} for n in range(10)]
    calls = 20_000
    log.flush(timeout=None)
    before = log.written
    started = time.perf_counter()
    for n in range(calls):
        log.record("resident", items, "v", resident_id=f"R{n}", band="elderly")
    record_us = 1e6 * (time.perf_counter() - started) / calls
    started = time.perf_counter()
    log.flush(timeout=None)
    rows_per_s = (log.written - before) / (time.perf_counter() - started + 1e-9)
    for service in services.values():
        service.close()
    store.dispose()
    table = {mode: {"n": len(ms), "mean": float(np.mean(ms)),
                    "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}
             for mode, ms in times.items()}
    return {"db": db, "table": table, "record_us": record_us, "rows_per_s": rows_per_s,
            "written": written, "backlog_calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=50_000)
    parser.add_argument("--courses", type=int, default=800)
    parser.add_argument("--data", help="A district folder (default: generate one under --out).")
    parser.add_argument("--artifacts", help="An artifacts folder with `current`.")
    parser.add_argument("--db", help="Store URL (default: an SQLite file under --out).")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench_serving"))
    parser.add_argument("--block", type=int, default=25, help="Requests per mode in a round.")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(args)
    print(f"\nstore {result['db']}; {args.rounds} rounds of {args.block} requests per mode\n")
    off = result["table"]["off"]["mean"]
    print("| impression log | requests | mean ms | p50 ms | p99 ms | mean - off |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode, row in result["table"].items():
        print(f"| {mode} | {row['n']} | {row['mean']:.3f} | {row['p50']:.3f} | "
              f"{row['p99']:.3f} | {row['mean'] - off:+.3f} |")
    print(f"\none record() call: {result['record_us']:.1f} us; the writer stored a backlog of "
          f"{result['backlog_calls']} rows at {result['rows_per_s']:,.0f} rows/s; "
          f"{result['written']} lists logged in the timed run")


if __name__ == "__main__":
    main()

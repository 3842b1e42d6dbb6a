"""The feature pipeline training runs, at district scale: seconds and peak memory per step.

The steps are those of ``recommender train`` before the model is fitted: categorical ids, the
pipeline's fit (ids, vocabularies, content vectorizer), then
:func:`recommender.training.inputs.prepare_fit` (the temporal validation cut and the model
inputs at the training and the validation cut-off), broken down by the pipeline's own timings.

Target: 400k residents, 3k courses, 10M events -> all features in under 2 minutes
and under 4 GB peak RSS on a 2-core machine.

Usage::

    .venv/bin/python benchmarks/bench_features.py                   # synthetic bundle (numpy)
    .venv/bin/python benchmarks/bench_features.py --residents 20000 --courses 300 --events 500000
    .venv/bin/python benchmarks/bench_features.py --data DIR        # a district / generic folder

With ``--data DIR``: the folder is loaded with ``recommender.data.datasets.load_dataset``; if it
holds no dataset yet, ``recommender.demo.generator.generate_district`` generates a district of the
requested size into it first (Parquet).

Peak RSS per step is the process high-water mark measured from the start of that step (Linux
``/proc/self/clear_refs`` resets it); "peak overall" is the process high-water mark, which
includes the data itself.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.bands import BAND_NAMES as BANDS  # noqa: E402
from features.frames import DataBundle, with_categorical_ids  # noqa: E402
from features.pipeline import FeaturePipeline  # noqa: E402
from recommender.domain import EVENTS  # noqa: E402
from recommender.training.inputs import prepare_fit  # noqa: E402

CATEGORIES = ("handicraft", "intangible_heritage", "skills", "interest")
# Shares of EVENTS ("view", "enroll", "attend", "complete", "rate", "cancel", "no_show").
EVENT_P = (0.35, 0.15, 0.30, 0.05, 0.05, 0.04, 0.06)
WORDS = ("书法", "剪纸", "渔网编织", "越剧", "茶艺", "合唱", "智能手机", "烹饪", "急救", "太极",
         "手工", "绘本", "digital", "cooking", "first aid", "career", "calligraphy", "tea",
         "choir", "smartphone", "health", "paper-cutting", "opera", "crafts")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _strings(dictionary: list[str], codes: np.ndarray) -> pd.Series:
    """A ``str`` column (Arrow-backed, as loaded data is) built without a Python loop."""
    return pd.Series(pd.array(pc.take(pa.array(dictionary), pa.array(codes)), dtype="str"))


def synthesise(n_users: int, n_items: int, n_events: int, seed: int = 0) -> DataBundle:
    """A district-shaped DataBundle drawn with numpy (skewed users and items, 14 months)."""
    rng = np.random.default_rng(seed)
    uid = [f"r{i:07d}" for i in range(n_users)]
    iid = [f"c{i:05d}" for i in range(n_items)]
    comm = [f"comm{i:03d}" for i in range(60)]
    u_comm = rng.integers(0, 60, n_users)
    users = pd.DataFrame({
        "user_id": _strings(uid, np.arange(n_users)),
        "birth_year": rng.integers(1935, 2024, n_users),
        "community_id": _strings(comm, u_comm),
        "street": _strings([f"street{i}" for i in range(10)], u_comm // 6),
        "household_id": _strings([f"h{i:07d}" for i in range(n_users // 2 + 1)],
                                 np.sort(rng.integers(0, n_users // 2 + 1, n_users))),
        "registered_at": pd.Timestamp("2023-01-01")
        + pd.to_timedelta(rng.integers(0, 500, n_users), unit="D"),
    })
    n_words = rng.integers(2, 6, n_items)
    titles = [" ".join(rng.choice(WORDS, k)) for k in n_words]
    items = pd.DataFrame({
        "item_id": _strings(iid, np.arange(n_items)),
        "title": titles,
        "description": [t + " 课程 course for residents" if i % 7 else None
                        for i, t in enumerate(titles)],
        "category": _strings(list(CATEGORIES), rng.integers(0, 4, n_items)),
        "target_bands": _strings([*BANDS, "working_age|elderly"], rng.integers(0, 5, n_items)),
        "tags": ["|".join(rng.choice(WORDS, 2)) for _ in range(n_items)],
        "community_id": _strings(comm, rng.integers(0, 60, n_items)),
        "fee_tier": _strings(["inclusive", "upgraded", "value_added"], rng.integers(0, 3, n_items)),
        "capacity": rng.integers(10, 60, n_items),
        "weekday": rng.integers(0, 7, n_items),
        "start_time": _strings(["09:00", "14:30", "19:00"], rng.integers(0, 3, n_items)),
        "start_date": pd.Timestamp("2024-01-01")
        + pd.to_timedelta(rng.integers(0, 400, n_items), unit="D"),
        "status": _strings(["open", "full", "closed"], rng.integers(0, 3, n_items)),
    })
    # Zipf-like activity: a few residents and courses account for most events.
    u = np.minimum(rng.pareto(1.2, n_events) * n_users / 20, n_users - 1).astype(np.int64)
    u = rng.permutation(n_users)[u]
    i = np.minimum(rng.pareto(1.0, n_events) * n_items / 30, n_items - 1).astype(np.int64)
    ev = rng.choice(len(EVENTS), n_events, p=EVENT_P)
    start = pd.Timestamp("2024-01-01").value
    t = np.sort(start + rng.integers(0, 425 * 86_400, n_events) * 10**9)
    inter = pd.DataFrame({
        "user_id": _strings(uid, u),
        "item_id": _strings(iid, i),
        "timestamp": t.view("datetime64[ns]"),
        "event": _strings(list(EVENTS), ev),
        "weight": 1.0,
        "value": np.where(ev == EVENTS.index("rate"), rng.integers(1, 6, n_events), np.nan),
    })
    return DataBundle(inter, users, items, name="synthetic-district", kind="district")


def load(args) -> DataBundle:
    if args.data is None:
        return synthesise(args.residents, args.courses, args.events, args.seed)
    from recommender.data.datasets import load_dataset

    folder = Path(args.data)
    has_data = folder.is_dir() and any(
        (folder / f).exists() for f in ("participations.csv", "participations.parquet",
                                        "interactions.csv"))
    if not has_data:
        from recommender.demo.generator import generate_district

        print(f"generating a district into {folder} ...", flush=True)
        generate_district(folder, residents=args.residents, courses=args.courses,
                          seed=args.seed, fmt="parquet",
                          events_per_resident=args.events / args.residents)
    return load_dataset(folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=400_000)
    ap.add_argument("--courses", type=int, default=3_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="dataset folder (generated if empty)")
    ap.add_argument("--half-life", type=float, default=None, help="interaction decay (days)")
    args = ap.parse_args(argv)

    rows: list[tuple[str, float, float]] = []
    state: dict = {}

    def step(name: str, fn):
        _reset_peak()
        t0 = time.perf_counter()
        state[name] = fn()
        rows.append((name, time.perf_counter() - t0, _peak_mb()))
        print(f"  {name:<27} {rows[-1][1]:8.2f} s {rows[-1][2]:9.0f} MB", flush=True)
        return state[name]

    print("step                          seconds   peak RSS", flush=True)
    loaded = step("load data", lambda: load(args))
    bundle = step("categorical ids", lambda: with_categorical_ids(loaded))
    pipeline = FeaturePipeline(half_life_days=args.half_life)
    step("fit: ids, vocabulary, text", lambda: pipeline.fit(bundle))
    data = step("prepare_fit: both cuts", lambda: prepare_fit(bundle, pipeline))

    feat = [r for r in rows if r[0] != "load data"]
    total = sum(r[1] for r in feat)
    peak_all = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   max(r[2] for r in rows))
    print("-" * 53)
    print(f"  {'features total':<27} {total:8.2f} s {max(r[2] for r in feat):9.0f} MB"
          "  (max step peak, data included)")
    print(f"  {'peak overall':<27} {'':>8}   {peak_all:9.0f} MB")
    print("\npipeline steps (seconds, both cuts together):")
    for name, secs in pipeline.timings_.items():
        print(f"  {name:<27} {secs:8.2f} s")
    full, mapping = data.full, pipeline.id_mapping_
    print(f"\ndata: {len(bundle.interactions):,} events, {mapping.n_users:,} users, "
          f"{mapping.n_items:,} items; X nnz {full.X.nnz:,} (validation cut "
          f"{data.validation.X.nnz:,}); content {full.item_features.shape} "
          f"nnz {full.item_features.nnz:,}")
    ok = total < 120 and peak_all < 4096
    print(f"target (< 120 s, < 4096 MB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

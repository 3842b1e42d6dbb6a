"""Does the calibrated model forecast per-course demand better than last period's count?

On a temporal split of each dataset (the temporal protocol's cut, newcomers kept), the hybrid
is fitted as ``recommender train`` fits it on the part before the cut, and each course's new
take-ups over the period after the cut are forecast as the sum of every resident's calibrated
take-up probability (:func:`recommender.training.calibration.demand_check`). Printed: the
weighted absolute percentage error (``sum |forecast - actual| / sum actual``) of the model and
of the naive forecast "as many as in the previous period of the same length", and their ratio
(target: at most 0.8).

Usage::

    recommender generate --out DIR --residents 6000 --courses 200 --seed 3 --as-of 2026-11-28
    recommender datasets oulad ../shared/datasets/oulad --out OULAD_DIR
    .venv/bin/python benchmarks/bench_calibration.py DIR OULAD_DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.data.datasets import load_dataset  # noqa: E402
from recommender.training.calibration import demand_check  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", help="Dataset folders (district or generic).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{'dataset':<18}{'horizon d':>10}{'val d':>7}{'courses':>9}{'actual':>9}{'forecast':>10}"
          f"{'naive':>8}{'WAPE model':>12}{'WAPE naive':>12}{'ratio':>7}{'s':>6}")
    for folder in args.datasets:
        t0 = time.perf_counter()
        bundle = load_dataset(folder)
        r = demand_check(bundle, seed=args.seed)
        print(f"{bundle.name[:17]:<18}{r['horizon_days']:>10.1f}{r['validation_days']:>7.1f}"
              f"{r['courses']:>9}"
              f"{r['actual']:>9.0f}{r['forecast']:>10.1f}{r['naive']:>8.0f}"
              f"{r['wape_model']:>12.3f}{r['wape_naive']:>12.3f}{r['ratio']:>7.2f}"
              f"{time.perf_counter() - t0:>6.0f}", flush=True)


if __name__ == "__main__":
    main()

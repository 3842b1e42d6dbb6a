"""Which validation cut a served model should learn from: warm users only, or newcomers too.

Fits the hybrid the way ``recommender train`` does on the training part of a dataset's temporal
split, once with each validation cut, and scores the same model on the warm (temporal) and the
cold (cold-user) test users of that split. Prints nDCG@10 (docs/decisions.md, "The served
model's validation cut includes newcomers").

Usage::

    .venv/bin/python benchmarks/bench_validation_cut.py DATASET_DIR [DATASET_DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.pipeline import FeaturePipeline  # noqa: E402
from recommender.data.datasets import load_dataset  # noqa: E402
from recommender.evaluation.protocols import make_split  # noqa: E402
from recommender.training.benchmark import Evaluator  # noqa: E402
from recommender.training.inputs import fit_hybrid, prepare_fit  # noqa: E402


def compare(folder: str, seed: int = 0) -> list[tuple[str, str, int, float, float]]:
    bundle = load_dataset(folder)
    warm, cold = make_split(bundle, "temporal"), make_split(bundle, "cold-user")
    pipeline = FeaturePipeline().fit(bundle)
    rows = []
    for warm_only in (True, False):
        data = prepare_fit(warm.train, pipeline, "temporal", warm_only=warm_only)
        model, _ = fit_hybrid(data, seed=seed)
        mapping, full = data.mapping, data.full
        rows.append((bundle.name, "warm only" if warm_only else "with newcomers",
                     len(data.split.users), Evaluator(warm, mapping, full).score(model)["ndcg@10"],
                     Evaluator(cold, mapping, full).score(model)["ndcg@10"]))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", help="Dataset folders (district or generic).")
    args = parser.parse_args(argv)
    print(f"{'dataset':<20}{'validation cut':<18}{'val users':>10}{'warm test':>11}"
          f"{'cold test':>11}")
    for folder in args.datasets:
        for name, cut, users, warm, cold in compare(folder):
            print(f"{name:<20}{cut:<18}{users:>10}{warm:>11.4f}{cold:>11.4f}", flush=True)


if __name__ == "__main__":
    main()

"""Ablation of the hybrid: which of its parts earn their place, on one dataset and protocol.

Every variant is fitted exactly as ``recommender benchmark`` fits the hybrid (same split, same
validation cut, same candidates, the component parameters tuned for the matching baselines) and
scored on the same test users; EASE and item-kNN, tuned the same way, are the reference rows.
Columns: test nDCG@10; the re-ranker's nDCG@10 on the held-out validation users (the figure the
guard compares with every single component); what ranks the candidates after the guard; and
the candidate recall, the share of test positives that are among the hybrid's candidates at all
(the ceiling any re-ranking can reach).

Usage::

    .venv/bin/python benchmarks/bench_ablation.py DATASET [--protocol temporal] [--seed 0]

Some variants replace one private step of :class:`models.hybrid.HybridRanker` in a subclass
below (an ablation has to reach inside); none of them is a product setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.hybrid import SIGNALS, HybridRanker, signals  # noqa: E402
from recommender.data.datasets import load_dataset  # noqa: E402
from recommender.evaluation.candidates import split_candidates  # noqa: E402
from recommender.evaluation.protocols import make_split  # noqa: E402
from recommender.training import inputs  # noqa: E402
from recommender.training.benchmark import (  # noqa: E402
    Evaluator,
    hybrid_params_from,
    run_benchmark,
)
from recommender.training.recipe import pipeline_for  # noqa: E402


class NoRefit(HybridRanker):
    """Serves the components fitted before the validation cut (no refit on all the data)."""

    def _fit_stage_one(self, X, features, temporal, pair_age=None, metadata=None):
        if getattr(self, "_stage_one_done", False):
            self.item_temporal_ = temporal
            return
        super()._fit_stage_one(X, features, temporal, pair_age, metadata)
        self._stage_one_done = True


class RawScores(HybridRanker):
    """Every user's rows carry the components' raw scores, not their place among the user's
    candidates (what the rows held before the placement)."""

    def _candidates(self, users, X, ctx, allowed, *rest):
        r, i, rows_of = super()._candidates(users, X, ctx, allowed, *rest)

        def raw(select):
            placed, signals._placed = signals._placed, lambda values, *rest: values
            try:
                return rows_of(select)
            finally:
                signals._placed = placed

        return r, i, raw


def without(*names: str) -> type[HybridRanker]:
    """A hybrid whose trees never see the signals ``names`` (their columns are zero everywhere)."""
    columns = [SIGNALS.index(s) for s in names]

    class Without(HybridRanker):
        # Training builds rows for the pairs it keeps, serving for all: both go through here.
        def _candidates(self, users, X, ctx, allowed, *rest):
            r, i, rows_of = super()._candidates(users, X, ctx, allowed, *rest)

            def blanked(select):
                rows = rows_of(select)
                rows[:, columns] = 0.0
                return rows

            return r, i, blanked

    return Without


RECENCY = ("item_recent", "item_age_days", "item_idle_days")
VARIANTS = [
    ("hybrid as served (guard on)", HybridRanker, {}, True),
    ("trees only (guard off)", HybridRanker, {}, False),
    ("+ ALS component (64 factors)", HybridRanker, {"als_factors": 64}, False),
    ("20 candidates per component", HybridRanker, {"n_candidates": 20}, False),
    ("100 candidates per component", HybridRanker, {"n_candidates": 100}, False),
    ("10 negatives per user", HybridRanker, {"negatives_per_user": 10}, False),
    ("every negative kept", HybridRanker, {"negatives_per_user": 100_000}, False),
    ("no refit after the validation cut", NoRefit, {}, False),
    ("raw component scores (not placed)", RawScores, {}, False),
    ("no recency signals", without(*RECENCY), {}, False),
    ("no history-size signal", without("history_size"), {}, False),
    ("no popularity signals", without("pop", "pop_rank", "pop_band", "pop_band_rank",
                                      "pop_local", "pop_local_rank", "item_log_count"), {},
     False),
]


def candidate_recall(model: HybridRanker, evaluator: Evaluator) -> float:
    """Share of the test positives that are among the hybrid's candidates of their user."""
    found = total = 0
    allowed = evaluator.candidates.mask()
    for start in range(0, evaluator.users.size, 1000):
        users = evaluator.users[start:start + 1000]
        X = evaluator.inputs.X[users]
        r, i, _ = model._pair_rows(users, X, model._context(users), allowed)
        relevant = evaluator.relevant[start:start + 1000]
        found += int(np.asarray(relevant[r, i]).ravel().sum())
        total += int(relevant.nnz)
    return found / total if total else float("nan")


def fit_variant(cls, data, params: dict, seed: int, guard_on: bool) -> tuple[HybridRanker, dict]:
    model = cls(random_state=seed, **params)
    model.fit(data.full.X, validation=(data.validation.X, data.target,
                                       data.validation.item_temporal, data.validation.pair_age),
              validation_candidates=data.candidates, pair_age=data.full.pair_age,
              **data.full.side())
    checked = inputs.guard(model, data.target)
    if not guard_on:
        model.serve_with("reranker")
    return model, checked


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--protocol", default="temporal")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=30.0, help="tuning seconds per baseline")
    args = parser.parse_args(argv)
    bundle = load_dataset(args.dataset)
    reference = run_benchmark(bundle, args.protocol, seed=args.seed, budget_s=args.budget,
                              log=lambda m: None,
                              models=["ease", "item-knn", "popularity-recent"])["models"]
    params = hybrid_params_from({m: r["params"] for m, r in reference.items() if m != "hybrid"})
    split = make_split(bundle, args.protocol, seed=args.seed)
    pipeline = pipeline_for(params).fit(bundle)
    data = inputs.prepare_fit(split.train, pipeline, args.protocol, seed=args.seed + 1,
                              warm_only=True)
    evaluator = Evaluator(split, data.mapping, data.full,
                          split_candidates(split, data.mapping, bundle.items))
    print(f"{args.dataset.name}, {args.protocol}: {evaluator.users.size} test users; "
          f"EASE {reference['ease']['ndcg@10']:.4f}, item-kNN "
          f"{reference['item-knn']['ndcg@10']:.4f} (tuned, same candidates)")
    head = f"{'variant':<36}{'test nDCG':>10}{'held-out':>10}  {'ranked by':<10}{'recall':>8}"
    print(head + f"{'fit s':>8}\n" + "-" * (len(head) + 8))
    for name, cls, extra, guard_on in VARIANTS:
        started = time.perf_counter()
        model, checked = fit_variant(cls, data, {**params, **extra}, args.seed, guard_on)
        fit_s = time.perf_counter() - started
        ndcg = evaluator.score(model)["ndcg@10"]
        held = checked["ndcg@10"].get("reranker", float("nan"))
        print(f"{name:<36}{ndcg:>10.4f}{held:>10.4f}  {model.served_by:<10}"
              f"{candidate_recall(model, evaluator):>8.3f}{fit_s:>8.1f}")


if __name__ == "__main__":
    main()

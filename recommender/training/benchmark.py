"""The benchmark: the hybrid against the standard baselines on one protocol (docs/evaluation.md).

Every model is tuned the same way: a small grid, each point fitted on the validation split's
training part (a split of the *training* data, never the test part) and scored by nDCG@10 on
its held-out part, within a time budget per model. The best point is refitted on the whole
training part and evaluated once on the test part. The hybrid's components take the values
tuned for the matching baselines, and its re-ranker learns on the same validation split.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from features.bands import BAND_NAMES
from features.frames import DataBundle
from features.ids import IdMapping
from features.pipeline import FeaturePipeline, ModelInputs
from models.base import Recommender
from models.collaborative import ALS, BPR
from models.ease import EASE
from models.hybrid import HybridRanker
from models.neighbours import ItemKNN
from models.popularity import CategoryPopularity, Popularity
from recommender.evaluation.metrics import evaluate, relevance_matrix
from recommender.evaluation.protocols import Split, make_split
from recommender.training.inputs import cold_candidates, fit_hybrid, prepare_fit

K = 10
METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


@dataclass
class Baseline:
    """A baseline: how to build it from params, its grid, and which side info it reads."""

    name: str
    factory: Callable[..., Recommender]
    grid: dict[str, list]
    groups: str | None = None  # "band": popularity within the user's age band
    categories: bool = False  # reads item_category (category popularity)


BASELINES = (
    Baseline("popularity", Popularity, {}),
    Baseline("popularity-by-band", Popularity, {"shrinkage": [1.0, 10.0]}, groups="band"),
    Baseline("als", ALS, {"factors": [32, 64, 128], "regularization": [0.01, 0.1],
                          "iterations": [15]}),
    Baseline("bpr", BPR, {"factors": [32, 64], "learning_rate": [0.01, 0.05],
                          "iterations": [100]}),
    Baseline("item-knn", ItemKNN, {"k": [20, 100, 400]}),
    Baseline("ease", EASE, {"l2": [10.0, 50.0, 200.0, 1000.0]}),
    # The cold-item reference: a new course ranked by its category's popularity in
    # the resident's band. Run on every protocol; it counts among the baselines to beat.
    Baseline("category-popularity", CategoryPopularity, {"shrinkage": [1.0, 10.0]},
             groups="band", categories=True),
)


def _grid(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())] or [{}]


class Evaluator:
    """Ranks a split's users with a fitted model and scores the lists."""

    def __init__(self, split: Split, mapping: IdMapping, inputs: ModelInputs,
                 batch: int = 2000):
        self.users = mapping.user_index(split.users)
        if (self.users < 0).any():
            raise ValueError("split users missing from the id mapping")
        self.relevant = relevance_matrix(split.test_relevant, split.users, mapping.item_ids_)
        self.inputs = inputs
        self.candidates = cold_candidates(split, mapping)
        self.bands = np.array([BAND_NAMES[b] if b >= 0 else "unknown"
                               for b in inputs.user_band[self.users]], dtype=object)
        self.batch = batch

    def side_for(self, model: Recommender, users: np.ndarray, groups: str | None) -> dict:
        if isinstance(model, HybridRanker):
            return {"user_band": self.inputs.user_band[users],
                    "user_community": self.inputs.user_community[users],
                    "user_attributes": self.inputs.user_attributes[users]}
        if groups == "band":
            return {"user_groups": self.inputs.user_band[users]}
        return {}

    def recommend(self, model: Recommender, groups: str | None = None) -> np.ndarray:
        out = []
        for start in range(0, self.users.size, self.batch):
            users = self.users[start:start + self.batch]
            rows = self.inputs.X[users]
            ids, _ = model.recommend(users, rows, n=K, filter_seen=True,
                                     candidates=self.candidates,
                                     **self.side_for(model, users, groups))
            out.append(ids)
        return np.vstack(out) if out else np.zeros((0, K), dtype=np.int32)

    def score(self, model: Recommender, groups: str | None = None) -> dict:
        recommended = self.recommend(model, groups)
        return evaluate(recommended, self.relevant, self.inputs.X.shape[1],
                        user_bands=self.bands, k=K)


def _fit(model: Recommender, inputs: ModelInputs, baseline: Baseline) -> Recommender:
    side = {}
    if baseline.groups == "band":
        side["user_groups"] = inputs.user_band
    if baseline.categories:
        side["item_category"] = inputs.item_category
    return model.fit(inputs.X, **side)


def tune(baseline: Baseline, val_inputs: ModelInputs, val_eval: Evaluator,
         budget_s: float, log: Callable[[str], None]) -> tuple[dict, list[dict]]:
    """Best params of ``baseline`` by validation nDCG@10 (grid order, within ``budget_s``)."""
    trials = []
    start = time.perf_counter()
    for params in _grid(baseline.grid):
        if trials and time.perf_counter() - start > budget_s:
            log(f"  {baseline.name}: time budget reached after {len(trials)} settings")
            break
        model = _fit(baseline.factory(**params), val_inputs, baseline)
        ndcg = val_eval.score(model, baseline.groups)["ndcg@10"]
        trials.append({"params": params, "val_ndcg@10": ndcg})
    best = max(trials, key=lambda t: (np.nan_to_num(t["val_ndcg@10"], nan=-1.0)))
    return best["params"], trials


def run_benchmark(bundle: DataBundle, protocol: str, seed: int = 0, budget_s: float = 120.0,
                  log: Callable[[str], None] = print, models: list[str] | None = None) -> dict:
    """Run every baseline and the hybrid on ``protocol``; return the benchmark's JSON document."""
    t0 = time.perf_counter()
    split = make_split(bundle, protocol, seed=seed)
    # Ids and vocabularies of the whole dataset, so that test users and items keep an index;
    # no feature reads an event after the training cut.
    pipeline = FeaturePipeline().fit(bundle)
    data = prepare_fit(split.train, pipeline, protocol, seed=seed + 1, warm_only=True)
    mapping, full, val_inputs, val = data.mapping, data.full, data.validation, data.split
    test_eval = Evaluator(split, mapping, full)
    val_eval = Evaluator(val, mapping, val_inputs)
    log(f"{protocol}: {len(split.users)} test users, {len(val.users)} validation users, "
        f"{mapping.n_items} items (prepared in {time.perf_counter() - t0:.1f}s)")
    results: dict[str, dict] = {}
    tuned: dict[str, dict] = {}
    for baseline in BASELINES:
        if models and baseline.name not in models:
            continue
        params, trials = tune(baseline, val_inputs, val_eval, budget_s, log)
        tuned[baseline.name] = params
        t = time.perf_counter()
        model = _fit(baseline.factory(**params), full, baseline)
        fit_s = time.perf_counter() - t
        results[baseline.name] = {**test_eval.score(model, baseline.groups), "fit_s": fit_s,
                                  "params": params, "tuning": trials}
        log(f"  {baseline.name:<20} nDCG@10 {results[baseline.name]['ndcg@10']:.4f}  "
            f"params {params}  fit {fit_s:.1f}s")
    hybrid_params = hybrid_params_from(tuned)
    hybrid, info = fit_hybrid(data, hybrid_params, seed)
    fit_s = info["fit_s"]
    results["hybrid"] = {**test_eval.score(hybrid), "fit_s": fit_s, "params": hybrid_params,
                         "guard": info["guard"]}
    log(f"  {'hybrid':<20} nDCG@10 {results['hybrid']['ndcg@10']:.4f}  fit {fit_s:.1f}s  "
        f"ranked by {info['guard']['served_by']}")
    return {
        "protocol": protocol, "dataset": bundle.name, "seed": seed,
        "split": {"test_users": int(len(split.users)), "validation_users": int(len(val.users)),
                  "items": int(mapping.n_items), "train_interactions":
                  int(len(split.train.interactions))},
        "models": results, "seconds": time.perf_counter() - t0,
    }


def hybrid_params_from(tuned: dict[str, dict]) -> dict:
    """The hybrid's component params: those tuned for the matching baselines.

    ALS is not a hybrid component by default (see ``HybridRanker``), so its tuning is not
    carried over."""
    params: dict = {}
    if "ease" in tuned:
        params["ease_l2"] = tuned["ease"].get("l2", 200.0)
    if "item-knn" in tuned:
        params["knn_neighbours"] = tuned["item-knn"].get("k", 100)
    return params


def format_table(result: dict) -> str:
    """The benchmark as a plain-text table, best nDCG first, then nDCG per age band."""
    models = result["models"]
    names = sorted(models, key=lambda m: -np.nan_to_num(models[m]["ndcg@10"], nan=-1))
    head = f"{'model':<20}" + "".join(f"{m:>14}" for m in (*METRICS, "fit_s"))
    lines = [f"protocol {result['protocol']} on {result['dataset']} "
             f"({result['split']['test_users']} test users, {result['split']['items']} items)",
             head, "-" * len(head)]
    for name in names:
        row = models[name]
        lines.append(f"{name:<20}" + "".join(f"{row[m]:>14.4f}" for m in METRICS)
                     + f"{row['fit_s']:>14.1f}")
    bands = sorted({b for row in models.values() for b in row.get("by_band", {})},
                   key=lambda b: (BAND_NAMES + ("unknown",)).index(b)
                   if b in BAND_NAMES + ("unknown",) else 99)
    if bands:
        lines += ["", "nDCG@10 by age band (users)",
                  f"{'model':<20}" + "".join(f"{b:>16}" for b in bands)]
        for name in names:
            by = models[name].get("by_band", {})
            cells = "".join(
                f"{by[b]['ndcg@10']:>9.4f} ({by[b]['users']:>4})" if b in by else f"{'-':>16}"
                for b in bands)
            lines.append(f"{name:<20}{cells}")
    best_base = max((n for n in models if n != "hybrid"),
                    key=lambda m: np.nan_to_num(models[m]["ndcg@10"], nan=-1), default=None)
    if best_base:
        lines += ["", f"hybrid / best baseline ({best_base}): "
                      f"{_ratio(models['hybrid'], models[best_base])}"]
    if "popularity-by-band" in models:
        lines.append(f"hybrid / popularity-by-band: "
                     f"{_ratio(models['hybrid'], models['popularity-by-band'])}")
    return "\n".join(lines)


def _ratio(a: dict, b: dict) -> str:
    if b["ndcg@10"] > 0:
        return f"{a['ndcg@10'] / b['ndcg@10']:.3f}x"
    return "inf (baseline nDCG@10 is 0)" if a["ndcg@10"] > 0 else "n/a (both 0)"

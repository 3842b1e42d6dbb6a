"""The benchmark: the hybrid against the standard baselines on one protocol (docs/evaluation.md).

Every model is tuned the same way: a small grid, each point fitted on the validation split's
training part (a split of the *training* data, never the test part) and scored by nDCG@10 on
its held-out part, within a time budget per model. The best point is refitted on the whole
training part and evaluated once on the test part. The hybrid's components take the values
tuned for the matching baselines, and its re-ranker learns on the same validation split.

Every model ranks the same candidates, as the service would offer them at the cut
(:mod:`recommender.evaluation.candidates`), on the test split and on the validation split
alike. The random protocols can be repeated over seeds (``repeats``), for means and standard
deviations instead of one draw.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.bands import BAND_NAMES
from features.frames import DataBundle
from features.ids import IdMapping
from features.pipeline import FeaturePipeline, ModelInputs
from models.base import Recommender, batch_size
from models.collaborative import ALS, BPR
from models.ease import EASE
from models.factor_autoencoder import FactorAutoencoder
from models.hybrid import HybridRanker
from models.lightfm_hybrid import LightFMHybrid
from models.lightfm_hybrid import missing as lightfm_missing
from models.neighbours import ItemKNN
from models.popularity import CategoryPopularity, Popularity
from models.weighting import WEIGHTINGS, value_scale, weighed
from recommender.evaluation.candidates import Candidates, describe, split_candidates
from recommender.evaluation.metrics import evaluate, paired_band_gaps, relevance_matrix
from recommender.evaluation.protocols import Split, make_split
from recommender.training.inputs import FitData, fit_hybrid, prepare_fit
from recommender.training.report import BAND_ORDER, METRICS, format_table, summarize

__all__ = ["BASELINES", "METRICS", "Baseline", "Evaluator", "ProtocolRun", "check_repeats",
           "distinct_settings", "fit_baseline", "format_table", "grid_settings",
           "hybrid_params_from", "left_out",
           "prepare_run", "record_band_gaps", "run_baselines", "run_benchmark", "tune"]

K = 10
# Protocols whose split is a time cut: the same for every seed, so never repeated.
TIME_BASED = ("temporal", "cold-user")


@dataclass
class Baseline:
    """A baseline: how to build it from params, its grid, and which side info it reads."""

    name: str
    factory: Callable[..., Recommender]
    grid: dict[str, list]
    groups: str | None = None  # "band": popularity within the user's age band
    categories: bool = False  # reads item_category (category popularity)
    recency: bool = False  # reads pair_age (popularity over a recent window)
    seeded: bool = False  # takes random_state: the run's seed
    # reads the users' band and profile attributes and the items' metadata (LightFM)
    profile: bool = False
    # reads the items' metadata alone (the factor autoencoder's output embeddings)
    metadata: bool = False
    # why the baseline cannot run here (an optional library missing), or None
    missing: Callable[[], str | None] | None = None


BASELINES = (
    Baseline("popularity", Popularity, {}),
    # RecTools' PopularModel(period=...): distinct users per item over the last window days.
    Baseline("popularity-recent", Popularity, {"window": [7.0, 30.0, 90.0, 365.0]},
             recency=True),
    Baseline("popularity-by-band", Popularity, {"shrinkage": [1.0, 10.0]}, groups="band"),
    # Both at once: what the user's age band takes up now (a band's recent counts, shrunk
    # towards everyone's recent counts), the simple answer for a newcomer of a known age.
    Baseline("popularity-recent-by-band", Popularity,
             {"window": [7.0, 30.0, 90.0, 365.0], "shrinkage": [1.0, 10.0, 100.0]},
             groups="band", recency=True),
    # Each list starts with the value tried first (a grid is tried one departure from its
    # first values at a time: grid_settings). How the matrix's values are read
    # (models/weighting.py) comes last, so that among single departures it is tried first.
    Baseline("als", ALS, {"factors": [32, 64, 128], "regularization": [0.01, 0.1],
                          "iterations": [15], "weighting": list(WEIGHTINGS)}, seeded=True),
    Baseline("bpr", BPR, {"factors": [32, 64], "learning_rate": [0.01, 0.05],
                          "iterations": [100]}, seeded=True),
    Baseline("item-knn", ItemKNN, {"k": [20, 100, 400], "weighting": list(WEIGHTINGS)}),
    # l2 200 first: the middle of the grid, EASE's default; a large catalogue's budget may
    # allow only a few of EASE's fits (a 9,000-item one, three in 60 s).
    Baseline("ease", EASE, {"l2": [200.0, 50.0, 1000.0, 10.0], "weighting": list(WEIGHTINGS)}),
    # A low-rank autoencoder with a softmax loss (models/factor_autoencoder.py); 20 epochs
    # first, as the hybrid fits it, since a pass over 200,000 users takes seconds.
    Baseline("factor-autoencoder", FactorAutoencoder,
             {"epochs": [20, 60], "factors": [64, 128], "l2": [1e-4, 1e-5, 1e-3],
              "weighting": list(WEIGHTINGS)}, seeded=True, metadata=True),
    # The cold-item reference: a new course ranked by its category's popularity in
    # the resident's band. Run on every protocol; it counts among the baselines to beat.
    Baseline("category-popularity", CategoryPopularity, {"shrinkage": [1.0, 10.0]},
             groups="band", categories=True),
    # The hybrid of the library most used for cold start (models/lightfm_hybrid.py): WARP
    # over identities plus band, profile and item metadata. More epochs than LightFM's
    # examples use: on MovieLens-100k's validation split 60 epochs gave nDCG@10 0.255 where
    # 30 gave 0.215; with side features first, then without (plain WARP factorisation).
    Baseline("lightfm", LightFMHybrid, {"factors": [64, 128], "epochs": [60, 20, 120],
                                        "side_features": [True, False]},
             seeded=True, profile=True, missing=lightfm_missing),
)


def grid_settings(grid: dict[str, list]) -> list[dict]:
    """Every setting of ``grid``, one departure at a time: every key at its first value, then
    the settings where one key leaves its first value (the last key's first), then two, and so
    on; within a count, product order. A budget that runs out has so tried each value of each
    key, the others at their first value, before any combination of them, where plain product
    order would have spent it on the last keys' values against the first key's first value."""
    keys = list(grid)
    positions = itertools.product(*(range(len(values)) for values in grid.values()))
    order = sorted(positions, key=lambda p: sum(i > 0 for i in p))  # stable: product order
    return [{k: grid[k][i] for k, i in zip(keys, p)} for p in order] or [{}]


def distinct_settings(grid: dict[str, list], X) -> list[dict]:
    """The grid's settings, without those whose ``weighting`` reads ``X`` exactly as an
    earlier weighting does: a matrix of ones is the same matrix raw, binary and log, so on
    data without weights the grid costs what it did before weightings existed."""
    settings = grid_settings(grid)
    if "weighting" not in grid:
        return settings
    scale, seen, same_as = value_scale(X), [], {}
    for weighting in grid["weighting"]:
        data = weighed(X, weighting, scale).data
        same_as[weighting] = next((w for w, d in seen if np.array_equal(d, data)), weighting)
        seen.append((weighting, data))
    return [s for s in settings if same_as[s["weighting"]] == s["weighting"]]


class Evaluator:
    """Ranks a split's users with a fitted model, over the split's candidates, and scores them.

    Parameters
    ----------
    split : Split
    mapping : IdMapping
    inputs : ModelInputs
        The history the lists are made from (the split's training part).
    candidates : Candidates, optional
        What every model ranks; default :func:`split_candidates` of ``split``.
    batch : int, optional
        Users ranked per call: 2,000, fewer for a large catalogue (:func:`models.base.batch_size`).
    tie_seed : int, default 0
        Seed of the order given to equal scores, drawn per user and the same for every model
        (see :meth:`rank`).
    """

    def __init__(self, split: Split, mapping: IdMapping, inputs: ModelInputs,
                 candidates: Candidates | None = None, batch: int | None = None,
                 tie_seed: int = 0):
        self.users = mapping.user_index(split.users)
        if (self.users < 0).any():
            raise ValueError("split users missing from the id mapping")
        self.relevant = relevance_matrix(split.test_relevant, split.users, mapping.item_ids_)
        self.inputs = inputs
        if candidates is None:
            candidates = split_candidates(split, mapping, split.train.items)
        self.candidates = candidates
        self.allowed = candidates.mask()
        self.bands = np.array([BAND_NAMES[b] if b >= 0 else "unknown"
                               for b in inputs.user_band[self.users]], dtype=object)
        self.batch = batch_size(inputs.X.shape[1], 2000) if batch is None else batch
        self.tie_seed = tie_seed

    def side_for(self, model: Recommender, users: np.ndarray, groups: str | None,
                 keys: np.ndarray) -> dict:
        if isinstance(model, HybridRanker):
            # The hybrid draws its own candidates from the allowed items (as it learned to on
            # the validation cut); ``candidates=`` alone would only mask its pool afterwards.
            # It orders its own equal scores where the trees rank (band popularity, then
            # popularity); what still ties it would order by item id: by the tie keys here,
            # as every other model.
            return {"user_band": self.inputs.user_band[users],
                    "user_community": self.inputs.user_community[users],
                    "user_attributes": self.inputs.user_attributes[users],
                    "allowed": self.allowed, "tie_order": keys}
        if groups == "band":
            return {"user_groups": self.inputs.user_band[users]}
        return {}

    def recommend(self, model: Recommender, groups: str | None = None) -> np.ndarray:
        return self.rank(model, groups)[0]

    def rank(self, model: Recommender, groups: str | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """The users' top-``K`` item indices and their scores (``-1`` / ``-inf`` padding).

        Equal scores are ordered at random per user, not by item index: a model that scores
        items alike (every baseline scores cold items alike; category popularity scores a
        category's items alike) is then measured for what it knows, not for where the ids
        happened to sort (one held-out set of a 240-course dataset gave such a fixed order
        nDCG@10 0.38 against 0.04-0.08 for the other seeds). Over thousands of users this is
        the figure's expectation over tie orders; ``tie_seed`` makes it repeatable. The
        keys are drawn per user and item and are the same for every model (``tie_keys``), so
        models that score the same items alike list them alike.
        """
        ids_out, scores_out = [], []
        tie_rng = np.random.default_rng(self.tie_seed)
        for start in range(0, self.users.size, self.batch):
            users = self.users[start:start + self.batch]
            rows = self.inputs.X[users]
            # One random key per user and item orders every model's equal scores: the same
            # keys for every model, so two models that know equally little list alike.
            keys = tie_rng.random((users.size, rows.shape[1]))
            ids, scores = model.recommend(users, rows, n=K, filter_seen=True,
                                          candidates=self.candidates.indices, tie_keys=keys,
                                          **self.side_for(model, users, groups, keys))
            ids_out.append(ids)
            scores_out.append(scores)
        if not ids_out:
            return np.zeros((0, K), dtype=np.int32), np.zeros((0, K), dtype=np.float32)
        return np.vstack(ids_out), np.vstack(scores_out)

    def score(self, model: Recommender, groups: str | None = None) -> dict:
        return self.metrics(self.recommend(model, groups))

    def metrics(self, recommended: np.ndarray) -> dict:
        """The metrics of lists :meth:`recommend` made, overall and per age band."""
        return evaluate(recommended, self.relevant, self.inputs.X.shape[1],
                        user_bands=self.bands, k=K)


def _fit(model: Recommender, inputs: ModelInputs, baseline: Baseline) -> Recommender:
    side = {}
    if baseline.groups == "band":
        side["user_groups"] = inputs.user_band
    if baseline.categories:
        side["item_category"] = inputs.item_category
    if baseline.recency:
        if inputs.pair_age is None:
            raise ValueError(f"baseline {baseline.name!r} needs the pairs' ages: build the "
                             "inputs with FeaturePipeline(pair_ages=True)")
        side["pair_age"] = inputs.pair_age
    if baseline.metadata:
        side["item_features"] = inputs.item_metadata
    if baseline.profile:
        side.update(user_band=inputs.user_band, user_attributes=inputs.user_attributes,
                    item_features=inputs.item_metadata)
    return model.fit(inputs.X, **side)


def _build(baseline: Baseline, params: dict, seed: int) -> Recommender:
    return baseline.factory(**params, **({"random_state": seed} if baseline.seeded else {}))


def fit_baseline(baseline: Baseline, params: dict, inputs: ModelInputs,
                 seed: int = 0) -> Recommender:
    """``baseline`` with ``params`` (seeded with ``seed`` if it takes one), fitted on
    ``inputs`` with the side information it reads."""
    return _fit(_build(baseline, params, seed), inputs, baseline)


def tune(baseline: Baseline, val_inputs: ModelInputs, val_eval: Evaluator,
         budget_s: float, log: Callable[[str], None], seed: int = 0,
         settings: int | None = None) -> tuple[dict, list[dict]]:
    """Best params of ``baseline`` by validation nDCG@10 (grid order, within ``budget_s``, or,
    given ``settings``, the first ``settings`` points of the grid whatever they take: a count
    does not depend on how busy the machine is, a time budget does).

    Seeded baselines (ALS, BPR) get ``random_state=seed``. Returns the best params and every
    trial ``{"params", "val_ndcg@10"}``.
    """
    trials = []
    start = time.perf_counter()
    for params in distinct_settings(baseline.grid, val_inputs.X):
        if settings is not None and len(trials) >= settings:
            break
        if settings is None and trials and time.perf_counter() - start > budget_s:
            log(f"  {baseline.name}: time budget reached after {len(trials)} settings")
            break
        model = fit_baseline(baseline, params, val_inputs, seed)
        ndcg = val_eval.score(model, baseline.groups)["ndcg@10"]
        trials.append({"params": params, "val_ndcg@10": ndcg})
    best = max(trials, key=lambda t: (np.nan_to_num(t["val_ndcg@10"], nan=-1.0)))
    return best["params"], trials


def check_repeats(protocol: str, repeats: int) -> None:
    """Raise ``ValueError`` unless ``repeats`` runs of ``protocol`` make sense.

    A time-based protocol (temporal, cold-user) cuts at a quantile of the timestamps: every
    seed gives the same split, so repeating it would only repeat the same figures.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 1:
        raise ValueError(f"repeats={repeats!r}: must be a positive integer")
    name = str(protocol).strip().lower().replace("_", "-")
    if repeats > 1 and name in TIME_BASED:
        raise ValueError(
            f"repeats={repeats} is refused for the {name} protocol: its split is a time cut "
            "that does not depend on the seed, so every run would give the same figures; "
            "repeat only the random protocols (random, cold-item)")


def run_benchmark(bundle: DataBundle, protocol: str, seed: int = 0, budget_s: float = 120.0,
                  log: Callable[[str], None] = print, models: list[str] | None = None,
                  repeats: int = 1, settings: int | None = None) -> dict:
    """Run every baseline and the hybrid on ``protocol``; return the benchmark's JSON document.

    Parameters
    ----------
    bundle : DataBundle
    protocol : str
        One of ``recommender.evaluation.protocols.PROTOCOLS``.
    seed : int, default 0
        Seed of the split, the validation split (``seed + 1``) and the seeded models.
    budget_s : float, default 120
        Tuning time per baseline.
    log : callable
        Receives progress lines.
    models : list of str, optional
        Only these baselines (the hybrid always runs).
    settings : int, optional
        Tune each baseline over the first ``settings`` points of its grid instead of within
        ``budget_s`` (figures that do not move with the machine's load; :func:`tune`).
    repeats : int, default 1
        Above 1, run seeds ``seed, seed + 1, ...`` (random and cold-item only, see
        :func:`check_repeats`) and return ``{"protocol", "dataset", "seed", "repeats": [one
        document per run], "summary": summarize(runs), "seconds"}``.
    """
    check_repeats(protocol, repeats)
    if settings is not None and (isinstance(settings, bool) or settings < 1):
        raise ValueError(f"settings={settings!r}: must be a positive integer")
    tuning = {"budget_s": None if settings else budget_s, "settings": settings}
    t0 = time.perf_counter()
    # Ids and vocabularies of the whole dataset, so that test users and items keep an index;
    # no feature reads an event after the training cut.
    pipeline = FeaturePipeline(pair_ages=True).fit(bundle)
    if repeats == 1:
        return _run_once(bundle, pipeline, protocol, seed, tuning, log, models)
    runs = []
    for run in range(repeats):
        log(f"run {run + 1} of {repeats}: seed {seed + run}")
        runs.append(_run_once(bundle, pipeline, protocol, seed + run, tuning, log, models))
    return {"protocol": runs[0]["protocol"], "dataset": bundle.name, "seed": seed,
            "repeats": runs, "summary": summarize(runs), "left_out": left_out(models),
            "tuning": tuning,
            "seconds": time.perf_counter() - t0}


@dataclass
class ProtocolRun:
    """One protocol's split of a dataset, ready for models to be fitted and scored.

    Attributes
    ----------
    split : Split
        The test split.
    data : FitData
        The training part's inputs and its validation cut (:func:`prepare_fit`).
    test_eval, val_eval : Evaluator
        Rank and score the test users (over the test candidates) and the validation users.
    candidates : dict
        ``{"test": describe(...), "validation": describe(...)}``.
    """

    split: Split
    data: FitData
    test_eval: Evaluator
    val_eval: Evaluator
    candidates: dict

    def document(self, results: dict, bundle: DataBundle, seed: int, seconds: float,
                 models: list[str] | None = None) -> dict:
        """The benchmark's JSON document of this run with ``results`` as its models (those of
        ``models``, default every baseline: which of them were left out, and why)."""
        split, val = self.split, self.data.split
        bands = pd.Series(self.test_eval.bands).value_counts()
        return {
            "protocol": split.protocol, "dataset": bundle.name, "seed": seed,
            "split": {"test_users": int(len(split.users)),
                      "validation_users": int(len(val.users)),
                      "items": int(self.data.mapping.n_items),
                      "train_interactions": int(len(split.train.interactions)),
                      "users_by_band": {b: int(bands.get(b, 0)) for b in BAND_ORDER}},
            "candidates": self.candidates, "models": results, "left_out": left_out(models),
            "seconds": seconds,
        }


def prepare_run(bundle: DataBundle, pipeline: FeaturePipeline, protocol: str, seed: int,
                log: Callable[[str], None]) -> ProtocolRun:
    """Split ``bundle`` by ``protocol``, cut the training part for validation (seed + 1) and
    set up the evaluators; logs what is ranked."""
    t0 = time.perf_counter()
    split = make_split(bundle, protocol, seed=seed)
    data = prepare_fit(split.train, pipeline, protocol, seed=seed + 1, warm_only=True)
    mapping, val = data.mapping, data.split
    test_eval = Evaluator(split, mapping, data.full, split_candidates(split, mapping, bundle.items))
    val_eval = Evaluator(val, mapping, data.validation,
                         split_candidates(val, mapping, bundle.items))
    candidates = {"test": describe(test_eval.candidates, test_eval.relevant),
                  "validation": describe(val_eval.candidates, val_eval.relevant)}
    log(f"{protocol}: {len(split.users)} test users, {len(val.users)} validation users, "
        f"{mapping.n_items} items (prepared in {time.perf_counter() - t0:.1f}s); candidates: "
        f"{candidates['test']['rule']}, {candidates['test']['items']} items, "
        f"{candidates['test']['positives_outside']} of {candidates['test']['positives']} test "
        "positives outside them")
    if candidates["test"]["positives_outside"] == candidates["test"]["positives"]:
        log("  warning: every test positive lies outside the candidates, so every model "
            "scores 0 by construction")
    return ProtocolRun(split, data, test_eval, val_eval, candidates)


def run_baselines(run: ProtocolRun, seed: int, budget_s: float, log: Callable[[str], None],
                  models: list[str] | None = None,
                  settings: int | None = None) -> tuple[dict, dict, dict]:
    """Tune (:func:`tune`), fit and score every baseline (or those in ``models``) on ``run``.

    Returns ``(results, tuned, lists)``: each baseline's figures as in the benchmark document,
    its tuned params, and its top-10 lists of the test users: ``(items, scores)`` as
    :meth:`Evaluator.rank` gives them.
    """
    results: dict[str, dict] = {}
    tuned: dict[str, dict] = {}
    lists: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    cannot_run = left_out(models)
    for baseline in BASELINES:
        if models and baseline.name not in models:
            continue
        if baseline.name in cannot_run:
            log(f"  {baseline.name:<20} left out of this run: {cannot_run[baseline.name]}")
            continue
        params, trials = tune(baseline, run.data.validation, run.val_eval, budget_s, log, seed,
                              settings)
        tuned[baseline.name] = params
        t = time.perf_counter()
        model = fit_baseline(baseline, params, run.data.full, seed)
        fit_s = time.perf_counter() - t
        lists[baseline.name] = run.test_eval.rank(model, baseline.groups)
        results[baseline.name] = {**run.test_eval.metrics(lists[baseline.name][0]),
                                  "fit_s": fit_s, "params": params, "tuning": trials}
        log(f"  {baseline.name:<20} nDCG@10 {results[baseline.name]['ndcg@10']:.4f}  "
            f"params {params}  fit {fit_s:.1f}s")
    return results, tuned, lists


def left_out(models: list[str] | None = None) -> dict[str, str]:
    """The baselines (of ``models``, default all) that cannot run here, with the reason: the
    benchmark's JSON records them under ``left_out``, so a table without them says why."""
    return {b.name: reason for b in BASELINES
            if (not models or b.name in models) and b.missing and (reason := b.missing())}


def _run_once(bundle: DataBundle, pipeline: FeaturePipeline, protocol: str, seed: int,
              tuning: dict, log: Callable[[str], None], models: list[str] | None) -> dict:
    """One run of the benchmark at one seed: the document :func:`run_benchmark` describes;
    ``tuning`` is ``{"budget_s", "settings"}``, recorded in it."""
    t0 = time.perf_counter()
    run = prepare_run(bundle, pipeline, protocol, seed, log)
    results, tuned, lists = run_baselines(run, seed, tuning["budget_s"], log, models,
                                          tuning["settings"])
    hybrid_params = hybrid_params_from(tuned)
    hybrid, info = fit_hybrid(run.data, hybrid_params, seed)
    fit_s = info["fit_s"]
    hybrid_lists = run.test_eval.recommend(hybrid)
    results["hybrid"] = {**run.test_eval.metrics(hybrid_lists), "fit_s": fit_s,
                         "params": hybrid_params, "guard": info["guard"],
                         "validation": info["validation"]}
    record_band_gaps(results, hybrid_lists, lists, run.test_eval)
    log(f"  {'hybrid':<20} nDCG@10 {results['hybrid']['ndcg@10']:.4f}  fit {fit_s:.1f}s  "
        f"ranked by {info['guard']['served_by']}")
    return {**run.document(results, bundle, seed, time.perf_counter() - t0, models),
            "tuning": tuning}


def record_band_gaps(results: dict, hybrid_lists: np.ndarray, lists: dict,
                     evaluator: Evaluator) -> None:
    """Add ``hybrid_gap`` to every baseline's ``by_band`` in ``results``: the hybrid's nDCG@10
    minus the baseline's over the band's users, with its standard error
    (:func:`~recommender.evaluation.metrics.paired_band_gaps`). ``lists`` holds each
    baseline's ``(items, scores)`` for ``evaluator``'s users, as :meth:`Evaluator.rank` gives
    them."""
    gaps = paired_band_gaps(hybrid_lists, {name: ranked[0] for name, ranked in lists.items()
                                           if name != "hybrid"},
                            evaluator.relevant, evaluator.bands)
    for name, by_band in gaps.items():
        for band, gap in by_band.items():
            # null, not NaN, for a band of one user: the file stays strict JSON
            results[name]["by_band"][band]["hybrid_gap"] = {
                "difference": gap["difference"],
                "se": None if np.isnan(gap["se"]) else gap["se"]}


def hybrid_params_from(tuned: dict[str, dict]) -> dict:
    """The hybrid's component params: those tuned for the matching baselines.

    ALS is not a hybrid component by default (see ``HybridRanker``), so its tuning is not
    carried over; the factor autoencoder is off by default for its training cost, and on here
    as tuned."""
    params: dict = {}
    if "ease" in tuned:
        params["ease_l2"] = tuned["ease"].get("l2", 200.0)
        params["ease_weighting"] = tuned["ease"].get("weighting", "raw")
    if "factor-autoencoder" in tuned:
        chosen = tuned["factor-autoencoder"]
        params["factor_ae_factors"] = chosen.get("factors", 64)
        params["factor_ae_epochs"] = chosen.get("epochs", 20)
        params["factor_ae_l2"] = chosen.get("l2", 1e-4)
        params["factor_ae_weighting"] = chosen.get("weighting", "raw")
        params["factor_ae_epoch_users"] = None  # every user per pass, as the baseline
    if "item-knn" in tuned:
        params["knn_neighbours"] = tuned["item-knn"].get("k", 100)
        params["knn_weighting"] = tuned["item-knn"].get("weighting", "raw")
    if tuned.get("popularity-recent", {}).get("window") is not None:
        params["recent_window_days"] = float(tuned["popularity-recent"]["window"])
    return params

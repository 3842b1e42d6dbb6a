"""What the hybrid is fitted on, and the one way it is fitted.

:func:`prepare_fit` takes the feature pipeline's inputs at the training cut and at a validation
cut of the training part; :func:`fit_hybrid` fits the hybrid on them. ``recommender train``
(:func:`recommender.training.recipe.train_artifact`) and the benchmark both call the two, so
the model that is evaluated is the model that is served.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import BAND_NAMES
from features.frames import DataBundle, positive_mask
from features.ids import IdMapping
from features.pipeline import FeaturePipeline, ModelInputs
from models.hybrid import SIMPLEST_FIRST, HybridRanker
from models.hybrid.calibration import exposure_days
from recommender.evaluation.candidates import split_candidates
from recommender.evaluation.metrics import evaluate, ndcg_at_k, relevance_matrix
from recommender.evaluation.protocols import Split, SplitError, random_split, validation_split

__all__ = [
    "FitData",
    "fit_hybrid",
    "guard",
    "holdout_metrics",
    "prepare_fit",
    "validation_cut",
    "enrolment_lag_days",
    "enrolment_lead_days",
    "enrolment_window_days",
    "course_exposure",
    "validation_horizon_days",
]

log = logging.getLogger(__name__)

HOLDOUT_METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")


@dataclass
class FitData:
    """The hybrid's inputs: the training part, a validation cut of it, and its targets.

    Attributes
    ----------
    pipeline : FeaturePipeline
        The fitted pipeline both inputs come from (its ``id_mapping_`` indexes everything).
    full : ModelInputs
        The whole training part at its cut-off: what the components are fitted on.
    validation : ModelInputs
        The validation cut's training part: the history the re-ranker learns from.
    split : Split
        The validation cut itself.
    target : csr_matrix (n_users, n_items)
        The validation cut's relevant pairs: what the re-ranker learns to put on top.
    candidates : ndarray of int64 or None
        Item indices the validation lists rank over
        (:func:`recommender.evaluation.candidates.split_candidates`: the courses available at a
        time cut, the held-out items of a cold-item cut); None for the whole catalogue.
    features_s : float
        Seconds spent building the two inputs.
    validation_report : dict
        Which validation split was used: ``{"protocol": the split's protocol,
        "fallback_reason": why the asked protocol could not cut the training part (then the
        protocol is ``"random"``) or None, "users": validation users}``.
    """

    pipeline: FeaturePipeline
    full: ModelInputs
    validation: ModelInputs
    split: Split
    target: sp.csr_matrix
    candidates: np.ndarray | None
    features_s: float
    validation_report: dict

    @property
    def mapping(self) -> IdMapping:
        return self.pipeline.id_mapping_


def prepare_fit(train: DataBundle, pipeline: FeaturePipeline, protocol: str = "temporal",
                seed: int | None = 0, warm_only: bool = False) -> FitData:
    """The pipeline's inputs for ``train`` and for a validation cut of ``train``.

    Parameters
    ----------
    train : DataBundle
        Everything the model may learn from (a whole dataset, or a test split's training part).
    pipeline : FeaturePipeline
        Fitted, with an id mapping that covers ``train``.
    protocol, seed, warm_only
        The validation cut (:func:`recommender.evaluation.protocols.validation_split`). A served
        model learns from a temporal cut whose validation users include newcomers
        (``warm_only=False``, the defaults); the benchmark cuts the way its protocol splits.

    Returns
    -------
    FitData
    """
    t0 = time.perf_counter()
    split, report = validation_cut(train, protocol, seed=seed, warm_only=warm_only)
    mapping = pipeline.id_mapping_
    full = pipeline.transform(train)
    validation = pipeline.transform(
        split.train, same_items=full if split.train.items is train.items else None)
    target = relevance_matrix(split.test_relevant, mapping.user_ids_, mapping.item_ids_)
    # The re-ranker learns (and the guard compares) over what the lists will be drawn from:
    # what was available at the validation cut, and a cold-item cut's held-out items.
    candidates = split_candidates(split, mapping, train.items).indices
    return FitData(pipeline, full, validation, split, target, candidates,
                   time.perf_counter() - t0, report)


def validation_cut(train: DataBundle, protocol: str, seed: int | None = 0,
                   warm_only: bool = False) -> tuple[Split, dict]:
    """The validation split of ``train``: ``protocol`` again, else a random split.

    A time cut of the training part can be impossible where the test cut was not (coarse
    timestamps leave the training part one or two distinct times; no user may first appear
    late enough to be cold), and a cold-item draw may hold out only items nobody took up. The
    re-ranker and the tuning still need validation users, so the training part is then split
    at random (:func:`~recommender.evaluation.protocols.random_split` with ``seed``) and the
    report says so.

    Returns
    -------
    split : Split
    report : dict
        ``{"protocol", "fallback_reason", "users"}`` (see :class:`FitData`).

    Raises
    ------
    SplitError
        When the random split has no validation user either: the data's shape (e.g. every
        user has one interaction) leaves nothing to learn the re-ranker from.
    """
    try:
        split = validation_split(train, protocol, seed=seed, warm_only=warm_only)
        return split, _report(split, None)
    except SplitError as exc:
        reason = str(exc)
    if str(protocol).strip().lower().replace("_", "-") != "random":
        try:
            split = random_split(train, seed=seed)
        except SplitError as exc:
            reason = f"{reason}; and {exc}"
        else:
            log.warning("validation split of the training part: %s; using a random split "
                        "(%d validation users)", reason, len(split.users))
            return split, _report(split, reason)
    raise SplitError(f"no validation split of the training part has a relevant pair for the "
                     f"re-ranker to learn from ({_shape(train.interactions)}): {reason}")


def _shape(inter) -> str:
    """What about the data's shape starves a split: single-item users, little-used items."""
    pairs = inter[["user_id", "item_id"]].drop_duplicates()
    per_user = pairs["user_id"].value_counts()
    per_item = pairs["item_id"].value_counts()
    return (f"{len(inter):,} interactions; {int((per_user == 1).sum()):,} of {len(per_user):,} "
            f"users have a single item and {int((per_item < 3).sum()):,} of {len(per_item):,} "
            "items fewer than 3 users")


def _report(split: Split, fallback_reason: str | None) -> dict:
    return {"protocol": split.protocol, "fallback_reason": fallback_reason,
            "users": int(len(split.users))}


def fit_hybrid(data: FitData, params: dict | None = None,
               seed: int = 0) -> tuple[HybridRanker, dict]:
    """Fit the hybrid's components on ``data.full`` and its re-ranker on the validation cut,
    then let :func:`guard` choose what ranks its candidates.

    Returns the model and ``{"features_s", "fit_s", "guard", "validation_metrics",
    "validation"}``, the last being :attr:`FitData.validation_report` (which validation split
    the re-ranker learned on, and why when it is not the asked protocol's).
    """
    t0 = time.perf_counter()
    model = HybridRanker(random_state=seed, **(params or {}))
    model.fit(data.full.X, validation=(data.validation.X, data.target,
                                       data.validation.item_temporal, data.validation.pair_age),
              validation_candidates=data.candidates, pair_age=data.full.pair_age,
              **data.full.side())
    checked = guard(model, data.target)
    model.set_validation_horizon(validation_horizon_days(data))
    lead, lag = enrolment_window_days(data.split.train)
    if data.split.cut is not None:
        model.restrict_calibration(
            course_exposure(data.split.train.items, data.mapping.item_ids_, lead, lag,
                            data.split.cut, data.full.cutoff), lead, lag)
    info = {"features_s": data.features_s, "fit_s": time.perf_counter() - t0,
            "guard": checked, "validation_metrics": holdout_metrics(model, data.target),
            "validation": dict(data.validation_report)}
    return model, info


# Share of take-ups that come at most this long before (lead) or after (lag) a course's start:
# the window a course takes new residents in (a high quantile, so a few outliers do not
# stretch it).
LEAD_QUANTILE = 0.9


def _first_take_up_from_start(train: DataBundle) -> pd.Series | None:
    """Days from each course's start to each resident's first relevant event on it (negative:
    before the start); None when the items have no start date."""
    items = train.items
    if "start_date" not in items or items["start_date"].isna().all():
        return None
    inter = train.interactions
    pos = inter.loc[positive_mask(inter), ["user_id", "item_id", "timestamp"]]
    # Pairs as integer codes (2.5M text ids grouped as text cost seconds); only the distinct
    # courses are turned into text, to look their start dates up.
    user_codes = pd.factorize(pos["user_id"])[0].astype(np.int64)
    item_codes, courses = pd.factorize(pos["item_id"])
    n_courses = max(len(courses), 1)
    first = pd.Series(pos["timestamp"].to_numpy()).groupby(
        user_codes * n_courses + item_codes, sort=False).min()
    start = pd.to_datetime(items.set_index(items["item_id"].astype(str))["start_date"],
                           errors="coerce")
    begins = start.reindex(pd.Index(courses).astype(str)).to_numpy()[
        first.index.to_numpy() % n_courses]
    return pd.Series((first.to_numpy() - begins) / pd.Timedelta(days=1)).dropna()


def enrolment_window_days(train: DataBundle) -> tuple[float, float]:
    """``(lead, lag)``: how many days before its start a course takes enrolments and how many
    after it it still takes new residents, from the history: the :data:`LEAD_QUANTILE` of
    (start date - first relevant event) and of (first relevant event - start date) over the
    (resident, course) pairs, never below 0. ``inf`` when the items have no start date (every
    course counts)."""
    days = _first_take_up_from_start(train)
    if days is None or days.empty:
        return float("inf"), float("inf")
    return (float(max(np.quantile(-days, LEAD_QUANTILE), 0.0)),
            float(max(np.quantile(days, LEAD_QUANTILE), 0.0)))


def enrolment_lead_days(train: DataBundle) -> float:
    """The lead of :func:`enrolment_window_days`."""
    return enrolment_window_days(train)[0]


def enrolment_lag_days(train: DataBundle) -> float:
    """The lag of :func:`enrolment_window_days`."""
    return enrolment_window_days(train)[1]


def course_exposure(items, item_ids: np.ndarray, lead_days: float, lag_days: float, since,
                    until) -> np.ndarray:
    """Days of ``(since, until]`` in which each course of ``item_ids`` takes new residents
    (:func:`models.hybrid.calibration.exposure_days`; no start date: the whole period)."""
    if "start_date" in items:
        start = pd.to_datetime(items.set_index(items["item_id"].astype(str))["start_date"],
                               errors="coerce").reindex(pd.Index(item_ids).astype(str))
        start = start.to_numpy(dtype="datetime64[s]")
    else:
        start = np.full(len(item_ids), np.datetime64("NaT"), dtype="datetime64[s]")
    return exposure_days(start, lead_days, lag_days, pd.Timestamp(since).to_datetime64(),
                         pd.Timestamp(until).to_datetime64())


def validation_horizon_days(data: FitData) -> float:
    """Days between the validation cut and the training cut: the span the validation targets
    (and so the model's calibrated probabilities) cover. NaN for a random validation split,
    which has no time cut: such a model gives no probabilities over a period."""
    cut = data.split.cut
    if cut is None or data.full.cutoff is None:
        return float("nan")
    days = (pd.Timestamp(data.full.cutoff) - pd.Timestamp(cut)) / pd.Timedelta(days=1)
    return float(days) if days > 0 else float("nan")


def guard(model: HybridRanker, target: sp.csr_matrix) -> dict:
    """Serve what ranked best on held-out users: the best component, unless the trees, or the
    trees blended with that component, clearly beat it.

    Every held-out user's list from the trees (which never saw that user) is scored against
    each component's own list from the same cut, and against the trees' order averaged with
    the best component's (:func:`models.hybrid.reranker.blended`). The one-standard-error
    rule, applied along the chain component -> trees -> blend: each ranking replaces the
    choice before it only when its nDCG@10 beats that choice's by more than one standard error
    of the per-user difference (the simpler ranking wins unless the held-out users show that
    the other is better). When neither replaces the best component, the same rule picks among
    the components: the simplest (:data:`~models.hybrid.SIMPLEST_FIRST`) whose nDCG@10 is
    within one standard error of the best's is served (on a few dozen users the best mean is
    often luck). When the model does not rank by the trees or their blend
    (:meth:`HybridRanker.serve_with`), a warning says so. With no held-out users there is
    nothing to compare and the trees stay. Trees that never saw a positive candidate score
    every candidate the same, so they are never served, blended or not: the best component
    is, or popularity within the band (``pop_band``) when there is nothing to compare.

    Returns
    -------
    dict
        ``{"users": n, "ndcg@10": {source: value}, "served_by": source}``, plus, when there
        were held-out users, ``"margin"`` (the trees' mean per-user gain over the best
        component), ``"standard_error"`` (its standard error), ``"steps"``: each comparison
        of the chain as ``{"source", "against", "margin", "standard_error"}``, and
        ``"best_component"`` (the component of highest mean, which the chain compares with).
    """
    users = np.asarray(model.holdout_users_, dtype=np.int64)
    learned = model.reranker_learned
    if not learned:
        log.warning("no validation positive was among the re-ranker's candidates, so the trees "
                    "learned nothing: the model ranks by a single component")
    if users.size == 0:
        model.serve_with("reranker" if learned else "pop_band")
        return {"users": 0, "ndcg@10": {}, "served_by": model.served_by}
    relevant = target[users]
    per_user = {source: np.nan_to_num(ndcg_at_k(model.holdout_lists(source), relevant))
                for source in ("reranker", *map(str, model.holdout_sources_))}
    # the best component; on a tie, popularity within the band (the simplest)
    best = max((s for s in per_user if s != "reranker"),
               key=lambda s: (per_user[s].mean(), s == "pop_band"))
    chain = ["reranker"]
    if getattr(model, "holdout_blend_recs_", None) is not None:  # older models have none
        chain.append(f"reranker+{best}")
        per_user[chain[-1]] = np.nan_to_num(ndcg_at_k(model.holdout_lists(chain[-1]), relevant))
    served, steps = best, []
    for source in chain:
        margin, error = _gain(per_user[source], per_user[served])
        steps.append({"source": source, "against": served, "margin": margin,
                      "standard_error": error})
        if learned and margin > error:
            served = source
    if served == best:
        served = simplest_within_error(per_user, best)
    model.serve_with(served)
    ndcg = {source: float(values.mean()) for source, values in per_user.items()}
    if served not in chain:
        log.warning("the re-ranker did not beat the %s component, alone or blended with it, "
                    "on %d held-out validation users by more than one standard error (nDCG@10 "
                    "%.4f and %.4f blended vs %.4f; standard errors of the differences %s): the "
                    "model ranks by %s alone%s", best, users.size, ndcg["reranker"],
                    ndcg.get(chain[-1], float("nan")), ndcg[best],
                    " and ".join(f"{step['standard_error']:.4f}" for step in steps), served,
                    "" if served == best else f", the simplest component within one standard "
                    f"error of {best} ({ndcg[served]:.4f})")
    return {"users": int(users.size), "ndcg@10": ndcg, "served_by": served,
            "margin": steps[0]["margin"], "standard_error": steps[0]["standard_error"],
            "steps": steps, "best_component": best}


def simplest_within_error(per_user: dict[str, np.ndarray], best: str) -> str:
    """The first component of :data:`~models.hybrid.SIMPLEST_FIRST` in ``per_user`` whose
    per-user nDCG@10 is below ``best``'s by no more than one standard error of the
    difference (``best`` itself at the latest)."""
    for source in SIMPLEST_FIRST:
        if source == best:
            return best
        if source in per_user:
            margin, error = _gain(per_user[best], per_user[source])
            if margin <= error:
                return source
    return best


def _gain(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """Mean per-user gain of ``ours`` over ``theirs`` and its standard error."""
    gain = ours - theirs
    error = float(gain.std(ddof=1) / np.sqrt(gain.size)) if gain.size > 1 else 0.0
    return float(gain.mean()), error


def holdout_metrics(model: HybridRanker, target: sp.csr_matrix) -> dict:
    """Validation figures of the served ranking on the validation users the trees never saw,
    next to popularity-by-band on the same users (empty when there were too few users)."""
    users = np.asarray(model.holdout_users_, dtype=np.int64)
    if users.size == 0:
        return {}
    relevant = target[users]
    n_items = target.shape[1]
    served = model.served_by
    lists = model.holdout_lists(served)
    # Each held-out user's band at the training cut (-1, unknown, maps to the last entry).
    bands = np.array([*BAND_NAMES, None], dtype=object)[model.user_band_[users]]
    hybrid = evaluate(lists, relevant, n_items, user_bands=bands)
    popularity = evaluate(model.holdout_popularity_recs_, relevant, n_items, user_bands=bands)
    return {"users": int(users.size), "served_by": served,
            "hybrid": {k: float(hybrid[k]) for k in HOLDOUT_METRICS},
            "popularity_by_band": {k: float(popularity[k]) for k in HOLDOUT_METRICS},
            "by_band": {band: {"users": int(figures["users"]),
                               "hybrid": {k: float(figures[k]) for k in HOLDOUT_METRICS},
                               "popularity_by_band": {k: float(popularity["by_band"][band][k])
                                                      for k in HOLDOUT_METRICS}}
                        for band, figures in hybrid["by_band"].items()}}

"""Calibration for the evaluation report: the model's take-up probabilities after a time cut
against the take-ups that came.

The pairs are those the cohort demand sums over (:meth:`models.hybrid.HybridRanker.take_up`
as :func:`recommender.training.calibration.demand_check` uses it): a sample of the residents
the model knows, times the courses available at the cut that take new residents during the
test period, each with its own window (:func:`recommender.training.inputs.course_exposure`).
A pair is observed positive when the resident's first relevant event on the course falls
after the cut. Courses a resident already has history with are left out: the model gives
them no probability (they are never offered again).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.frames import DataBundle, positive_mask
from features.ids import IdMapping
from models.base import batch_size
from models.hybrid import HybridRanker
from recommender.evaluation.protocols import Split
from recommender.training.inputs import course_exposure
from recommender.training.report_metrics import reliability

__all__ = ["MAX_USERS", "TakeUpPairs", "calibration_section", "take_up_pairs"]

# Residents whose probabilities are compared with what they did (a seeded sample above this).
MAX_USERS = 3000
BATCH = 500


@dataclass
class TakeUpPairs:
    """Predicted probabilities and outcomes of (resident, course) pairs after a cut."""

    predicted: np.ndarray
    observed: np.ndarray
    users: int
    courses: int
    horizon_days: float


def _unavailable(reason: str) -> dict:
    return {"available": False, "reason": reason}


def take_up_pairs(model: HybridRanker, X: sp.csr_matrix, mapping: IdMapping, bundle: DataBundle,
                  split: Split, offered: np.ndarray, max_users: int = MAX_USERS,
                  seed: int = 0) -> TakeUpPairs | str:
    """The pairs, or a one-line reason why the model's probabilities cannot be checked here.

    Parameters
    ----------
    model : HybridRanker
        Fitted on ``split.train`` (its calibration measured at its own validation cut).
    X : csr_matrix (n_users, n_items)
        The history at the cut.
    offered : bool (n_items,)
        The courses every model ranked at the cut (the split's candidates).
    """
    if split.cut is None:
        return (f"the {split.protocol} protocol has no time cut, so a probability of taking a "
                "course up within a period has nothing to be compared with")
    cal = model.calibration
    if cal is None:
        return ("the model has no calibration (its validation cut was not a time cut, or too "
                "few held-out pairs)")
    inter = bundle.interactions
    if not pd.api.types.is_datetime64_any_dtype(inter["timestamp"]):
        return "the timestamps are not dates, so no course window can be measured"
    cut, end = pd.Timestamp(split.cut), pd.Timestamp(inter["timestamp"].max())
    exposure = course_exposure(bundle.items, mapping.item_ids_, cal.lead_days, cal.lag_days,
                               cut, end)
    offered = offered & (exposure > 0)
    if not offered.any():
        return "no course available at the cut takes new residents after it"
    taken = _new_take_ups(inter, cut, end, mapping)
    rng = np.random.default_rng(seed)
    users = np.arange(mapping.n_users)
    if users.size > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    predicted, observed = [], []
    size = batch_size(X.shape[1], BATCH)
    for start in range(0, users.size, size):
        batch = users[start:start + size]
        rows = X[batch]
        p = model.take_up(batch, rows, exposure, allowed=offered)
        unseen = np.ones(p.shape, dtype=bool)
        seen_r = np.repeat(np.arange(batch.size), np.diff(rows.indptr))
        unseen[seen_r, rows.indices] = False
        keep = unseen & offered[None, :]
        predicted.append(p[keep])
        observed.append(taken[batch].toarray()[keep] > 0)
    return TakeUpPairs(np.concatenate(predicted), np.concatenate(observed), int(users.size),
                       int(offered.sum()), float((end - cut) / pd.Timedelta(days=1)))


def _new_take_ups(inter: pd.DataFrame, cut, end, mapping: IdMapping) -> sp.csr_matrix:
    """(n_users, n_items): 1 where a resident's first relevant event on a course is in
    ``(cut, end]``."""
    pos = inter[positive_mask(inter)]
    # grouped on the id columns as they are (categoricals at scale); the mapping compares ids
    # by their text
    first = pos.groupby(["user_id", "item_id"], observed=True)["timestamp"].min()
    first = first[(first > cut) & (first <= end)]
    u = mapping.user_index(first.index.get_level_values(0))
    i = mapping.item_index(first.index.get_level_values(1))
    ok = (u >= 0) & (i >= 0)
    return sp.csr_matrix((np.ones(int(ok.sum()), dtype=np.float32), (u[ok], i[ok])),
                         shape=(mapping.n_users, mapping.n_items))


def calibration_section(pairs: TakeUpPairs | str, bins: int = 10) -> dict:
    """The ``calibration`` section of ``metrics.json`` from :func:`take_up_pairs`' answer."""
    if isinstance(pairs, str):
        return _unavailable(pairs)
    return {"available": True, "users": pairs.users, "courses": pairs.courses,
            "horizon_days": pairs.horizon_days,
            **reliability(pairs.predicted, pairs.observed, bins=bins)}

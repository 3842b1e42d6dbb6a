"""Does the calibrated model forecast demand? Per-course enrolments after a time cut.

:func:`demand_check` cuts a dataset in time (the temporal protocol's cut, newcomers kept),
fits the hybrid on the part before the cut exactly as ``recommender train`` does, and
forecasts each course's enrolments over the period after the cut (its length is the horizon)
as the sum of every resident's calibrated take-up probability
(:meth:`models.hybrid.HybridRanker.take_up`), over the courses available at the cut that take
new residents during the period (from its start date minus the model's lead to its start
date plus the model's lag), each over the days of the period its window covers. The
forecast is compared with the enrolments that came (distinct residents with a relevant event on
the course after the cut) by the weighted absolute percentage error
``sum |forecast - actual| / sum actual``, next to the naive forecast "as many as in the
previous period of the same length".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.frames import DataBundle, positive_mask, with_categorical_ids
from models.base import batch_size
from recommender.evaluation.candidates import split_candidates
from recommender.evaluation.protocols import temporal_split
from recommender.training.inputs import course_exposure
from recommender.training.recipe import fit_recipe, pipeline_for

BATCH = 2000


def wape(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Weighted absolute percentage error: ``sum |forecast - actual| / sum actual``."""
    total = float(np.sum(actual))
    return float(np.sum(np.abs(np.asarray(forecast) - np.asarray(actual)))) / total if total else (
        float("nan"))


def _enrolments(inter: pd.DataFrame, start, end, codes: dict, n_items: int) -> np.ndarray:
    """New take-ups per item in ``(start, end]``: residents whose first relevant event on the
    item falls in the period (attending a course one enrolled in earlier is no new demand)."""
    rows = inter[positive_mask(inter)]
    first = rows.groupby([rows["user_id"].astype(str), rows["item_id"].astype(str)],
                         observed=True)["timestamp"].min()
    first = first[(first > start) & (first <= end)]
    idx = first.index.get_level_values(1).map(codes)
    idx = np.asarray(idx.dropna(), dtype=np.int64)
    return np.bincount(idx, minlength=n_items).astype(np.float64)


def demand_check(bundle: DataBundle, seed: int = 0, params: dict | None = None) -> dict:
    """Forecast and naive errors of per-course enrolments after a temporal cut of ``bundle``.

    Returns
    -------
    dict
        ``{"horizon_days", "validation_days", "courses", "actual", "forecast", "naive",
        "wape_model", "wape_naive", "ratio"}`` (totals over the courses available at the cut).
    """
    bundle = with_categorical_ids(bundle)
    split = temporal_split(bundle, warm_only=False)
    pipeline = pipeline_for(params).fit(bundle)
    model, data, _ = fit_recipe(split.train, pipeline, params, seed)
    inter = bundle.interactions
    cut, end = pd.Timestamp(split.cut), pd.Timestamp(inter["timestamp"].max())
    horizon = (end - cut) / pd.Timedelta(days=1)
    mapping = data.mapping
    offered = np.zeros(mapping.n_items, dtype=bool)
    offered[split_candidates(split, mapping, bundle.items).indices] = True
    cal = model.calibration
    exposure = course_exposure(bundle.items, mapping.item_ids_, cal.lead_days, cal.lag_days,
                               cut, end) if cal is not None else np.full(mapping.n_items, horizon)
    offered &= exposure > 0
    forecast = np.zeros(mapping.n_items)
    X = data.full.X
    size = batch_size(mapping.n_items, BATCH)
    for start in range(0, mapping.n_users, size):
        users = np.arange(start, min(start + size, mapping.n_users))
        forecast += model.take_up(users, X[users], exposure, allowed=offered).sum(axis=0)
    codes = {str(i): k for k, i in enumerate(mapping.item_ids_.tolist())}
    actual = _enrolments(inter, cut, end, codes, mapping.n_items)[offered]
    naive = _enrolments(inter, cut - (end - cut), cut, codes, mapping.n_items)[offered]
    forecast = forecast[offered]
    model_error, naive_error = wape(forecast, actual), wape(naive, actual)
    return {"horizon_days": float(horizon),
            "validation_days": float(model.calibration.horizon_days)
            if model.calibration else float("nan"),
            "courses": int(offered.sum()), "actual": float(actual.sum()),
            "forecast": float(forecast.sum()), "naive": float(naive.sum()),
            "wape_model": model_error, "wape_naive": naive_error,
            "ratio": model_error / naive_error if naive_error else float("nan")}


__all__ = ["demand_check", "wape"]

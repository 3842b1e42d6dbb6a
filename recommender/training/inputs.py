"""What the hybrid is fitted on, and the one way it is fitted.

:func:`prepare_fit` takes the feature pipeline's inputs at the training cut and at a validation
cut of the training part; :func:`fit_hybrid` fits the hybrid on them. ``recommender train``
(:func:`recommender.training.recipe.train_artifact`) and the benchmark both call the two, so
the model that is evaluated is the model that is served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from features.frames import DataBundle
from features.ids import IdMapping
from features.pipeline import FeaturePipeline, ModelInputs
from models.hybrid import HybridRanker
from recommender.evaluation.metrics import evaluate, relevance_matrix
from recommender.evaluation.protocols import Split, validation_split

__all__ = ["FitData", "cold_candidates", "fit_hybrid", "holdout_metrics", "prepare_fit"]

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
        Item indices the validation lists rank over (the held-out items of a cold-item cut).
    features_s : float
        Seconds spent building the two inputs.
    """

    pipeline: FeaturePipeline
    full: ModelInputs
    validation: ModelInputs
    split: Split
    target: sp.csr_matrix
    candidates: np.ndarray | None
    features_s: float

    @property
    def mapping(self) -> IdMapping:
        return self.pipeline.id_mapping_


def cold_candidates(split: Split, mapping: IdMapping) -> np.ndarray | None:
    """The item indices a cold-item split ranks over (its held-out items); None otherwise."""
    if split.protocol == "cold-item" and split.cold_items is not None:
        return mapping.item_index(split.cold_items)
    return None


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
    split = validation_split(train, protocol, seed=seed, warm_only=warm_only)
    mapping = pipeline.id_mapping_
    full = pipeline.transform(train)
    validation = pipeline.transform(split.train)
    target = relevance_matrix(split.test_relevant, mapping.user_ids_, mapping.item_ids_)
    return FitData(pipeline, full, validation, split, target, cold_candidates(split, mapping),
                   time.perf_counter() - t0)


def fit_hybrid(data: FitData, params: dict | None = None,
               seed: int = 0) -> tuple[HybridRanker, dict]:
    """Fit the hybrid's components on ``data.full`` and its re-ranker on the validation cut.

    Returns the model and ``{"features_s", "fit_s", "validation_metrics"}``.
    """
    t0 = time.perf_counter()
    model = HybridRanker(random_state=seed, **(params or {}))
    model.fit(data.full.X, validation=(data.validation.X, data.target,
                                       data.validation.item_temporal),
              validation_candidates=data.candidates, **data.full.side())
    info = {"features_s": data.features_s, "fit_s": time.perf_counter() - t0,
            "validation_metrics": holdout_metrics(model, data.target)}
    return model, info


def holdout_metrics(model: HybridRanker, target: sp.csr_matrix) -> dict:
    """Validation figures of a fitted hybrid on the validation users its trees never saw,
    next to popularity-by-band on the same users (empty when there were too few users)."""
    users = np.asarray(model.holdout_users_, dtype=np.int64)
    if users.size == 0:
        return {}
    relevant = target[users]
    n_items = target.shape[1]
    hybrid = evaluate(model.holdout_recs_, relevant, n_items)
    popularity = evaluate(model.holdout_popularity_recs_, relevant, n_items)
    return {"users": int(users.size),
            "hybrid": {k: float(hybrid[k]) for k in HOLDOUT_METRICS},
            "popularity_by_band": {k: float(popularity[k]) for k in HOLDOUT_METRICS}}

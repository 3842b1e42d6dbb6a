"""Stage 1 of the hybrid: the component models and the candidates they propose.

Each component (popularity global / by band / by community x band / over the recent window,
category popularity by band, EASE, item-kNN, the factor autoencoder and ALS when they are on,
content) is fitted on the same
matrix and scores every item for a user. A user's candidates are the union of every
component's top ``n_candidates`` unseen, allowed items, plus every course of a category the user
declared an interest in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Recommender
from models.collaborative import ALS
from models.content import ContentModel
from models.ease import EASE
from models.factor_autoencoder import FactorAutoencoder
from models.neighbours import ItemKNN
from models.popularity import CategoryPopularity, Popularity

N_BANDS = 4
# Every component's name, in the order of the stage-2 signal columns.
COMPONENTS = ("pop", "pop_band", "pop_local", "cat_band", "ease", "knn", "als", "content",
              "pop_recent", "factor_ae")
# The components from the simplest to the most fitted: counts (overall, by band, recent, by
# community, by category and band), then the content match, then what learns from the
# matrix (item-kNN's similarities, EASE's item weights, ALS's and the autoencoder's factors).
# Where components rank about equally well on held-out users, the simplest is served.
SIMPLEST_FIRST = ("pop_band", "pop", "pop_recent", "pop_local", "cat_band", "content", "knn",
                  "ease", "als", "factor_ae")


def new_components(
    *,
    ease_l2: float,
    knn_neighbours: int,
    als_factors: int,
    als_regularization: float,
    als_iterations: int,
    random_state: int | None,
    recent_window_days: float | None = None,
    weighting: dict[str, str] | None = None,
    factor_ae: dict[str, Any] | None = None,
) -> dict[str, Recommender]:
    """Unfitted components; ALS only when ``als_factors`` is nonzero, the factor autoencoder
    only when ``factor_ae`` (its params) is given. ``weighting`` maps ``"ease"``, ``"knn"``,
    ``"als"`` and ``"factor_ae"`` to how each reads the matrix's values (default raw)."""
    weighting = {"ease": "raw", "knn": "raw", "als": "raw", "factor_ae": "raw",
                 **(weighting or {})}
    comps: dict[str, Recommender] = {
        "pop": Popularity(),
        "pop_band": Popularity(shrinkage=10.0),
        "pop_local": Popularity(shrinkage=10.0),
        "cat_band": CategoryPopularity(shrinkage=10.0),
        "ease": EASE(l2=ease_l2, weighting=weighting["ease"]),
        "knn": ItemKNN(k=knn_neighbours, weighting=weighting["knn"]),
        "content": ContentModel(),
        # What is taken up now: a validation or test period is mostly about what is running
        # then, which all-time counts cannot tell from what has faded.
        "pop_recent": Popularity(window=recent_window_days),
    }
    if als_factors:
        comps["als"] = ALS(
            factors=als_factors,
            regularization=als_regularization,
            iterations=als_iterations,
            random_state=random_state,
            weighting=weighting["als"],
        )
    if factor_ae:
        comps["factor_ae"] = FactorAutoencoder(**factor_ae, weighting=weighting["factor_ae"],
                                               random_state=random_state)
    return comps


def fit_components(
    comps: dict[str, Recommender],
    X: sp.csr_matrix,
    *,
    user_band: np.ndarray,
    user_community: np.ndarray,
    item_category: np.ndarray,
    item_features: Any,
    item_recent: np.ndarray,
    pair_age: Any = None,
    item_metadata: Any = None,
) -> dict[str, Recommender]:
    """Fit every component on ``X`` with the side information it reads; returns ``comps``.

    ``item_recent`` is each item's interactions in the recent window before ``X``'s cut-off
    (:func:`features.pipeline.item_temporal`): what ``pop_recent`` counts, unless it has a
    window of its own, which it counts on ``pair_age``.
    """
    for name, model in comps.items():
        if name == "pop_band":
            model.fit(X, user_groups=user_band)
        elif name == "cat_band":
            model.fit(X, user_groups=user_band, item_category=item_category)
        elif name == "pop_local":
            model.fit(X, user_groups=local_group(user_band, user_community))
        elif name == "content":
            model.fit(X, item_features=item_features)
        elif name == "factor_ae":  # a course nobody took yet is ranked by its metadata
            model.fit(X, item_features=item_metadata)
        elif name == "pop_recent" and model.window is not None:
            model.fit(X, pair_age=pair_age)
        elif name == "pop_recent":
            model.fit(X, item_counts=item_recent)
        else:
            model.fit(X)
    return comps


def local_group(band: np.ndarray, community: np.ndarray) -> np.ndarray:
    """The community x band group id of each user, -1 where either is unknown."""
    band = np.asarray(band, dtype=np.int64)
    community = np.asarray(community, dtype=np.int64)
    return np.where((band >= 0) & (community >= 0), community * N_BANDS + band, -1)


def component_scores(
    comps: dict[str, Recommender],
    users: np.ndarray,
    X: sp.csr_matrix,
    band: np.ndarray,
    community: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every component's scores for the users, ``{name: (n_users, n_items) float32}``.

    A component that is off (ALS by default) scores all zeros, so the signal rows keep the
    columns the re-ranker was trained with (and a model saved before a component existed
    still ranks).
    """
    # The components' own hooks: ``X`` and the groups were checked once by the caller, and
    # the public ``score`` would check them again per component (~40 us each per request).
    out = {}
    for name, model in comps.items():
        if name in ("pop_band", "cat_band"):
            scores = model._score(users, X, user_groups=band)
        elif name == "pop_local":
            scores = model._score(users, X, user_groups=local_group(band, community))
        else:
            scores = model._score(users, X)
        out[name] = np.asarray(scores, dtype=np.float32)
    for name in COMPONENTS:
        if name not in out:
            out[name] = np.zeros_like(out["pop"])
    return out


def blocked_items(X: sp.csr_matrix, allowed: Any) -> np.ndarray:
    """(n_users, n_items) mask of items never to propose: seen ones and disallowed ones.

    ``allowed`` is one mask over the items for every user, or one row per user."""
    n, n_items = X.shape
    blocked = np.zeros((n, n_items), dtype=bool)
    if X.nnz:  # never re-recommend what the user already has
        blocked[np.repeat(np.arange(n), np.diff(X.indptr)), X.indices] = True
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        blocked |= ~(allowed if allowed.ndim == 2 else allowed[None, :])
    return blocked


def candidate_mask(
    scores: dict[str, np.ndarray],
    blocked: np.ndarray,
    interests: np.ndarray,
    item_category: np.ndarray,
    n_candidates: int,
    tie_order: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Which items are candidates for each user, and every component's scores with the
    blocked items at ``-inf`` (what the components' ranks are counted on), also sorted.
    ``tie_order`` (n_users, n_items): see :func:`top_columns`.

    Returns
    -------
    candidate : ndarray of bool, shape (n_users, n_items)
    masked : ndarray of float32, shape (len(COMPONENTS), n_users, n_items)
        In :data:`COMPONENTS` order; at a candidate, the component's own score.
    ordered : ndarray of float32 like ``masked``, or None
        ``masked`` sorted along the items, which the candidates were cut from; the ranks are
        counted on it (:func:`models.hybrid.signals.signal_rows`). None when every item is a
        candidate (nothing was sorted).
    """
    n, n_items = blocked.shape
    k = min(n_candidates, n_items)
    masked = np.empty((len(COMPONENTS), n, n_items), dtype=np.float32)
    for c, name in enumerate(COMPONENTS):  # np.stack's checks cost more than these copies
        masked[c] = scores[name]
    masked[:, blocked] = -np.inf
    ordered = None
    if k < n_items:
        ordered = np.sort(masked, axis=2)
        candidate = top_columns(masked, k, ordered, tie_order).any(axis=0)
    else:
        candidate = np.ones((n, n_items), dtype=bool)
    if interests.any():  # every course of a declared interest is a candidate
        known = item_category >= 0
        wanted = np.zeros((n, n_items), dtype=bool)
        wanted[:, known] = interests[:, np.minimum(item_category[known], interests.shape[1] - 1)]
        candidate |= wanted
    candidate &= ~blocked
    return candidate, masked, ordered


def top_columns(scores: np.ndarray, k: int, ordered: np.ndarray | None = None,
                tie_order: np.ndarray | None = None) -> np.ndarray:
    """Mask of the ``k`` best columns of each row of ``scores`` (float32, items on the last
    axis, ``k`` < their number), equal scores by the lower column first. ``ordered``:
    ``scores`` sorted along the last axis, if the caller has them. ``tie_order``: distinct
    values shaped as the last two axes of ``scores``; equal scores by the lower of them
    instead (the benchmark's random order among equal scores, so that which of many equal
    courses become candidates is not decided by their ids).

    A component's top ``n_candidates`` often ends inside a run of equal scores (zeros, small
    counts). ``argpartition`` would pick among them by where they sit in the array, so the
    candidates of a resident ranked over the allowed courses only would differ from those of
    the same resident ranked over the whole catalogue; taking the tied columns in column order
    makes the top one set, whatever columns are left out around it. The row's ``k``-th best
    score comes from a sort of the scores; everything above it is in, and the first of the
    columns equal to it fill the rest. numpy sorts float32 rows with SIMD instructions: a
    fifth to an eighth of the time of an ``argpartition`` of int64 sort keys (training ran one
    per component of every batch), and, unlike ``np.partition``, not slowed by runs of equal
    scores (blocked courses at -inf, zeros), which made a served batch's partition 3 ms.
    """
    n_items = scores.shape[-1]
    if ordered is None:
        ordered = np.sort(scores, axis=-1)
    kth = ordered[..., n_items - k, None]
    above = scores > kth
    tied = scores == kth  # -0.0 == 0.0: a sign does not order equal scores
    room = k - above.sum(axis=-1, keepdims=True)
    if tie_order is None:
        # (a cumulative sum of booleans in their default int64 took 6x the time of int32)
        return above | (tied & (np.cumsum(tied, axis=-1, dtype=np.int32) <= room))
    # The same count, with the columns taken in tie_order: one sort per user, shared by
    # every leading axis (the components), instead of a sort of each component's row.
    perm = np.broadcast_to(np.argsort(tie_order, axis=-1), tied.shape)
    tied_in_order = np.take_along_axis(tied, perm, axis=-1)
    keep_in_order = tied_in_order & (np.cumsum(tied_in_order, axis=-1, dtype=np.int32) <= room)
    keep = np.zeros_like(tied)
    np.put_along_axis(keep, perm, keep_in_order, axis=-1)
    return above | keep

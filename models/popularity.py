"""Popularity: global, or per group of users (age band, community × band, any int group id).

One class covers the three popularity baselines: without ``user_groups`` it is
global popularity; with an age-band index per user it is popularity by band; with a
(community × band) id per user it is popularity per community and band. The caller encodes the
groups (e.g. ``community_index * n_bands + band_index``); negative ids mean "unknown group".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from models.base import Recommender, check_bool, check_param


class Popularity(Recommender):
    """Most-interacted items, globally or within the user's group.

    A group's score for an item is its share of the group's interactions, smoothed towards the
    global share: ``(count_g + shrinkage * global_share) / (total_g + shrinkage)``, so small
    groups lean on the global ranking and items a group has never touched are still ordered by
    global popularity. A user whose group is unknown, negative or had no interactions at fit
    time gets the global ranking. Scores ignore the user's row (only ``filter_seen`` uses it).

    Parameters
    ----------
    weighted : bool, default False
        Count interaction weights (the matrix values) instead of distinct users per item.
    shrinkage : float, default 1.0
        Weight, in interactions, of the global share in each group's score (0 = pure group).
    window : float or None, default None
        Count only the pairs whose latest interaction is at most ``window`` before the end of
        the data (in the unit of ``pair_age``, days from the feature pipeline), as RecTools'
        ``PopularModel(period=...)``: what is taken up *now*. None counts all time.

    Side information
    ----------------
    ``fit(user_items, user_groups=None, pair_age=None, item_counts=None)``: ``user_groups``
    int array (n_users,), the group of each row; ``pair_age`` sparse (n_users, n_items), the
    age of each pair's latest interaction, stored (> 0) wherever the pair has one
    (:attr:`features.pipeline.ModelInputs.pair_age`); required when ``window`` is set;
    ``item_counts`` float array (n_items,), counts to rank by instead of the matrix's (the
    hybrid's recent activity per item), global only.
    ``score``/``recommend(..., user_groups=None)``: int array (n,), the group of each requested
    user; if omitted, known users get their fit-time group and unseen users the global ranking.

    Attributes
    ----------
    global_scores_ : ndarray of float32, shape (n_items,)
        Each item's share of all interactions.
    groups_ : ndarray of int64, shape (n_groups,)
        Sorted group ids that had interactions at fit time.
    group_scores_ : ndarray of float32, shape (n_groups, n_items)
        Smoothed per-group shares.
    user_groups_ : ndarray of int64, shape (n_users,) or (0,)
        The fit-time group of each user (empty when fitted without groups).
    """

    _fitted_arrays = ("global_scores_", "groups_", "group_scores_", "user_groups_")

    def __init__(self, weighted: bool = False, shrinkage: float = 1.0,
                 window: float | None = None):
        self.weighted = weighted
        self.shrinkage = shrinkage
        self.window = window

    def _validate_params(self) -> None:
        check_bool("weighted", self.weighted)
        check_param("shrinkage", self.shrinkage, "float", low=0.0)
        if self.window is not None:
            check_param("window", self.window, "float", low=0.0, low_inclusive=False)

    def _fit(self, X: sp.csr_matrix, user_groups: Any = None, pair_age: Any = None,
             item_counts: Any = None) -> None:
        if item_counts is not None:
            if user_groups is not None or self.window is not None:
                raise ValueError("item_counts replaces the matrix's counts: it takes neither "
                                 "user_groups nor a window")
            counts = np.asarray(item_counts, dtype=np.float64).reshape(-1)
            if counts.size != X.shape[1] or not np.isfinite(counts).all() or (counts < 0).any():
                raise ValueError(f"item_counts must hold {X.shape[1]} finite counts >= 0, one "
                                 f"per item")
            per_user = None
        else:
            values = X if self.weighted else (X != 0).astype(np.float64)
            per_user = sp.csr_matrix(values, dtype=np.float64)
            if self.window is not None:
                per_user = per_user.multiply(self._recent(pair_age, X.shape)).tocsr()
            counts = np.asarray(per_user.sum(axis=0)).ravel()
        total = counts.sum()
        share = counts / total if total > 0 else np.zeros_like(counts)
        self.global_scores_ = share.astype(np.float32)
        if user_groups is None:
            self.user_groups_ = np.zeros(0, dtype=np.int64)
            self.groups_ = np.zeros(0, dtype=np.int64)
            self.group_scores_ = np.zeros((0, self.n_items_), dtype=np.float32)
            return
        groups = _as_groups(user_groups, X.shape[0], "user_groups")
        self.user_groups_ = groups
        known = groups >= 0
        ids, inverse = np.unique(groups[known], return_inverse=True)
        # Sum rows per group with one sparse product: (groups × users) @ (users × items).
        membership = sp.csr_matrix(
            (np.ones(inverse.size), (inverse, np.flatnonzero(known))),
            shape=(ids.size, X.shape[0]),
        )
        group_counts = np.asarray((membership @ per_user).todense())
        group_totals = group_counts.sum(axis=1, keepdims=True)
        scores = (group_counts + self.shrinkage * share) / np.maximum(
            group_totals + self.shrinkage, np.finfo(np.float64).tiny
        )
        # Groups whose members never interacted would score all zeros: drop them so those
        # users fall back to the global ranking.
        keep = group_totals.ravel() > 0
        self.groups_ = ids[keep].astype(np.int64)
        self.group_scores_ = scores[keep].astype(np.float32)

    def _recent(self, pair_age: Any, shape: tuple[int, int]) -> sp.csr_matrix:
        """0/1 matrix of the pairs whose latest interaction lies within ``window``."""
        if pair_age is None:
            raise ValueError(f"{type(self).__name__}(window={self.window!r}) needs pair_age "
                             "(the age of each pair's latest interaction) in fit")
        if not sp.issparse(pair_age) or pair_age.shape != shape:
            raise ValueError(f"pair_age must be a sparse matrix of shape {shape} like "
                             f"user_items, got {type(pair_age).__name__} "
                             f"{getattr(pair_age, 'shape', None)}")
        recent = sp.csr_matrix(pair_age, dtype=np.float64, copy=True)
        # Only stored ages are pairs with an interaction: compare them, not the implicit zeros.
        recent.data = (recent.data <= float(self.window)).astype(np.float64)
        recent.eliminate_zeros()
        return recent

    def _score(self, users: np.ndarray, X: sp.csr_matrix, user_groups: Any = None) -> np.ndarray:
        if user_groups is not None:
            groups = _as_groups(user_groups, len(users), "user_groups")
        else:
            groups = np.full(len(users), -1, dtype=np.int64)
            known = self._known(users, self.user_groups_.size)
            groups[known] = self.user_groups_[users[known]]
        # Row len(groups_) of the table is the global ranking: the fallback for every miss.
        pos = np.searchsorted(self.groups_, groups)
        pos = np.minimum(pos, max(self.groups_.size - 1, 0))
        hit = (self.groups_.size > 0) & (groups >= 0)
        if self.groups_.size:
            hit &= self.groups_[pos] == groups
        rows = np.where(hit, pos, self.groups_.size)
        return self._table()[rows]

    def _table(self) -> np.ndarray:
        """Group rows plus the global row, built once per fit (serving calls this per request)."""
        cache = self.__dict__.setdefault("_cache", {})
        if "table" not in cache:
            cache["table"] = np.vstack([self.group_scores_, self.global_scores_[None, :]])
        return cache["table"]


def _as_groups(groups: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(groups)
    if arr.shape != (n,) or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(
            f"{name} must be an int array with one group id per user ({n}), got dtype "
            f"{arr.dtype} shape {arr.shape}"
        )
    return arr.astype(np.int64)


class CategoryPopularity(Popularity):
    """The popularity of an item's *category* (globally or within the user's group).

    The baseline for courses nobody has taken yet: a new course inherits the share of its
    category, and within a category items are ordered by their own share (a 1e-3 tie-break).
    Items of unknown category (negative ids) share one "unknown" bucket.

    Side information
    ----------------
    ``fit(user_items, item_category, user_groups=None, pair_age=None)``: ``item_category`` int
    (n_items,); the others as :class:`Popularity`.
    ``score``/``recommend``: as :class:`Popularity`.
    """

    _fitted_arrays = (*Popularity._fitted_arrays, "item_category_")

    def _fit(self, X: sp.csr_matrix, item_category: Any = None, user_groups: Any = None,
             pair_age: Any = None) -> None:
        if item_category is None:
            raise ValueError("CategoryPopularity.fit needs item_category (one id per item)")
        cats = np.asarray(item_category)
        if cats.shape != (X.shape[1],) or (cats.size and not np.issubdtype(cats.dtype, np.integer)):
            raise ValueError(f"item_category must be an int array with one id per item "
                             f"({X.shape[1]}), got dtype {cats.dtype} shape {cats.shape}")
        super()._fit(X, user_groups=user_groups, pair_age=pair_age)
        n_cat = int(cats.max(initial=-1)) + 1
        column = np.where(cats >= 0, cats, n_cat).astype(np.int64)
        # Shares are linear in the counts, so a category's share is the sum of its items'.
        onehot = sp.csr_matrix((np.ones(cats.size), (np.arange(cats.size), column)),
                               shape=(cats.size, n_cat + 1))

        def by_category(item_scores: np.ndarray) -> np.ndarray:
            per_cat = np.asarray(onehot.T @ np.asarray(item_scores, dtype=np.float64).T).T
            return (per_cat[..., column] + 1e-3 * item_scores).astype(np.float32)

        self.global_scores_ = by_category(self.global_scores_)
        if self.group_scores_.size:
            self.group_scores_ = by_category(self.group_scores_)
        self.item_category_ = cats.astype(np.int64)

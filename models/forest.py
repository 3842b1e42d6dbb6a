"""The re-ranker's trees as per-feature lookup tables: one resident's few hundred candidate rows
are scored in ~0.2 ms, where sklearn's per-tree calls take ~4 ms (docs/decisions.md)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from models.base import float32_keys


class FlatForest:
    """A fitted binary ``HistGradientBoostingClassifier`` as per-feature lookup tables.

    Gives the same probabilities as ``predict_proba(X)[:, 1]`` (a test checks it) for
    numerical splits, without walking any tree. Number each tree's leaves left to right; a
    split whose test fails (``x > threshold``) rules out every leaf of its left subtree, and
    the leaf a row reaches is the leftmost one no failed split rules out (the QuickScorer
    observation, Lucchese et al. 2015). A row fails exactly the splits on feature ``f`` whose
    thresholds lie below ``x_f``: a prefix of that feature's splits sorted by threshold, so
    the surviving-leaf bitmasks of every tree are tabulated per prefix once, and predicting is
    a ``searchsorted`` (one for all features of float32 rows, the signal rows: every threshold
    as a float32 key; else one per feature), one gather and an AND over features, on 64-bit
    words that pack several trees' masks.

    Several fitted classifiers (an averaged re-ranker's members) can share one table: their
    trees are walked together, each member's raw score summed over its own trees, and the
    answer is the mean of the members' probabilities.

    :meth:`from_sklearn` returns None for categorical splits, more than 64 leaves per tree,
    members of different sizes or another layout; callers then use sklearn's own predictor.
    """

    def __init__(self, thresholds, offsets, nan_rows, table, leaf_values, baselines):
        n_trees = table.shape[1]
        # Only features some tree splits on: every row of another feature's block is "all
        # leaves survive", so it would change no AND.
        self.used = np.array([f for f, t in enumerate(thresholds) if t.size], dtype=np.int64)
        self.thresholds = [thresholds[f] for f in self.used]  # ascending, per used feature
        self.offsets = np.asarray(offsets)[self.used]  # first row of its block in the table
        self.nan_rows = np.asarray(nan_rows)[self.used]  # the row for a missing value
        # The thresholds of every used feature as one ascending array of float32 keys (see
        # float32_keys): one searchsorted places a whole float32 batch.
        self.keys = np.concatenate([float32_keys(_down_to_float32(t)) + (u << 32)
                                    for u, t in enumerate(self.thresholds)] or [np.zeros(0, int)])
        starts = np.cumsum([0] + [t.size for t in self.thresholds])[:-1]
        self.key_shift = (self.offsets - starts).astype(np.int64)
        # Surviving-leaf masks per prefix of failures, several trees' masks packed in each
        # uint64 word (trees padded with "every leaf survives"): the AND runs on 64-bit words.
        per_word = 64 // np.iinfo(table.dtype).bits
        padded = np.full((table.shape[0], -(-n_trees // per_word) * per_word),
                         np.iinfo(table.dtype).max, dtype=table.dtype)
        padded[:, :n_trees] = table
        self.words = np.ascontiguousarray(padded).view(np.uint64)  # (rows, n_words)
        self.mask_dtype = table.dtype
        self.n_trees = n_trees
        self.leaf_values = leaf_values  # (n_trees, max_leaves), leaves left to right
        self.leaf_base = np.arange(n_trees) * leaf_values.shape[1]  # tree's row, flattened
        self.baselines = np.asarray(baselines, dtype=np.float64)  # one per member, in order

    @classmethod
    def from_sklearn(cls, *rankers) -> FlatForest | None:
        """The tables of one fitted classifier, or of several with the same number of trees
        (scored as the mean of their probabilities); None for a layout they cannot hold."""
        try:
            predictors = [per_iteration for ranker in rankers for per_iteration in
                          ranker._predictors]
            if any(len(per_iteration) != 1 for per_iteration in predictors):
                return None
            if len({len(ranker._predictors) for ranker in rankers}) != 1:
                return None
            if len({int(ranker.n_features_in_) for ranker in rankers}) != 1:
                return None
            trees = [per_iteration[0].nodes for per_iteration in predictors]
            if any(t["is_categorical"].any() for t in trees):
                return None
            n_leaves = max(int(t["is_leaf"].sum()) for t in trees)
            dtype = next((d for d in (np.uint16, np.uint32, np.uint64)
                          if np.iinfo(d).bits >= n_leaves), None)
            if dtype is None:
                return None
            splits, leaf_values = [], np.zeros((len(trees), n_leaves))
            for tree, nodes in enumerate(trees):
                for node, leaves in _left_leaves(nodes, leaf_values[tree]):
                    splits.append((int(nodes["feature_idx"][node]),
                                   float(nodes["num_threshold"][node]),
                                   bool(nodes["missing_go_to_left"][node]), tree,
                                   sum(1 << leaf for leaf in leaves)))
            n_features = int(rankers[0].n_features_in_)
            full = np.iinfo(dtype).max
            thresholds, offsets, nan_rows, blocks = [], [], [], []
            row = 0
            for feature in range(n_features):
                mine = sorted((s for s in splits if s[0] == feature), key=lambda s: s[1])
                block = np.full((len(mine) + 2, len(trees)), full, dtype=dtype)
                for k, (_, _, _, tree, left) in enumerate(mine):  # fail the k+1 lowest
                    block[k + 1 :, tree] &= dtype(full & ~left)
                block[-1] = full  # the missing-value row: fails where NaN goes right
                for _, _, missing_left, tree, left in mine:
                    if not missing_left:
                        block[-1, tree] &= dtype(full & ~left)
                thresholds.append(np.array([s[1] for s in mine], dtype=np.float64))
                offsets.append(row)
                nan_rows.append(row + len(mine) + 1)
                blocks.append(block)
                row += len(block)
            baselines = [float(np.ravel(ranker._baseline_prediction)[0]) for ranker in rankers]
            return cls(thresholds, np.array(offsets), np.array(nan_rows), np.vstack(blocks),
                       leaf_values, baselines)
        except (AttributeError, KeyError, IndexError, ValueError):
            return None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(positive) for each row of ``X`` (float64): the members' mean."""
        X = np.asarray(X)
        if X.dtype != np.float32:
            X = np.asarray(X, dtype=np.float64)
        X = X[:, self.used].T  # (n_used, n_rows): one block of table rows per feature
        if X.dtype == np.float32:  # the signal rows: one searchsorted for every feature
            keys = float32_keys(X) + (np.arange(X.shape[0])[:, None] << 32)
            rows = self.keys.searchsorted(keys, side="left") + self.key_shift[:, None]
        else:
            rows = np.empty(X.shape, dtype=np.int64)
            for u, thresholds in enumerate(self.thresholds):
                # side="left": a split fails when x > threshold
                rows[u] = thresholds.searchsorted(X[u], side="left")
            rows += self.offsets[:, None]
        missing = np.isnan(X)
        if missing.any():  # NaN takes the feature's missing-value row instead
            rows[missing] = np.broadcast_to(self.nan_rows[:, None], X.shape)[missing]
        # The AND over features of the gathered masks, feature-major: each step is one long
        # vectorised AND over every row's words.
        alive = np.bitwise_and.reduce(self.words.take(rows, axis=0), axis=0)
        alive = alive.view(self.mask_dtype)[:, : self.n_trees]  # (n_rows, n_trees)
        leaf = _leftmost_leaf(alive)
        values = self.leaf_values.take(leaf + self.leaf_base)  # (n_rows, n_trees)
        if self.baselines.size == 1:
            # the logistic link, without overflow warnings for large |raw|
            return expit(self.baselines[0] + values.sum(axis=1))
        # each member's raw score over its own trees (members' trees are consecutive)
        raw = values.reshape(values.shape[0], self.baselines.size, -1).sum(axis=2)
        return expit(raw + self.baselines).T.mean(axis=0)


# Index of the lowest set bit of every 16-bit mask (uint16 covers up to 16 leaves, the usual).
_LOWEST_BIT_16 = np.zeros(1 << 16, dtype=np.int64)
for _bit in range(15, -1, -1):
    _LOWEST_BIT_16[(np.arange(1 << 16) & (1 << _bit)) != 0] = _bit


def _leftmost_leaf(alive: np.ndarray) -> np.ndarray:
    """The leftmost surviving leaf of every mask: the index of its lowest set bit."""
    if alive.dtype == np.uint16:
        return _LOWEST_BIT_16.take(alive)
    lowest = (alive & (~alive + alive.dtype.type(1))).astype(np.float64)
    return np.log2(lowest).astype(np.int64)


def _down_to_float32(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold.

    For a float32 ``x`` and a float64 ``t``, ``t < x`` exactly when ``down(t) < x``: no
    float32 lies strictly between ``down(t)`` and ``t``. So float32 rows compare with these.
    """
    down = thresholds.astype(np.float32)
    above = down.astype(np.float64) > thresholds
    down[above] = np.nextafter(down[above], np.float32(-np.inf))
    return down


def _left_leaves(nodes, values: np.ndarray) -> list[tuple[int, list[int]]]:
    """Each split node of one tree with the left-to-right numbers of its left subtree's leaves;
    fills ``values`` with the leaves' values in that order."""
    number: dict[int, int] = {}
    below: dict[int, list[int]] = {}
    stack = [(0, False)]
    while stack:  # post-order without recursion
        node, done = stack.pop()
        if nodes["is_leaf"][node]:
            number[node] = len(number)
            values[number[node]] = nodes["value"][node]
            below[node] = [number[node]]
        elif done:
            below[node] = below[int(nodes["left"][node])] + below[int(nodes["right"][node])]
        else:
            stack += [(node, True), (int(nodes["right"][node]), False),
                      (int(nodes["left"][node]), False)]
    return [(node, below[int(nodes["left"][node])]) for node in below
            if not nodes["is_leaf"][node]]

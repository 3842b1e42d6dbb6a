"""The re-ranker's trees as per-feature lookup tables: one resident's few hundred candidate rows
are scored in ~0.35 ms, where sklearn's per-tree calls take ~4 ms (docs/decisions.md)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit


class FlatForest:
    """A fitted binary ``HistGradientBoostingClassifier`` as per-feature lookup tables.

    Gives the same probabilities as ``predict_proba(X)[:, 1]`` (a test checks it) for
    numerical splits, without walking any tree. Number each tree's leaves left to right; a
    split whose test fails (``x > threshold``) rules out every leaf of its left subtree, and
    the leaf a row reaches is the leftmost one no failed split rules out (the QuickScorer
    observation, Lucchese et al. 2015). A row fails exactly the splits on feature ``f`` whose
    thresholds lie below ``x_f``: a prefix of that feature's splits sorted by threshold, so
    the surviving-leaf bitmasks of every tree are tabulated per prefix once, and predicting is
    one ``searchsorted`` per feature, one gather and an AND over features.

    :meth:`from_sklearn` returns None for categorical splits, more than 64 leaves per tree or
    another layout; callers then use sklearn's own predictor.
    """

    def __init__(self, thresholds, offsets, nan_rows, table, leaf_values, baseline):
        self.thresholds = thresholds  # per feature: its split thresholds, ascending
        self.offsets = offsets  # per feature: first row of its block in ``table``
        self.nan_rows = nan_rows  # per feature: the row for a missing value
        self.table = table  # (rows, n_trees) unsigned: surviving leaves per prefix of failures
        self.leaf_values = leaf_values  # (n_trees, max_leaves), leaves left to right
        self.baseline = baseline

    @classmethod
    def from_sklearn(cls, ranker) -> FlatForest | None:
        try:
            if any(len(per_iteration) != 1 for per_iteration in ranker._predictors):
                return None
            trees = [per_iteration[0].nodes for per_iteration in ranker._predictors]
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
            n_features = int(ranker.n_features_in_)
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
            return cls(thresholds, np.array(offsets), np.array(nan_rows), np.vstack(blocks),
                       leaf_values, float(np.ravel(ranker._baseline_prediction)[0]))
        except (AttributeError, KeyError, IndexError, ValueError):
            return None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(positive) for each row of ``X`` (float64)."""
        X = np.asarray(X, dtype=np.float64)
        rows = np.empty(X.shape, dtype=np.int64)
        for f, thresholds in enumerate(self.thresholds):
            # side="left": a split fails when x > threshold (the method, not np.searchsorted:
            # this runs once per feature per request)
            rows[:, f] = thresholds.searchsorted(X[:, f], side="left")
        rows += self.offsets
        missing = np.isnan(X)
        if missing.any():  # NaN sorts last; it takes the feature's missing-value row instead
            rows[missing] = np.broadcast_to(self.nan_rows, X.shape)[missing]
        alive = np.bitwise_and.reduce(self.table[rows], axis=1)  # (n_rows, n_trees)
        lowest = (alive & (~alive + alive.dtype.type(1))).astype(np.float64)
        leaf = np.log2(lowest).astype(np.int64)  # the leftmost surviving leaf
        raw = self.baseline + self.leaf_values[np.arange(leaf.shape[1]), leaf].sum(axis=1)
        return expit(raw)  # the logistic link, without overflow warnings for large |raw|


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

"""Item-kNN: cosine similarity between item columns, top-k neighbours per item.

Like implicit's ``ItemItemRecommender``: each item keeps its ``k`` most similar items, and a
user's score for item ``j`` is ``sum_i weight(u, i) * sim(i, j)`` over the items ``i`` in the
user's row, so any row (a new user, a refreshed history) can be scored.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.base import DENSE_ITEM_LIMIT, Recommender, check_param
from models.weighting import ValueWeighting

# Rows of the item-item product made dense at once: bounds memory to _CHUNK × n_items floats.
_CHUNK = 512


class ItemKNN(ValueWeighting, Recommender):
    """Item-item collaborative filtering with shrunk cosine similarity.

    ``sim(i, j) = x_i · x_j / (‖x_i‖ ‖x_j‖ + shrinkage)`` over the item columns of the
    training matrix; an item is never its own neighbour.

    Parameters
    ----------
    k : int, default 100
        Neighbours kept per item.
    shrinkage : float, default 0.0
        Added to the cosine denominator: damps similarities resting on few co-occurrences.
    weighting : {"raw", "binary", "log"}, default "raw"
        How the matrix's values are read (:mod:`models.weighting`).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix of float32, shape (n_items, n_items)
        Row ``i`` holds the ``k`` nearest neighbours of item ``i``.
    value_scale_ : float or None
        What ``weighting="log"`` reads as 1 (:class:`~models.weighting.ValueWeighting`).
    """

    _fitted_arrays = ("similarity_", "value_scale_")
    _optional_arrays = ("value_scale_",)

    def __init__(self, k: int = 100, shrinkage: float = 0.0, weighting: str = "raw"):
        self.k = k
        self.shrinkage = shrinkage
        self.weighting = weighting

    def _validate_params(self) -> None:
        check_param("k", self.k, "int", low=1)
        check_param("shrinkage", self.shrinkage, "float", low=0.0)
        self._check_weighting()

    def _fit(self, X: sp.csr_matrix) -> None:
        X = self._weigh_fit(X)
        item_users = sp.csr_matrix(X.T, dtype=np.float64)
        norms = np.sqrt(np.asarray(item_users.multiply(item_users).sum(axis=1)).ravel())
        gram = sp.csr_matrix(item_users @ item_users.T)
        n_items = X.shape[1]
        k = min(int(self.k), max(n_items - 1, 0))
        rows, cols, vals = [], [], []
        for start in range(0, n_items, _CHUNK):
            stop = min(start + _CHUNK, n_items)
            block = gram[start:stop].toarray()
            denom = norms[start:stop, None] * norms[None, :] + float(self.shrinkage)
            sim = np.divide(block, denom, out=np.zeros_like(block), where=denom > 0)
            local = np.arange(stop - start)
            sim[local, local + start] = 0.0
            if k == 0:
                continue
            # k <= n_items - 1, so argpartition always has a strict cut.
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            top_vals = np.take_along_axis(sim, top, axis=1)
            keep = top_vals != 0
            rows.append(np.repeat(local + start, k)[keep.ravel()])
            cols.append(top[keep])
            vals.append(top_vals[keep])
        if rows:
            r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        else:
            r = c = np.zeros(0, dtype=np.int64)
            v = np.zeros(0)
        similarity = sp.csr_matrix(
            (v.astype(np.float32), (r, c)), shape=(n_items, n_items), dtype=np.float32
        )
        similarity.sort_indices()
        self.similarity_ = similarity

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        X = self._weigh(X)
        dense = self._dense_similarity()
        if dense is not None:
            return np.asarray(X @ dense, dtype=np.float32)
        return np.asarray((X @ self.similarity_).todense(), dtype=np.float32)

    def similarity_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``sim(rows[a], cols[b])`` as a dense (len(rows), len(cols)) array."""
        self._check_fitted()
        dense = self._dense_similarity()
        if dense is not None:
            return dense[np.ix_(rows, cols)]
        return self.similarity_[rows][:, cols].toarray()

    def _dense_similarity(self) -> np.ndarray | None:
        if self.n_items_ > DENSE_ITEM_LIMIT:
            return None
        return self._cached("dense", self.similarity_.toarray)

"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

A closed-form item-item model: ``P = (XᵀX + λI)⁻¹`` and ``B = I - P / diag(P)`` (column-wise),
which is the least-squares item-item weight matrix with a zero diagonal. Scores are ``x_u B``
for any row ``x_u``, so new users and refreshed histories need no refit. A catalogue of 3,000
items is one 3k × 3k inverse (about a second); memory grows with the square of the number of
items *with interactions*: an item no row touches has an all-zero Gram row and column, so its
weights are zero and the inverse of the rest is that of the active items' Gram matrix alone.
A 50,000-item catalogue of which 10,000 are used is a 10k × 10k problem.

The inverse costs the cube of the active items and several dense copies of their square:
40,000 used items would need about 13 GB per float64 copy and hours on two cores. So at most
``max_items`` of them (default 10,000: about 30 s and a 4 GB peak on 2 cores) are solved
over: the most used ones, which hold most of the interactions of any long-tailed catalogue;
the rest score 0, as unused items do, and are left to other models (docs/decisions.md).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from models.base import DENSE_ITEM_LIMIT, Recommender, check_param, most_used_items
from models.weighting import ValueWeighting


class EASE(ValueWeighting, Recommender):
    """Embarrassingly shallow autoencoder: a closed-form item-item regression.

    Parameters
    ----------
    l2 : float, default 500.0
        The ridge λ added to the diagonal of the Gram matrix (Steck's default for large data;
        small catalogues usually want less).
    max_items : int, default 10000
        At most this many items are solved over: those with the most users (ties by the lower
        index); the others score 0.
    weighting : {"raw", "binary", "log"}, default "raw"
        How the matrix's values are read (:mod:`models.weighting`).

    Attributes
    ----------
    weights_ : ndarray of float32, shape (n_active, n_active)
        ``B`` over the active items, with a zero diagonal: score = ``user_row[active_] @
        weights_`` on the active items, 0 on the others.
    active_ : ndarray of int64 or None
        The items solved over: those with interactions at fit time, the ``max_items`` most
        used of them (None in a file of an earlier version, whose ``weights_`` cover every
        item).
    value_scale_ : float or None
        What ``weighting="log"`` reads as 1 (:class:`~models.weighting.ValueWeighting`).
    """

    _fitted_arrays = ("weights_", "active_", "value_scale_")
    _optional_arrays = ("active_", "value_scale_")

    def __init__(self, l2: float = 500.0, max_items: int = 10_000, weighting: str = "raw"):
        self.l2 = l2
        self.max_items = max_items
        self.weighting = weighting

    def _validate_params(self) -> None:
        check_param("l2", self.l2, "float", low=0.0, low_inclusive=False)
        check_param("max_items", self.max_items, "int", low=1)
        self._check_weighting()

    def _fit(self, X: sp.csr_matrix) -> None:
        X = self._weigh_fit(X)
        # Float64 for the inverse: float32 loses the small off-diagonal weights on ill-
        # conditioned Gram matrices; the result is stored as float32.
        active = self.active_ = most_used_items(X, int(self.max_items))
        if active.size == 0:
            self.weights_ = np.zeros((0, 0), dtype=np.float32)
            return
        X64 = sp.csr_matrix(X[:, active], dtype=np.float64)
        gram = np.asarray((X64.T @ X64).todense())
        gram[np.diag_indices_from(gram)] += float(self.l2)
        # The Gram matrix plus λI is symmetric positive definite: invert it through its
        # Cholesky factor (potri), half the flops of a general inverse.
        factor, lower = scipy.linalg.cho_factor(gram, overwrite_a=True, check_finite=False)
        inverse, info = scipy.linalg.lapack.dpotri(factor, lower=lower, overwrite_c=True)
        if info != 0:  # pragma: no cover - impossible for an SPD matrix
            raise np.linalg.LinAlgError(f"EASE: Gram matrix inversion failed (LAPACK info={info})")
        # potri fills one triangle only.
        triangle = np.tril(inverse) if lower else np.triu(inverse)
        precision = (
            triangle + np.tril(triangle, -1).T if lower else triangle + np.triu(triangle, 1).T
        )
        weights = precision / -np.diag(precision)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        # C order: LAPACK returns a Fortran array, and scipy copies a non-C dense operand
        # on every sparse @ dense product (36 MB per call at 3k items).
        self.weights_ = np.ascontiguousarray(weights, dtype=np.float32)

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        X = self._weigh(X)
        # Every item active (the usual case), or an earlier version's file: no column slicing.
        if self.active_ is None or self.active_.size == self.n_items_:
            return np.asarray(X @ self.weights_, dtype=np.float32)
        full = self._full_weights()
        if full is not None:  # the same sums: an inactive item's row and column are zeros
            return np.asarray(X @ full, dtype=np.float32)
        scores = np.zeros((X.shape[0], self.n_items_), dtype=np.float32)
        if self.active_.size:
            scores[:, self.active_] = X[:, self.active_] @ self.weights_
        return scores

    def _full_weights(self) -> np.ndarray | None:
        """``weights_`` spread over every item (zeros for inactive ones), for catalogues up to
        ``DENSE_ITEM_LIMIT`` items (else None): slicing one resident's row to the active
        columns cost more than the product itself."""
        if self.n_items_ > DENSE_ITEM_LIMIT:
            return None

        def build() -> np.ndarray:
            full = np.zeros((self.n_items_, self.n_items_), dtype=np.float32)
            full[np.ix_(self.active_, self.active_)] = self.weights_
            return full

        return self._cached("full", build)

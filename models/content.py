"""Content model: a user's profile in item-feature space, matched against item features.

A user's profile is the weighted sum of the feature rows of the items in their row; an item's
score is the cosine between that profile and its (idf-weighted, normalised) feature row. Items
with no interactions score like any other ("cold items"), and a single item is enough history.
The feature matrix (category, tags, target bands, words of the title…) is built by ``features``
and passed at fit time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize as l2_normalize

from models.base import DENSE_ITEM_LIMIT, Recommender, _as_csr, check_bool

# Users scored per dense block of profiles: bounds memory to _CHUNK × n_features floats.
_CHUNK = 1024


class ContentModel(Recommender):
    """Profile-to-item cosine over item features.

    Parameters
    ----------
    idf : bool, default True
        Weight features by smoothed inverse item frequency ``ln((1 + n) / (1 + df)) + 1``, so a
        feature every item has (e.g. a common tag) counts less than a distinctive one.
    normalize : bool, default True
        L2-normalise item rows and user profiles (scores become cosines in [-1, 1]); without
        it items with many features and users with long histories score higher.

    Side information
    ----------------
    ``fit(user_items, item_features=M)``: required, sparse or dense (n_items, n_features).

    Attributes
    ----------
    item_features_ : scipy.sparse.csr_matrix of float32, shape (n_items, n_features)
        The weighted (and normalised) feature rows.
    feature_weights_ : ndarray of float32, shape (n_features,)
        The idf weights (all ones when ``idf=False``).
    """

    _fitted_arrays = ("item_features_", "feature_weights_")

    def __init__(self, idf: bool = True, normalize: bool = True):
        self.idf = idf
        self.normalize = normalize

    def _validate_params(self) -> None:
        check_bool("idf", self.idf)
        check_bool("normalize", self.normalize)

    def _fit(self, X: sp.csr_matrix, item_features: Any = None) -> None:
        if item_features is None:
            raise ValueError("ContentModel.fit needs item_features=(n_items × n_features matrix)")
        F = _as_csr(item_features, "item_features")  # 2-D, numeric, finite, float32
        if F.shape[0] != X.shape[1]:
            raise ValueError(
                f"item_features must have one row per item ({X.shape[1]}), got shape {F.shape}"
            )
        n_items = F.shape[0]
        if self.idf:
            df = np.bincount(F.indices[F.data != 0], minlength=F.shape[1])
            weights = np.log((1.0 + n_items) / (1.0 + df)) + 1.0
        else:
            weights = np.ones(F.shape[1])
        F = sp.csr_matrix(F @ sp.diags(weights.astype(np.float32)), dtype=np.float32)
        if self.normalize:
            F = sp.csr_matrix(l2_normalize(F, norm="l2", axis=1), dtype=np.float32)
        F.eliminate_zeros()
        F.sort_indices()
        self.item_features_ = F
        self.feature_weights_ = weights.astype(np.float32)

    def similarity_block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Dot products of the (weighted, normalised) feature rows ``rows`` x ``cols``, dense."""
        self._check_fitted()
        gram = self._gram()
        if gram is not None:
            return gram[np.ix_(rows, cols)]
        F = self.item_features_
        return (F[rows] @ F[cols].T).toarray()

    def _gram(self) -> np.ndarray | None:
        """``F Fᵀ`` dense, for catalogues up to ``DENSE_ITEM_LIMIT`` items (else None)."""
        if self.n_items_ > DENSE_ITEM_LIMIT:
            return None

        def build() -> np.ndarray:
            F = self.item_features_
            FT = sp.csr_matrix(F.T)
            gram = np.empty((F.shape[0], F.shape[0]), dtype=np.float32)
            for start in range(0, F.shape[0], _CHUNK):  # bounds the sparse intermediate
                gram[start : start + _CHUNK] = (F[start : start + _CHUNK] @ FT).toarray()
            return gram

        return self._cached("gram", build)

    def user_profiles(self, user_items: Any) -> np.ndarray:
        """Users' profiles in feature space, one row per row of ``user_items``.

        Parameters
        ----------
        user_items : scipy.sparse matrix, shape (n, n_items_)

        Returns
        -------
        ndarray of float32, shape (n, n_features)
            Weighted sums of the users' item feature rows (unit length when ``normalize``).
        """
        self._check_fitted()
        X = self._check_rows(np.zeros(user_items.shape[0], dtype=np.int64), user_items)
        return self._profiles(X)

    def _profiles(self, X: sp.csr_matrix) -> np.ndarray:
        profiles = np.asarray((X @ self.item_features_).todense(), dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(profiles, axis=1, keepdims=True)
            np.divide(profiles, norms, out=profiles, where=norms > 0)
        return profiles

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        gram = self._gram()
        if gram is not None:
            # profile = x F, score = F profile / |profile| = x G / sqrt(x G xᵀ) with G = F Fᵀ:
            # the same cosines without building the profile.
            scores = np.asarray(X @ gram, dtype=np.float32)
            if self.normalize:
                rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
                sq = np.bincount(rows, weights=X.data * scores[rows, X.indices],
                                 minlength=X.shape[0])
                norms = np.sqrt(np.maximum(sq, 0.0)).astype(np.float32)[:, None]
                np.divide(scores, norms, out=scores, where=norms > 0)
            return scores
        scores = np.empty((X.shape[0], self.n_items_), dtype=np.float32)
        # sparse items × features @ dense features × users: work in nnz(item_features) per
        # user, where a sparse-sparse product spends most of its time building the output.
        for start in range(0, X.shape[0], _CHUNK):
            block = self._profiles(X[start : start + _CHUNK])
            scores[start : start + _CHUNK] = (self.item_features_ @ block.T).T
        return scores

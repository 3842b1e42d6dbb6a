"""LightFM (Kula 2015, "Metadata Embeddings for User and Item Cold-start Recommendations").

The hybrid matrix factorisation most used where cold start matters, and the library this
engine is measured against: a user is the sum of the embeddings of their features, an item
the sum of its features', and the score is their dot product plus the item's bias, learned
with a ranking loss (WARP or BPR) over the interactions. Here it is a baseline of the
benchmark (``recommender benchmark``), not part of the served model.

Features, each row scaled to sum to 1 (as LightFM's own ``Dataset`` builds them):

- a user: their own identity if they have interactions at fit time, their age band and their
  profile attributes (``user_band``, ``user_attributes``), when ``side_features``;
- an item: its own identity if it has interactions at fit time, and its row of
  ``item_features``, when ``side_features`` (the benchmark passes the items' metadata:
  category, target bands, tags, fee tier; ``ModelInputs.item_metadata``).

An identity with no interactions would keep its random initial embedding, so a user or an item
without interactions is represented by its side features alone: that is how LightFM ranks a
newcomer or a new course. Without side features such a user scores every item by its bias
(popularity-like) and such an item scores 0.

The fitted user and item representations are stored; a user unseen at fit time (an index
outside ``[0, n_users_)``) is scored by the item biases alone, since LightFM has no fold-in of
a history row. The fit runs on one thread by default: LightFM's threads update the same
embeddings without locks, so two threads do not give the same model twice for a seed.

LightFM is an optional dependency (``pip install -e '.[compare]'``, built from source with a C
compiler): it is imported by ``fit`` only, and :func:`missing` says whether it can be.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from features.tables import one_hot
from models.base import Recommender, check_bool, check_param

LOSSES = ("warp", "bpr")
INSTALL_HINT = ("pip install -e '.[compare]' (LightFM is built from source: it needs a C "
                "compiler and the Python headers)")


def missing() -> str | None:
    """Why LightFM cannot be used here (one line), or None when it can."""
    try:
        import lightfm  # noqa: F401
    except ImportError as error:
        return f"LightFM is not installed ({error}): {INSTALL_HINT}"
    return None


def _code_columns(codes: np.ndarray) -> sp.csr_matrix:
    """One 0/1 column per value of each column of ``codes`` (int, -1 unknown: none set)."""
    codes = np.asarray(codes, dtype=np.int64).reshape(len(codes), -1)
    blocks = [one_hot(column, int(column.max(initial=-1)) + 1) for column in codes.T]
    return sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((len(codes), 0))


def feature_rows(active: np.ndarray, side: list[sp.csr_matrix]) -> sp.csr_matrix:
    """``[identity where active | side blocks...]``, each row scaled to sum to 1."""
    # One column per entity, set only where it is active.
    identity = one_hot(np.where(active, np.arange(active.size), -1), active.size)
    matrix = sp.hstack([identity, *side], format="csr", dtype=np.float32)
    return normalize(matrix, norm="l1", axis=1).astype(np.float32).tocsr()


class LightFMHybrid(Recommender):
    """LightFM over identities and side features (a benchmark baseline).

    Parameters
    ----------
    factors : int, default 64
        Embedding size.
    loss : {"warp", "bpr"}, default "warp"
    epochs : int, default 30
    learning_rate : float, default 0.05
    alpha : float, default 0.0
        L2 penalty of both the user and the item features (LightFM's ``user_alpha`` and
        ``item_alpha``).
    side_features : bool, default True
        Users' band and attributes and items' content as features; False is plain
        matrix factorisation with LightFM's loss.
    random_state : int or None
    num_threads : int, default 1

    Side information
    ----------------
    ``fit(user_items, user_band=..., user_attributes=..., item_features=...)``: each optional;
    one row per user (band: int codes, -1 unknown; attributes: int codes, (n_users, k)) or per
    item (a sparse content matrix).

    Attributes
    ----------
    user_embeddings_, user_biases_ : ndarray of float32
        The fitted users' representations, shape (n_users, factors) and (n_users,).
    item_embeddings_, item_biases_ : ndarray of float32
        The items', shape (n_items, factors) and (n_items,).
    """

    _fitted_arrays = ("user_embeddings_", "user_biases_", "item_embeddings_", "item_biases_")

    def __init__(self, factors: int = 64, loss: str = "warp", epochs: int = 30,
                 learning_rate: float = 0.05, alpha: float = 0.0, side_features: bool = True,
                 random_state: int | None = None, num_threads: int = 1):
        self.factors = factors
        self.loss = loss
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.side_features = side_features
        self.random_state = random_state
        self.num_threads = num_threads

    def _validate_params(self) -> None:
        check_param("factors", self.factors, "int", low=1)
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: must be one of {list(LOSSES)}")
        check_param("epochs", self.epochs, "int", low=1)
        check_param("learning_rate", self.learning_rate, "float", low=0.0, low_inclusive=False)
        check_param("alpha", self.alpha, "float", low=0.0)
        check_bool("side_features", self.side_features)
        if self.random_state is not None:
            check_param("random_state", self.random_state, "int", low=0)
        check_param("num_threads", self.num_threads, "int", low=1)

    def _fit(self, X: sp.csr_matrix, user_band: Any = None, user_attributes: Any = None,
             item_features: Any = None) -> None:
        from lightfm import LightFM  # optional: see missing()

        n_users, n_items = X.shape
        user_side, item_side = [], []
        if self.side_features:
            for name, codes in (("user_band", user_band), ("user_attributes", user_attributes)):
                if codes is not None:
                    if len(codes) != n_users:
                        raise ValueError(f"{name} has {len(codes)} rows, expected {n_users}")
                    user_side.append(_code_columns(codes))
            if item_features is not None:
                if item_features.shape[0] != n_items:
                    raise ValueError(f"item_features has {item_features.shape[0]} rows, "
                                     f"expected {n_items}")
                item_side.append(sp.csr_matrix(item_features, dtype=np.float32))
        users = feature_rows(X.getnnz(axis=1) > 0, user_side)
        items = feature_rows(X.getnnz(axis=0) > 0, item_side)
        model = LightFM(no_components=int(self.factors), loss=self.loss,
                        learning_rate=float(self.learning_rate),
                        user_alpha=float(self.alpha), item_alpha=float(self.alpha),
                        random_state=self.random_state)
        # LightFM reads any stored value as a positive interaction: the weights are not used.
        positives = sp.coo_matrix((np.ones(X.nnz, dtype=np.float32), X.nonzero()), shape=X.shape)
        model.fit(positives, user_features=users, item_features=items, epochs=int(self.epochs),
                  num_threads=int(self.num_threads))
        user_biases, user_embeddings = model.get_user_representations(users)
        item_biases, item_embeddings = model.get_item_representations(items)
        self.user_biases_ = user_biases.astype(np.float32)
        self.user_embeddings_ = np.ascontiguousarray(user_embeddings, dtype=np.float32)
        self.item_biases_ = item_biases.astype(np.float32)
        self.item_embeddings_ = np.ascontiguousarray(item_embeddings, dtype=np.float32)

    def _score(self, users: np.ndarray, X: sp.csr_matrix) -> np.ndarray:
        known = self._known(users, self.n_users_)
        embeddings = np.zeros((users.size, self.item_embeddings_.shape[1]), dtype=np.float32)
        embeddings[known] = self.user_embeddings_[users[known]]
        # A user's own bias is the same for every item: it does not change their ranking.
        return embeddings @ self.item_embeddings_.T + self.item_biases_[None, :]

"""Item-kNN: the shared contract plus the similarity it keeps."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models import ItemKNN
from tests.models.mixin import RecommenderContract, checkerboard


class TestItemKNN(RecommenderContract):
    bad_params = {"k": 0, "shrinkage": -1.0, "weighting": "Binary"}

    def make_model(self):
        return ItemKNN(k=20, shrinkage=0.5)


class TestItemKNNBinaryWeighting(TestItemKNN):
    def make_model(self):
        return ItemKNN(k=20, shrinkage=0.5, weighting="binary")


def test_similarity_is_shrunk_cosine_without_self():
    X = checkerboard().user_items
    model = ItemKNN(k=100, shrinkage=2.0).fit(X)
    cols = X.toarray().T.astype(np.float64)
    norms = np.linalg.norm(cols, axis=1)
    expected = cols @ cols.T / (np.outer(norms, norms) + 2.0)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)


def test_keeps_only_k_neighbours_per_item():
    X = sp.random(40, 30, density=0.3, random_state=3, format="csr", dtype=np.float32)
    full = ItemKNN(k=100).fit(X).similarity_.toarray()
    top = ItemKNN(k=3).fit(X).similarity_.toarray()
    for i in range(30):
        kept = np.flatnonzero(top[i])
        assert len(kept) <= 3
        assert set(kept) == set(np.argsort(-full[i], kind="stable")[: len(kept)])
        np.testing.assert_allclose(top[i, kept], full[i, kept])


def test_dense_similarity_scores_equal_the_sparse_ones(monkeypatch):
    X = sp.random(40, 30, density=0.3, random_state=3, format="csr", dtype=np.float32)
    model = ItemKNN(k=5).fit(X)
    users = np.arange(40)
    dense, block = model.score(users, X), model.similarity_block([0, 3], [1, 2, 29])
    monkeypatch.setattr("models.neighbours.DENSE_ITEM_LIMIT", 10)  # below the 30 items
    np.testing.assert_allclose(dense, model.score(users, X), rtol=1e-6)
    np.testing.assert_allclose(block, model.similarity_block([0, 3], [1, 2, 29]))
    np.testing.assert_allclose(block, model.similarity_.toarray()[np.ix_([0, 3], [1, 2, 29])])

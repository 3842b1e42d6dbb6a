"""Content model: the shared contract plus cold items and one-item users."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import ContentModel
from tests.models.mixin import RecommenderContract, checkerboard


def _features(item_group: np.ndarray) -> sp.csr_matrix:
    # Column 0/1: the item's group (a category); columns 2..: one tag per item, so items of a
    # group differ and ties are broken by the tags a user's items share.
    n = len(item_group)
    group = sp.csr_matrix((np.ones(n), (np.arange(n), item_group)), shape=(n, 2))
    tags = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n) // 2)), shape=(n, n // 2))
    return sp.hstack([group, tags]).tocsr()


class TestContentModel(RecommenderContract):
    bad_params = {"idf": "yes", "normalize": 1}

    def make_model(self):
        return ContentModel()

    def fit_side(self, data):
        return {"item_features": _features(data.item_group)}


def test_cold_item_is_recommended_from_its_features():
    data = checkerboard()
    X = data.user_items.tolil()
    cold = 5  # an item of group 0 that nobody has interacted with
    X[:, cold] = 0
    X = X.tocsr()
    model = ContentModel().fit(X, item_features=_features(data.item_group))
    group0 = np.flatnonzero(data.user_group == 0)
    ids, scores = model.recommend(group0, X[group0], n=data.n_items)
    for row, row_scores in zip(ids.tolist(), scores):
        # Ranked with the group's other unseen items, above every item of the other group.
        other = [row.index(i) for i in np.flatnonzero(data.item_group == 1)]
        assert row.index(cold) < min(other)
        assert row_scores[row.index(cold)] > 0


def test_one_item_user_gets_items_sharing_its_features():
    data = checkerboard()
    model = ContentModel().fit(data.user_items, item_features=_features(data.item_group))
    row = sp.csr_matrix(([1.0], ([0], [2])), shape=(1, data.n_items))
    ids, _ = model.recommend(np.array([-1]), row, n=5)
    assert ids[0, 0] == 3  # shares both the group and the tag of item 2
    profile = model.user_profiles(row)
    np.testing.assert_allclose(profile[0], model.item_features_[2].toarray()[0], rtol=1e-6)
    assert set(ids[0].tolist()) == {0, 1, 3, 4, 5}


def test_idf_downweights_common_features():
    F = sp.csr_matrix(np.array([[1, 1], [1, 0], [1, 0]], dtype=np.float32))
    model = ContentModel(normalize=False).fit(sp.csr_matrix((1, 3)), item_features=F)
    assert model.feature_weights_[0] < model.feature_weights_[1]


def test_item_features_must_match_the_catalogue():
    data = checkerboard()
    with pytest.raises(ValueError, match="item_features"):
        ContentModel().fit(data.user_items)
    with pytest.raises(ValueError, match="item_features"):
        ContentModel().fit(data.user_items, item_features=np.ones((data.n_items + 1, 2)))


@pytest.mark.parametrize("normalize", [True, False])
def test_dense_gram_scores_equal_the_feature_space_scores(monkeypatch, normalize):
    # Small catalogues score through the dense F Fᵀ; large ones through the profiles. Both
    # must give the same cosines, including for users with no history (all zeros).
    rng = np.random.default_rng(4)
    F = sp.random(60, 25, density=0.2, random_state=5, format="csr", dtype=np.float32)
    X = sp.random(12, 60, density=0.1, random_state=6, format="csr", dtype=np.float32)
    X = sp.vstack([X, sp.csr_matrix((1, 60), dtype=np.float32)]).tocsr()
    model = ContentModel(normalize=normalize).fit(X, item_features=F)
    users = rng.integers(0, 13, 13)
    dense = model.score(users, X)
    rows, cols = np.array([0, 5, 7]), np.array([1, 2, 59])
    block = model.similarity_block(rows, cols)
    monkeypatch.setattr("models.content.DENSE_ITEM_LIMIT", 10)  # below the 60 items
    sparse = model.score(users, X)
    np.testing.assert_allclose(dense, sparse, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(block, model.similarity_block(rows, cols), rtol=1e-5, atol=1e-6)
    assert not np.any(dense[-1])  # no history, no content score

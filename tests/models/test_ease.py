"""EASE: the shared contract plus the closed form itself."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models import EASE
from tests.models.mixin import RecommenderContract, checkerboard


class TestEASE(RecommenderContract):
    bad_params = {"l2": 0.0, "max_items": 0, "weighting": "squared"}

    def make_model(self):
        return EASE(l2=100.0)


class TestEASELogWeighting(TestEASE):
    def make_model(self):
        return EASE(l2=100.0, weighting="log")


def test_weights_solve_the_constrained_least_squares():
    # Steck's closed form: B = I - P / diag(P), with P the inverse of the regularised Gram.
    X = checkerboard().user_items
    model = EASE(l2=2.0).fit(X)
    gram = (X.T @ X).toarray().astype(np.float64) + 2.0 * np.eye(X.shape[1])
    P = np.linalg.inv(gram)
    expected = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.weights_, expected, atol=1e-5)
    assert np.all(np.diag(model.weights_) == 0)
    assert model.weights_.dtype == np.float32


def test_items_without_interactions_get_zero_weight():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32))
    model = EASE(l2=1.0).fit(X)
    assert model.active_.tolist() == [0, 1] and model.weights_.shape == (2, 2)
    scores = model.score(np.arange(2), X)
    assert np.all(scores[:, 2] == 0)


def test_the_active_items_solve_the_whole_catalogues_closed_form():
    # Items 1 and 4 have no interactions: the full inverse is block diagonal, so solving on
    # the active items only gives the same scores.
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 6)) < 0.4).astype(np.float32)
    dense[:, [1, 4]] = 0.0
    X = sp.csr_matrix(dense)
    model = EASE(l2=3.0).fit(X)
    assert model.active_.tolist() == [0, 2, 3, 5]
    gram = dense.T.astype(np.float64) @ dense + 3.0 * np.eye(6)
    P = np.linalg.inv(gram)
    B = np.eye(6) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.score(np.arange(30), X), dense @ B, atol=1e-5)


def test_max_items_solves_over_the_most_used_items_only():
    # users per item: 6, 2, 5, 1, 5 (a tie at the cut goes to the lower index)
    dense = np.zeros((6, 5), dtype=np.float32)
    dense[:, 0] = 1
    dense[:2, 1] = 1
    dense[:5, 2] = 1
    dense[5, 3] = 1
    dense[1:, 4] = 1
    X = sp.csr_matrix(dense)
    model = EASE(l2=1.0, max_items=3).fit(X)
    assert model.active_.tolist() == [0, 2, 4]
    kept = dense[:, [0, 2, 4]]
    scores = model.score(np.arange(6), X)
    # the capped model is the closed form over the kept items; the others score 0
    np.testing.assert_allclose(scores[:, [0, 2, 4]],
                               kept @ EASE(l2=1.0).fit(sp.csr_matrix(kept)).weights_, atol=1e-6)
    assert np.all(scores[:, [1, 3]] == 0)
    assert EASE(l2=1.0, max_items=5).fit(X).active_.tolist() == [0, 1, 2, 3, 4]


def test_a_file_without_active_items_loads_as_before(tmp_path):
    """A model saved before ``active_`` existed held weights over every item."""
    X = checkerboard().user_items
    model = EASE(l2=2.0).fit(X)
    full = np.zeros((X.shape[1], X.shape[1]), dtype=np.float32)
    full[np.ix_(model.active_, model.active_)] = model.weights_
    model.weights_, model.active_ = full, None
    model.save(tmp_path)
    with np.load(tmp_path / "model.npz") as npz:
        assert "active_" not in npz.files
    loaded = EASE.load(tmp_path)
    assert loaded.active_ is None
    users = np.arange(X.shape[0])
    np.testing.assert_allclose(loaded.score(users, X), EASE(l2=2.0).fit(X).score(users, X),
                               atol=1e-6)

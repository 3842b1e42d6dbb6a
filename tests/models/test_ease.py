"""EASE: the shared contract plus the closed form itself."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models import EASE
from tests.models.mixin import RecommenderContract, checkerboard


class TestEASE(RecommenderContract):
    bad_params = {"l2": 0.0}

    def make_model(self):
        return EASE(l2=100.0)


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
    assert np.all(model.weights_[:, 2] == 0) and np.all(model.weights_[2] == 0)

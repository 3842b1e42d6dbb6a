"""ALS and BPR (implicit): the shared contract plus fold-in behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from models import ALS, BPR
from tests.models.mixin import RecommenderContract, checkerboard


class TestALS(RecommenderContract):
    bad_params = {
        "factors": 0,
        "regularization": -1.0,
        "alpha": 0,
        "iterations": 0,
        "num_threads": -1,
        "random_state": "seed",
        "fold_in": "yes",
        "weighting": None,
    }

    def make_model(self):
        return ALS(factors=2, regularization=1.0, iterations=10, random_state=0, num_threads=1)


class TestALSWithoutFoldIn(TestALS):
    def make_model(self):
        return super().make_model().set_params(fold_in=False)


class TestALSLogWeighting(TestALS):
    def make_model(self):
        return super().make_model().set_params(weighting="log")


class TestBPR(RecommenderContract):
    bad_params = {"factors": 0, "learning_rate": 0.0, "iterations": 1.5}

    def make_model(self):
        # num_threads=1: implicit's parallel SGD is lock-free, so only one thread is
        # reproducible.
        return BPR(
            factors=8,
            learning_rate=0.05,
            regularization=0.1,
            iterations=300,
            random_state=0,
            num_threads=1,
        )


def test_als_fold_in_follows_a_refreshed_history():
    data = checkerboard()
    model = TestALS().make_model().fit(data.user_items)
    user = 0  # a group-0 user who now interacts only with group-1 items
    row = sp.csr_matrix(
        ([2.0, 2.0, 2.0], ([0, 0, 0], np.flatnonzero(data.item_group == 1)[:3])),
        shape=(1, data.n_items),
    )
    ids, _ = model.recommend(np.array([user]), row, n=3)
    assert set(data.item_group[ids[0]]) == {1}
    stale = model.set_params(fold_in=False).recommend(np.array([user]), row, n=3)[0]
    assert set(data.item_group[stale[0]]) == {0}


def test_fit_does_not_trigger_the_blas_threads_warning():
    data = checkerboard()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ALS(factors=2, iterations=2, num_threads=1, random_state=0).fit(data.user_items)
        BPR(factors=2, iterations=2, num_threads=1, random_state=0).fit(data.user_items)


def test_factor_shapes():
    data = checkerboard()
    als = ALS(factors=3, iterations=2, random_state=0, num_threads=1).fit(data.user_items)
    bpr = BPR(factors=3, iterations=2, random_state=0, num_threads=1).fit(data.user_items)
    assert als.item_factors_.shape == (data.n_items, 3)
    assert als.user_factors_.shape == (data.n_users, 3)
    assert bpr.item_factors_.shape == (data.n_items, 4)  # + the item bias column
    np.testing.assert_array_equal(bpr.user_factors_[:, -1], 1.0)


def test_bpr_fold_in_reaches_the_optimum_of_the_users_objective():
    from models.collaborative import _BPRFoldIn

    data = checkerboard()
    model = TestBPR().make_model().fit(data.user_items)
    row = data.user_items[3]
    items, weights = row.indices, row.data.astype(np.float64)
    u = _BPRFoldIn(model.item_factors_, model.mean_user_factor_, 1.0)(items, weights, steps=2000)
    assert u[-1] == 1.0
    # The gradient of mean_ij w_i log σ(u·(y_i - y_j)) - ½‖u - u0‖², by explicit pairs.
    Y = model.item_factors_.astype(np.float64)
    negatives = np.setdiff1d(np.arange(data.n_items), items)
    grad = -(u[:-1] - model.mean_user_factor_[:-1])
    norm = weights.sum() * len(negatives)
    for i, w in zip(items, weights):
        for j in negatives:
            d = Y[i] - Y[j]
            grad += w / norm * d[:-1] / (1.0 + np.exp(u @ d))
    assert np.linalg.norm(grad) < 1e-4


def test_bpr_is_deterministic_for_a_seed():
    """By default (one thread) two fits with the same seed give identical factors."""
    X = checkerboard(users_per_group=100).user_items
    fits = [BPR(factors=8, iterations=30, random_state=4).fit(X) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].item_factors_, fits[1].item_factors_)
    np.testing.assert_array_equal(fits[0].user_factors_, fits[1].user_factors_)
    other = BPR(factors=8, iterations=30, random_state=5).fit(X)
    assert not np.array_equal(other.item_factors_, fits[0].item_factors_)


def test_als_is_deterministic_for_a_seed_on_several_threads():
    X = checkerboard(users_per_group=100).user_items
    fits = [ALS(factors=8, iterations=5, random_state=4, num_threads=2).fit(X) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].item_factors_, fits[1].item_factors_)
    np.testing.assert_array_equal(fits[0].user_factors_, fits[1].user_factors_)

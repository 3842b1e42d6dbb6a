"""Popularity: global, per group (age band) and per community × band, one class."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import CategoryPopularity, Popularity
from tests.models.mixin import RecommenderContract, checkerboard


class TestPopularityByGroup(RecommenderContract):
    """With the user groups it ranks each group's items first; it ignores a new user's row."""

    bad_params = {"shrinkage": -0.5, "weighted": "no"}
    scores_from_row = False

    def make_model(self):
        return Popularity()

    def fit_side(self, data):
        return {"user_groups": data.user_group}

    def test_unseen_user_with_a_group_gets_that_groups_items(self, model, data):
        empty = sp.csr_matrix((2, data.n_items))
        ids, _ = model.recommend(np.array([-1, -1]), empty, n=3, user_groups=np.array([1, 0]))
        assert set(data.item_group[ids[0]]) == {1} and set(data.item_group[ids[1]]) == {0}


class TestRecentPopularityByGroup(TestPopularityByGroup):
    """Popularity over the last 30 days (of ages 1..60) keeps the whole contract."""

    bad_params = {"window": 0.0, "shrinkage": -1.0}

    def make_model(self):
        return Popularity(window=30.0)

    def fit_side(self, data):
        return {"user_groups": data.user_group, "pair_age": data.pair_age()}


def test_window_counts_only_pairs_seen_within_it():
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    # item 0: two users long ago; item 1: one user yesterday; item 2: one recent, one old
    ages = sp.csr_matrix(np.array([[40, 1, 0], [50, 0, 2], [0, 0, 90]], dtype=np.float32))
    recent = Popularity(window=7).fit(X, pair_age=ages)
    np.testing.assert_allclose(recent.global_scores_, [0.0, 0.5, 0.5])
    assert recent.recommend(-1, sp.csr_matrix((1, 3)), n=2)[0].tolist() == [1, 2]
    everything = Popularity(window=90).fit(X, pair_age=ages).global_scores_
    np.testing.assert_allclose(everything, Popularity().fit(X).global_scores_)


def test_window_needs_the_pair_ages():
    X = checkerboard().user_items
    with pytest.raises(ValueError, match="pair_age"):
        Popularity(window=7).fit(X)
    with pytest.raises(ValueError, match="pair_age"):
        Popularity(window=7).fit(X, pair_age=np.ones(X.shape))
    # without a window the ages are not read
    np.testing.assert_array_equal(Popularity().fit(X, pair_age=checkerboard().pair_age())
                                  .global_scores_, Popularity().fit(X).global_scores_)


class TestGlobalPopularity(RecommenderContract):
    bad_params = {"shrinkage": float("nan")}
    own_group_first = False
    scores_from_row = False

    def make_model(self):
        return Popularity(weighted=True)

    def test_recommends_unseen_items_of_own_group_first(self, model, data):
        # Global popularity knows no groups: it ranks by total weight, for everyone.
        totals = np.asarray(data.user_items.sum(axis=0)).ravel()
        ids, _ = model.recommend(np.arange(data.n_users), data.user_items, n=data.n_items)
        for user in range(data.n_users):
            seen = set(data.user_items[user].indices.tolist())
            expected = sorted(set(range(data.n_items)) - seen, key=lambda i: (-totals[i], i))
            assert [i for i in ids[user].tolist() if i >= 0] == expected


def test_counts_distinct_users_unless_weighted():
    X = sp.csr_matrix(np.array([[5, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=np.float32))
    np.testing.assert_allclose(Popularity().fit(X).global_scores_, [0.2, 0.6, 0.2])
    weighted = Popularity(weighted=True).fit(X).global_scores_
    np.testing.assert_allclose(weighted, [5 / 9, 3 / 9, 1 / 9])


def test_community_by_band_groups_and_fallbacks():
    # Groups are any int ids: here community * 4 + band. Group 9 (community 2, band 1) has a
    # member with no interactions; band ids unseen at fit and -1 fall back to global.
    X = sp.csr_matrix(
        np.array(
            [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
            dtype=np.float32,
        )
    )
    groups = np.array([0, 0, 5, 5, 4, 9])
    model = Popularity(shrinkage=0.0).fit(X, user_groups=groups)
    assert model.groups_.tolist() == [0, 4, 5]
    scores = model.score(np.arange(6), X)
    np.testing.assert_allclose(scores[0], [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(scores[2], [0, 0, 0.5, 0.5])
    np.testing.assert_allclose(scores[5], model.global_scores_)  # empty group -> global
    unseen = model.score(np.array([-1, 99]), sp.csr_matrix((2, 4)), user_groups=np.array([7, -1]))
    np.testing.assert_allclose(unseen, np.tile(model.global_scores_, (2, 1)))


def test_shrinkage_breaks_group_ties_by_global_popularity():
    X = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32))
    model = Popularity(shrinkage=1.0).fit(X, user_groups=np.array([0, 1, 1]))
    ids, _ = model.recommend(np.array([0]), sp.csr_matrix((1, 3)), n=3)
    assert ids[0].tolist() == [0, 2, 1]


def test_user_groups_must_be_one_int_per_user():
    X = checkerboard().user_items
    with pytest.raises(ValueError, match="user_groups"):
        Popularity().fit(X, user_groups=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="user_groups"):
        Popularity().fit(X, user_groups=np.zeros(X.shape[0]) + 0.5)


class TestCategoryPopularityContract(RecommenderContract):
    """With item groups as categories and user groups, each group's category comes first."""

    bad_params = {"shrinkage": -1.0}
    scores_from_row = False

    def make_model(self):
        return CategoryPopularity()

    def fit_side(self, data):
        return {"item_category": data.item_group, "user_groups": data.user_group}


def test_category_popularity_ranks_a_new_item_by_its_category():
    # items 0,1 are category 0 (used 3 times), items 2,3 category 1 (used once);
    # item 1 and item 3 are new (never used).
    X = sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float32))
    model = CategoryPopularity().fit(X, item_category=np.array([0, 0, 1, 1]))
    scores = model.score(np.array([-1]), sp.csr_matrix((1, 4), dtype=np.float32))[0]
    # category shares: 3/4 and 1/4; tie-break 1e-3 x item share
    np.testing.assert_allclose(scores, [0.75 + 0.75e-3, 0.75, 0.25 + 0.25e-3, 0.25], rtol=1e-5)
    ids, _ = model.recommend(np.array([-1]), sp.csr_matrix((1, 4), dtype=np.float32), n=4)
    assert ids[0].tolist() == [0, 1, 2, 3]


def test_category_popularity_needs_categories():
    X = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="item_category"):
        CategoryPopularity().fit(X)


@pytest.mark.parametrize("huge", [False, True])  # small group ids; ids near 1e9
def test_each_group_gets_its_row_and_every_miss_the_global_one(huge):
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((300, 30)) < 0.1).astype(np.float32))
    offset = 10**9 if huge else 0
    groups = rng.choice([0, 2, 5, 9, -1], 300)
    model = Popularity(shrinkage=5.0).fit(X, user_groups=np.where(groups >= 0, groups + offset,
                                                                   -1))
    asked = np.array([-7, -1, 0, 1, 2, 3, 5, 9, 10, 12345]) + np.array([0, 0, *[offset] * 8])
    scores = model.score(np.full(asked.size, -1), sp.csr_matrix((asked.size, 30)),
                         user_groups=asked)
    for score, group in zip(scores, asked):
        own = np.flatnonzero(model.groups_ == group)
        want = model.group_scores_[own[0]] if own.size else model.global_scores_
        np.testing.assert_array_equal(score, want)


def test_given_item_counts_replace_the_matrix_counts():
    """The hybrid's recent-popularity component ranks by counts it is handed (recent activity),
    not by the matrix's all-time counts."""
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=np.float32))
    model = Popularity().fit(X, item_counts=np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(model.global_scores_, [0.0, 0.25, 0.75])
    assert model.recommend(-1, sp.csr_matrix((1, 3)), n=3)[0].tolist() == [2, 1, 0]


@pytest.mark.parametrize("counts, params, side, match", [
    (np.ones(2), {}, {}, "3 finite counts"),
    (np.array([1.0, -1.0, 0.0]), {}, {}, "3 finite counts"),
    (np.array([1.0, np.nan, 0.0]), {}, {}, "3 finite counts"),
    (np.ones(3), {"window": 7.0}, {}, "neither user_groups nor a window"),
    (np.ones(3), {}, {"user_groups": np.zeros(3, dtype=int)}, "neither user_groups"),
])
def test_given_item_counts_are_checked(counts, params, side, match):
    X = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match=match):
        Popularity(**params).fit(X, item_counts=counts, **side)

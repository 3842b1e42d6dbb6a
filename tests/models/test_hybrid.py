"""The hybrid ranker: the shared model contract, cold users, cold items, filters, explanations.

The hybrid passes the shared mixin on the checkerboard, given side information built from it
(bands, categories, content and a validation cut): :class:`TestHybridRanker` in the served
configuration (ALS off, the default) and :class:`TestHybridRankerWithALS`.

The other tests use two age bands with disjoint favourite items (band 0 takes items 0-5, band 1
items 6-11) plus item 12, a cold course with no interactions whose content equals item 0's. In
the validation cut items 5 and 11 are new (all their interactions fall after the cut), so the
re-ranker sees courses without history become popular and learns to trust their content.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.base import NotFittedError, Recommender
from models.hybrid import COMPONENTS, SIGNALS, HybridRanker
from tests.models.mixin import Checkerboard, RecommenderContract

USERS_PER_BAND = 40
ITEMS_PER_BAND = 6
N_ITEMS = 2 * ITEMS_PER_BAND + 1  # + one cold item
COLD_ITEM = N_ITEMS - 1
TWIN = 0  # the popular item whose content the cold item shares
NEW_AT_CUT = (ITEMS_PER_BAND - 1, 2 * ITEMS_PER_BAND - 1)  # items 5 and 11
SMALL = {"als_factors": 4, "als_iterations": 3, "knn_neighbours": 10, "n_candidates": 8,
         "max_iter": 30, "max_leaf_nodes": 7, "negatives_per_user": 10}


def make_data(seed: int = 0) -> dict:
    """Users of two bands, each taking 3-5 of their band's items (popular ones more often)."""
    rng = np.random.default_rng(seed)
    n_users = 2 * USERS_PER_BAND
    band = np.repeat([0, 1], USERS_PER_BAND)
    item_band = np.array([0] * ITEMS_PER_BAND + [1] * ITEMS_PER_BAND + [0])
    # Within a band, lower items are more popular: item 0 is the band's favourite.
    pref = np.linspace(2.0, 0.6, ITEMS_PER_BAND)
    full_r, full_c, fit_r, fit_c, tgt_r, tgt_c = [], [], [], [], [], []
    for user, b in enumerate(band):
        own = np.arange(ITEMS_PER_BAND) + b * ITEMS_PER_BAND
        k = rng.integers(3, ITEMS_PER_BAND)
        picked = rng.choice(own, size=k, replace=False, p=pref / pref.sum())
        # The validation target: a quarter of the users arrive after the cut (all their items
        # are targets: cold users), the others have one item held out, always the
        # new-at-cut item when they took it.
        new = [i for i in picked if i in NEW_AT_CUT]
        held = set(picked) if user % 4 == 3 else {new[0] if new else picked[rng.integers(k)]}
        for item in picked:
            full_r.append(user)
            full_c.append(item)
            (tgt_r if item in held else fit_r).append(user)
            (tgt_c if item in held else fit_c).append(item)
    weights = rng.uniform(1.0, 3.0, len(full_r)).round(2).astype(np.float32)
    shape = (n_users, N_ITEMS)
    X = sp.csr_matrix((weights, (full_r, full_c)), shape=shape)
    w = dict(zip(zip(full_r, full_c), weights))
    fit_X = sp.csr_matrix(([w[p] for p in zip(fit_r, fit_c)], (fit_r, fit_c)), shape=shape)
    target = sp.csr_matrix((np.ones(len(tgt_r), np.float32), (tgt_r, tgt_c)), shape=shape)
    # Content: the band's topic plus a feature of the item's own; the cold item copies item 0.
    feats = np.zeros((N_ITEMS, 2 + N_ITEMS), dtype=np.float32)
    feats[np.arange(N_ITEMS), item_band] = 1.0
    feats[np.arange(N_ITEMS), 2 + np.arange(N_ITEMS)] = 1.0
    feats[COLD_ITEM] = feats[TWIN]
    item_bands = np.zeros((N_ITEMS, 4), dtype=bool)
    item_bands[np.arange(N_ITEMS), item_band] = True
    side = {
        "user_band": band,
        "user_community": band,  # one community per band, so community x band is non-trivial
        "item_category": item_band,
        "item_bands": item_bands,
        "item_community": np.full(N_ITEMS, -1),
        "item_features": sp.csr_matrix(feats),
    }
    # Item activity (log recent count, days since first / last interaction; -1 = never).
    temporal = np.column_stack([np.log1p(np.asarray((X != 0).sum(axis=0)).ravel()),
                                np.full(N_ITEMS, 60.0), np.full(N_ITEMS, 2.0)])
    temporal[COLD_ITEM] = [0.0, -1.0, -1.0]
    at_cut = temporal.copy()
    at_cut[list(NEW_AT_CUT)] = [0.0, -1.0, -1.0]
    return {"X": X, "validation": (fit_X, target), "side": side, "band": band,
            "item_band": item_band, "temporal": temporal.astype(np.float32),
            "temporal_at_cut": at_cut.astype(np.float32)}


def fit_model(data: dict, **params) -> HybridRanker:
    """Fitted with item activity signals, as training does (see ``fit_hybrid``)."""
    return HybridRanker(**{**SMALL, **params}).fit(
        data["X"], validation=(*data["validation"], data["temporal_at_cut"]),
        item_temporal=data["temporal"], **data["side"])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP/BLAS thread: on a shared 2-core machine the gradient-boosting threads spin
    against other processes and a fit of this tiny data takes seconds instead of 0.1 s."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data(one_thread) -> dict:
    return make_data()


@pytest.fixture(scope="module")
def model(data) -> HybridRanker:
    return fit_model(data)


def _users(data) -> np.ndarray:
    return np.arange(data["X"].shape[0])


def _side(data, users) -> dict:
    return {"user_band": data["band"][users], "user_community": data["band"][users]}


# -- the shared contract ------------------------------------------------------------------------


def checkerboard_side(data: Checkerboard) -> dict:
    """The hybrid's side information for a checkerboard: a group is an age band and a course
    category, content is the group plus a feature of the item's own, and the validation cut
    puts every fourth user after it (all their items are targets: cold users) and one item of
    each other user, drawn at random. (Not the user's last item in index order: that made
    the group's highest-numbered items nearly every user's target, a label about item
    numbers that the trees learned instead of the groups.) Every third user's band is
    unknown, as for residents without a birth year, so the trees learn to rank from the row
    alone too (as they must for a user unseen at fit time who is scored without a band)."""
    X = data.user_items
    rows = np.repeat(np.arange(data.n_users), np.diff(X.indptr))
    drawn = np.zeros(X.nnz, dtype=bool)
    rng = np.random.default_rng(0)
    for start, end in zip(X.indptr[:-1], X.indptr[1:]):
        if end > start:
            drawn[rng.integers(start, end)] = True
    after = (rows % 4 == 3) | drawn
    target = sp.csr_matrix((np.ones(after.sum(), np.float32), (rows[after], X.indices[after])),
                           shape=X.shape)
    fit_X = sp.csr_matrix((X.data[~after], (rows[~after], X.indices[~after])), shape=X.shape)
    feats = np.zeros((data.n_items, 2 + data.n_items), dtype=np.float32)
    feats[np.arange(data.n_items), data.item_group] = 1.0
    feats[np.arange(data.n_items), 2 + np.arange(data.n_items)] = 1.0
    item_bands = np.zeros((data.n_items, 4), dtype=bool)
    item_bands[np.arange(data.n_items), data.item_group] = True
    band = np.where(np.arange(data.n_users) % 3 == 2, -1, data.user_group)
    return {"user_band": band, "user_community": band,
            "item_category": data.item_group, "item_bands": item_bands,
            "item_features": sp.csr_matrix(feats), "validation": (fit_X, target)}


class TestHybridRanker(RecommenderContract):
    """The served configuration (ALS off), with fewer candidates than courses so that the
    candidate stage leaves courses out."""

    bad_params = {"n_candidates": 0, "ease_l2": -1.0, "holdout_fraction": 1.0,
                  "als_factors": -1, "learning_rate": 0.0, "max_leaf_nodes": 1,
                  "negatives_per_user": 2.5, "random_state": "seed",
                  "knn_weighting": "counts"}
    sklearn_files = frozenset({"ranker.joblib"})

    def make_model(self):
        return HybridRanker(n_candidates=4, max_iter=30, max_leaf_nodes=7, knn_neighbours=10)

    def fit_side(self, data):
        return checkerboard_side(data)

    def test_als_is_off_by_default(self, model):
        assert HybridRanker().als_factors == 0 and HybridRanker().factor_ae_factors == 0
        assert "als" not in model.components
        assert set(model.components) == set(COMPONENTS) - {"als", "factor_ae"}


class TestHybridRankerWithALS(TestHybridRanker):
    def make_model(self):
        return HybridRanker(als_factors=4, als_iterations=3, n_candidates=4, max_iter=30,
                            max_leaf_nodes=7, knn_neighbours=10)

    def test_als_is_off_by_default(self, model):
        assert model.components == tuple(c for c in COMPONENTS if c != "factor_ae")


class TestHybridRankerWeighingValues(TestHybridRankerWithALS):
    """The components that read the matrix's values read them as the hybrid says."""

    def make_model(self):
        return HybridRanker(als_factors=4, als_iterations=3, n_candidates=4, max_iter=30,
                            max_leaf_nodes=7, knn_neighbours=10, ease_weighting="binary",
                            knn_weighting="log", als_weighting="binary")

    def test_components_read_the_values_as_told(self, model):
        comps = model._components
        assert (comps["ease"].weighting, comps["knn"].weighting, comps["als"].weighting) == (
            "binary", "log", "binary")


def test_fit_requires_a_validation_cut(data):
    with pytest.raises(ValueError, match="validation"):
        HybridRanker(**SMALL).fit(data["X"], **data["side"])
    fit_X, target = data["validation"]
    with pytest.raises(ValueError, match="validation"):
        HybridRanker(**SMALL).fit(data["X"], validation=(fit_X[:-1], target[:-1]),
                                  **data["side"])
    with pytest.raises(ValueError, match="positives"):
        HybridRanker(**SMALL).fit(data["X"], validation=(fit_X, sp.csr_matrix(target.shape)),
                                  **data["side"])


def test_unfitted_model_refuses_to_rank(data):
    with pytest.raises(NotFittedError):
        HybridRanker().rank(np.array([0]), data["X"][[0]])


# -- rank: the lists with their signals, in one pass ----------------------------------------------


def test_rank_batch_equals_single_user(model, data):
    X, users = data["X"], _users(data)
    r_ids, r_scores, r_signals = model.rank(users, X, n=5, **_side(data, users))
    for u in users[::5]:  # a sample of single-user calls keeps the test fast
        o_ids, o_scores, o_signals = model.rank(np.array([u]), X[u], n=5, **_side(data, [u]))
        np.testing.assert_array_equal(o_ids[0], r_ids[u])
        np.testing.assert_allclose(o_scores[0], r_scores[u], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(o_signals[0], r_signals[u], rtol=1e-5, atol=1e-6)


def test_rank_agrees_with_recommend(model, data):
    X, users = data["X"], _users(data)
    ids, scores = model.recommend(users, X, n=4, **_side(data, users))
    r_ids, r_scores, _ = model.rank(users, X, n=4, **_side(data, users))
    np.testing.assert_array_equal(r_ids, ids)
    np.testing.assert_allclose(r_scores, scores, rtol=1e-5, atol=1e-6)


def test_warm_users_get_their_own_bands_items_first(model, data):
    X, users = data["X"], _users(data)
    ids, _ = model.recommend(users, X, n=2, **_side(data, users))
    own = data["item_band"][ids] == data["band"][:, None]
    assert own.mean() >= 0.9, ids


def test_rank_never_returns_seen_items(model, data):
    X, users = data["X"], _users(data)
    r_ids, _, _ = model.rank(users, X, n=N_ITEMS, **_side(data, users))
    for u in users:
        assert not set(X[u].indices.tolist()) & set(r_ids[u].tolist())


def test_rank_shapes_order_and_padding(model, data):
    X, users = data["X"], _users(data)
    n = N_ITEMS + 3
    r_ids, r_scores, signals = model.rank(users, X, n=n, **_side(data, users))
    assert r_ids.shape == r_scores.shape == (users.size, n)
    assert signals.shape == (users.size, n, len(SIGNALS))
    for u in users:
        valid = r_ids[u] >= 0
        k = int(valid.sum())
        assert valid[:k].all() and not valid[k:].any()  # padding only at the end
        assert len(set(r_ids[u, :k].tolist())) == k
        assert np.isfinite(r_scores[u, :k]).all() and np.isneginf(r_scores[u, k:]).all()
        assert (np.diff(r_scores[u, :k]) <= 0).all()
        assert np.isfinite(signals[u, :k]).all() and np.isnan(signals[u, k:]).all()


def test_component_scores_of_a_user_with_history_are_placed_within_their_candidates(model,
                                                                                    data):
    """A user with a history: each component's score is 0 at the user's lowest candidate and
    1 at the highest, in the component's own order; a user with none: the raw scores."""
    X, users = data["X"], _users(data)
    n_comp = len(COMPONENTS)
    r, i, rows = model._pair_rows(users, X, model._context(users, data["band"][users],
                                                           data["band"][users]), None)
    ranks = np.expm1(rows[:, n_comp:2 * n_comp])
    spread = 0
    for u in users:
        mine = rows[r == u, :n_comp]
        varied = mine.max(axis=0) > mine.min(axis=0)
        assert np.allclose(mine.min(axis=0), 0.0) and np.allclose(mine.max(axis=0)[varied], 1.0)
        for c in np.flatnonzero(varied):
            order = np.argsort(ranks[r == u, c], kind="stable")  # best rank first
            assert np.all(np.diff(mine[order, c]) <= 1e-6), (u, COMPONENTS[c])
        spread += int(varied.sum())
    assert spread > users.size, "most users' components tell their candidates apart"
    empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    cold = np.array([-1])
    r, i, rows = model._pair_rows(cold, empty, model._context(cold, [0], [0]), None)
    pop = COMPONENTS.index("pop")
    np.testing.assert_allclose(rows[:, pop], model._components["pop"].score(cold, empty)[0, i])
    assert 0 < rows[:, pop].max() < 1.0, "raw shares, not placed (the best would be 1)"


def test_rows_built_for_some_candidates_are_those_of_all(model, data):
    """Training builds rows for the pairs it keeps; each is placed among all the user's
    candidates, so it equals the row scoring builds."""
    X, users = data["X"], _users(data)
    ctx = model._context(users, data["band"][users], data["band"][users])
    r, i, rows_of = model._candidates(users, X, ctx, None)
    keep = np.flatnonzero(np.arange(r.size) % 3 == 0)
    np.testing.assert_array_equal(rows_of(keep), rows_of(slice(None))[keep])


def test_rank_rows_must_match_the_catalogue(model):
    with pytest.raises(ValueError, match="user_items"):
        model.rank(np.array([0]), sp.csr_matrix((1, N_ITEMS + 1)))


def test_allowed_mask_is_respected(model, data):
    X, users = data["X"], _users(data)
    allowed = np.zeros(N_ITEMS, dtype=bool)
    allowed[[1, 3, 7, 9, COLD_ITEM]] = True
    ids, scores, _ = model.rank(users, X, n=N_ITEMS, allowed=allowed, **_side(data, users))
    for u in users:
        got = ids[u][ids[u] >= 0]
        assert allowed[got].all(), got
        seen = set(X[u].indices.tolist())
        # every allowed unseen item that made the candidates is there, nothing else
        assert set(got.tolist()) <= set(np.flatnonzero(allowed).tolist()) - seen
    cold_ids, _, _ = model.rank(np.array([-1]), sp.csr_matrix((1, N_ITEMS)), n=N_ITEMS,
                                allowed=allowed, user_band=[0], user_community=[0])
    got = cold_ids[0][cold_ids[0] >= 0]
    assert got.size and allowed[got].all()
    none = model.rank(users[:3], X[:3], n=5, allowed=np.zeros(N_ITEMS, dtype=bool),
                      **_side(data, users[:3]))[0]
    assert (none == -1).all()


def test_candidates_restrict_recommend(model, data):
    X, users = data["X"], _users(data)
    candidates = np.array([0, 2, 6, 8, COLD_ITEM])
    ids, _ = model.recommend(users, X, n=N_ITEMS, candidates=candidates, **_side(data, users))
    for u in users:
        got = ids[u][ids[u] >= 0]
        assert set(got.tolist()) == set(candidates.tolist()) - set(X[u].indices.tolist())


# -- cold start ---------------------------------------------------------------------------------


def test_cold_user_gets_their_bands_favourites(model, data):
    empty = sp.csr_matrix((2, N_ITEMS), dtype=np.float32)
    ids, scores, _ = model.rank(np.array([-1, -1]), empty, n=3, user_band=[0, 1],
                                user_community=[0, 1])
    assert (ids >= 0).all() and np.isfinite(scores).all()
    band_a = set(range(ITEMS_PER_BAND)) | {COLD_ITEM}
    band_b = set(range(ITEMS_PER_BAND, 2 * ITEMS_PER_BAND))
    assert set(ids[0].tolist()) <= band_a, ids[0]
    assert set(ids[1].tolist()) <= band_b, ids[1]
    # one of the band's three most taken items (ties included) leads
    counts = np.asarray((data["X"] != 0).sum(axis=0)).ravel()
    for b in (0, 1):
        own = np.arange(ITEMS_PER_BAND) + b * ITEMS_PER_BAND
        third = np.sort(counts[own])[-3]
        assert counts[ids[b, 0]] >= third, (ids[b], counts[own])


def test_cold_user_by_band_alone(model):
    """Without a community: the band is enough to pick the right half of the catalogue."""
    empty = sp.csr_matrix((2, N_ITEMS), dtype=np.float32)
    ids, _ = model.recommend(np.array([-1, -1]), empty, n=3, user_band=[1, 0])
    assert set(ids[0].tolist()) <= set(range(ITEMS_PER_BAND, 2 * ITEMS_PER_BAND)), ids[0]
    assert set(ids[1].tolist()) <= set(range(ITEMS_PER_BAND)) | {COLD_ITEM}, ids[1]


def test_cold_item_reaches_warm_users(model, data):
    X = data["X"]
    band0 = np.flatnonzero(data["band"] == 0)
    ids, _, _ = model.rank(band0, X[band0], n=3, **_side(data, band0))
    reached = (ids == COLD_ITEM).any(axis=1)
    assert reached.any(), "the cold item never makes a band-0 top 3"
    band1 = np.flatnonzero(data["band"] == 1)
    ids1, _, _ = model.rank(band1, X[band1], n=3, **_side(data, band1))
    assert reached.mean() > (ids1 == COLD_ITEM).any(axis=1).mean()


def test_cold_item_scores_above_items_of_the_other_band(model, data):
    X = data["X"]
    band0 = np.flatnonzero(data["band"] == 0)
    scores = model.score(band0, X[band0], **_side(data, band0))
    other = scores[:, ITEMS_PER_BAND:2 * ITEMS_PER_BAND].max(axis=1)
    assert (scores[:, COLD_ITEM] > other).mean() >= 0.9


# -- explanations and similar items ---------------------------------------------------------------


def test_anchors_are_history_items(model, data):
    X = data["X"]
    for u in (0, 5, USERS_PER_BAND + 3):
        history = X[u].indices
        ids, _, _ = model.rank(np.array([u]), X[u], n=3, **_side(data, [u]))
        items = ids[0][ids[0] >= 0]
        anchors = model.anchors(items, history)
        assert anchors.shape == items.shape
        assert (anchors >= 0).any()
        assert set(anchors[anchors >= 0].tolist()) <= set(history.tolist())
    assert (model.anchors(np.array([1, 2]), np.array([], dtype=int)) == -1).all()


def test_similar_items_exclude_the_item_and_favour_its_band(model):
    for item in (0, ITEMS_PER_BAND + 1):
        order, score = model.similar_items(item, n=4)
        assert item not in order.tolist()
        assert len(order) == 4 and (np.diff(score) <= 0).all()
        band = item // ITEMS_PER_BAND
        assert all(i == COLD_ITEM or i // ITEMS_PER_BAND == band for i in order[:3])
    order, _ = model.similar_items(TWIN, n=ITEMS_PER_BAND)
    assert COLD_ITEM in order.tolist()  # same content: one of its nearest
    order, _ = model.similar_items(ITEMS_PER_BAND, n=ITEMS_PER_BAND - 1)
    assert COLD_ITEM not in order.tolist()


# -- persistence and determinism ------------------------------------------------------------------


def _assert_same_ranking(loaded, model, data):
    users = np.concatenate([_users(data), [-1]])
    rows = sp.vstack([data["X"], sp.csr_matrix((1, N_ITEMS))]).tocsr()
    side = {"user_band": np.append(data["band"], 0), "user_community": np.append(data["band"], 0)}
    assert type(loaded) is HybridRanker
    assert loaded.get_params() == model.get_params()
    ranked = zip(loaded.rank(users, rows, n=5, **side), model.rank(users, rows, n=5, **side))
    for got, want in ranked:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.similar_items(0)[0], model.similar_items(0)[0])
    items = np.arange(N_ITEMS)
    np.testing.assert_array_equal(loaded.anchors(items, np.array([1, 7])),
                                  model.anchors(items, np.array([1, 7])))


def test_save_load_keeps_rank_similar_items_and_anchors(model, data, tmp_path):
    model.save(tmp_path / "h")
    for loader in (HybridRanker, Recommender):  # the generic load returns a working hybrid
        _assert_same_ranking(loader.load(tmp_path / "h"), model, data)


def test_save_load_keeps_item_activity_signals(model, data, tmp_path):
    """``item_temporal`` is a fitted input the re-ranker reads: it must survive save/load."""
    model.save(tmp_path / "h")
    loaded = HybridRanker.load(tmp_path / "h")
    np.testing.assert_array_equal(getattr(loaded, "item_temporal_", None), data["temporal"])


def test_load_refuses_a_ranker_file_that_is_not_the_trees(model, tmp_path):
    import joblib

    model.save(tmp_path / "h")
    joblib.dump({"not": "trees"}, tmp_path / "h" / "ranker.joblib")
    with pytest.raises(ValueError, match="ranker.joblib"):
        HybridRanker.load(tmp_path / "h")


def _profile_data(seed: int = 0) -> dict:
    """One band; a profile attribute (say gender, codes 0/1) decides the category users take:
    items 0-4 are category 0, items 5-9 category 1, items 10 and 11 are new courses (one per
    category) with the same content, so only who takes their category can tell them apart."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 120, 12
    attr = np.arange(n_users) % 2
    category = np.array([0] * 5 + [1] * 5 + [0, 1])
    rows, cols, tgt_r, tgt_c = [], [], [], []
    for user in range(n_users):
        own = np.flatnonzero(category[:10] == attr[user])
        picked = rng.choice(own, size=3, replace=False)
        for k, item in enumerate(picked):
            rows.append(user)
            cols.append(item)
            # validation targets: everything of a quarter of the users (cold at the cut),
            # else the item taken last; items 4 and 9 are new at the cut
            if user % 4 == 3 or k == 2 or item in (4, 9):
                tgt_r.append(user)
                tgt_c.append(item)
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    target = sp.csr_matrix((np.ones(len(tgt_r), np.float32), (tgt_r, tgt_c)), shape=X.shape)
    fit_X = (X - X.multiply(target)).tocsr()
    fit_X.eliminate_zeros()
    feats = np.eye(n_items, dtype=np.float32)
    feats[11] = feats[10]
    side = {"user_band": np.full(n_users, -1), "user_community": np.full(n_users, -1),
            "user_attributes": attr[:, None], "item_category": category,
            "item_features": sp.csr_matrix(feats)}
    return {"X": X, "validation": (fit_X, target), "side": side}


def test_profile_attributes_rank_new_courses_by_who_takes_their_category():
    data = _profile_data()
    model = HybridRanker(**SMALL).fit(data["X"], validation=data["validation"], **data["side"])
    lift = model.profile_lift_[model.profile_offsets_[0] : model.profile_offsets_[1]]
    assert lift[0, 0] > 0 > lift[0, 1] and lift[1, 1] > 0 > lift[1, 0]
    new_courses = np.zeros(12, dtype=bool)
    new_courses[[10, 11]] = True
    empty = sp.csr_matrix((1, 12), dtype=np.float32)
    for value, first in ((0, 10), (1, 11)):  # a resident with no history, only a profile
        items, _, signals = model.rank(np.array([-1]), empty, n=2, allowed=new_courses,
                                       user_attributes=np.array([[value]]))
        assert items[0, 0] == first
        assert signals[0, 0, SIGNALS.index("profile_category")] > 0
    unknown, _, _ = model.rank(np.array([-1]), empty, n=2, allowed=new_courses,
                               user_attributes=np.array([[-1]]))
    assert set(unknown[0]) == {10, 11}  # no profile: still both, no error


# -- the guard: held-out lists of the trees and of every component ------------------------------


def test_small_validation_sets_are_cross_fitted(model, data):
    """Every validation user (one with a positive after the cut) is held out once, and each
    held-out user has a list from the trees and from every component."""
    target = data["validation"][1]
    with_positive = np.flatnonzero(np.diff(sp.csr_matrix(target).indptr) > 0)
    np.testing.assert_array_equal(model.holdout_users_, with_positive)
    n = with_positive.size
    assert model.holdout_recs_.shape == (n, 10)
    assert tuple(model.holdout_sources_) == model.components
    assert model.holdout_component_recs_.shape == (len(model.components), n, 10)
    assert model.holdout_blend_recs_.shape == (len(model.components), n, 10)
    ease = model.components.index("ease")
    np.testing.assert_array_equal(model.holdout_lists("reranker+ease"),
                                  model.holdout_blend_recs_[ease])
    np.testing.assert_array_equal(model.holdout_lists("ease"), model.holdout_component_recs_[ease])
    assert model.holdout_lists("reranker") is model.holdout_recs_
    pop_band = model.components.index("pop_band")
    np.testing.assert_array_equal(model.holdout_popularity_recs_,
                                  model.holdout_component_recs_[pop_band])



def test_a_cross_fitted_model_serves_its_fold_trees_and_final_trees_averaged(model, data,
                                                                             tmp_path):
    """Five folds (the default fraction 0.2): five sets of fold trees, then the final trees
    fitted on every user; a candidate's score is their mean probability, kept by save/load."""
    reranker = model._reranker
    assert len(reranker.members) == 6
    assert reranker.trees is reranker.members[-1]
    users = np.arange(data["X"].shape[0])
    X = data["X"]
    r, i, rows = model._pair_rows(users, X, model._context(users), None)
    assert rows.shape[0] > 0
    each = np.array([t.predict_proba(rows)[:, 1] for t in reranker.members])
    assert not np.allclose(each[0], each[-1])  # the members differ, so the mean means something
    np.testing.assert_allclose(reranker.predict(rows), each.mean(axis=0), rtol=1e-6)
    model.save(tmp_path / "h")
    loaded = HybridRanker.load(tmp_path / "h")
    assert len(loaded._reranker.members) == 6
    np.testing.assert_array_equal(loaded._reranker.predict(rows), reranker.predict(rows))


def test_a_ranker_file_holding_one_set_of_trees_still_loads(model, data, tmp_path):
    """Artifacts written before the averaging hold the trees alone; they load as one member."""
    import joblib

    model.save(tmp_path / "h")
    joblib.dump(model._reranker.trees, tmp_path / "h" / "ranker.joblib")
    loaded = HybridRanker.load(tmp_path / "h")
    assert loaded._reranker.members[0].get_params() == model._reranker.trees.get_params()
    users = np.arange(data["X"].shape[0])
    _, _, rows = model._pair_rows(users, data["X"], model._context(users), None)
    np.testing.assert_allclose(loaded._reranker.predict(rows),
                               model._reranker.trees.predict_proba(rows)[:, 1], rtol=1e-6)

def test_held_out_component_lists_come_from_the_fit_before_the_cut(model, data):
    """A component's held-out list never holds what the user had before the cut, and is
    that component's own ranking of the rest."""
    fit_X = data["validation"][0].tocsr()
    ease = model.components.index("ease")
    for row, user in enumerate(model.holdout_users_):
        listed = model.holdout_component_recs_[ease, row]
        listed = listed[listed >= 0]
        assert not set(listed) & set(fit_X[user].indices)


def test_serve_with_a_component_ranks_by_its_scores(data):
    model = fit_model(data)
    users = _users(data)
    X = data["X"]
    model.serve_with("ease")
    assert model.served_by == "ease"
    items, scores, signals = model.rank(users, X, n=3, **_side(data, users))
    column = SIGNALS.index("ease")
    for u in range(users.size):
        got = signals[u, :, column]
        got = got[~np.isnan(got)]
        assert np.all(np.diff(got) <= 0), "ranked by the EASE score, best first"
        finite = scores[u][np.isfinite(scores[u])]
        assert np.all((finite > 0) & (finite <= 1)) and np.all(np.diff(finite) <= 0)


def test_served_by_a_component_the_model_lists_as_that_component_does_ties_included(data):
    """Newcomers' popularity-by-band scores tie within a band wherever two courses have the
    same count; given the benchmark's random keys the hybrid orders those ties by the keys
    alone, exactly as the component does, so falling back on a component ranks as it."""
    model = fit_model(data).serve_with("pop")
    users = _users(data)
    X = sp.csr_matrix(data["X"].shape, dtype=np.float32)  # no history: every item open
    keys = np.random.default_rng(3).random(X.shape)
    counts = model._components["pop"]._score(users[:1], X[:1])[0]
    assert np.unique(counts).size < counts.size, "the data must hold equal scores"
    n = SMALL["n_candidates"]
    want = model._components["pop"].recommend(users, X, n=n, tie_keys=keys)[0]
    got = model.recommend(users, X, n=n, tie_keys=keys, tie_order=keys, **_side(data, users))[0]
    np.testing.assert_array_equal(got, want)


def test_serve_with_a_blend_averages_the_trees_and_the_components_reciprocal_ranks(data):
    """``reranker+ease``: each candidate scores 1/2 / (1 + its place in the trees' list) +
    1/2 / (1 + EASE's rank of it), and the list is in that order."""
    model = fit_model(data)
    users = _users(data)
    X, side = data["X"], _side(data, users)
    everything = N_ITEMS
    trees = model.serve_with("reranker").rank(users, X, n=everything, **side)[0]
    items, scores, signals = model.serve_with("reranker+ease").rank(users, X, n=everything,
                                                                    **side)
    assert model.served_by == "reranker+ease"
    ease_rank = np.expm1(signals[..., SIGNALS.index("ease_rank")])
    blended_any = False
    for u in range(users.size):
        listed = items[u] >= 0
        assert set(items[u][listed]) == set(trees[u][trees[u] >= 0])  # the same candidates
        place = {item: at for at, item in enumerate(trees[u][trees[u] >= 0])}
        expected = np.array([0.5 / (1 + place[item]) for item in items[u][listed]]) \
            + 0.5 / (1 + ease_rank[u][listed])
        np.testing.assert_allclose(scores[u][listed], expected, rtol=1e-6)
        assert np.all(np.diff(scores[u][listed]) <= 0)
        blended_any |= not np.array_equal(items[u][listed], trees[u][trees[u] >= 0])
    assert blended_any, "the blend reorders some list"
    with pytest.raises(ValueError, match=r"source='reranker\+trees'"):
        model.serve_with("reranker+trees")


def test_declared_interests_lift_a_category_whatever_ranks_the_candidates(data):
    """Declared interests multiply a matching course's score by ``1 + interest_boost``, also
    when the guard made one component rank the candidates."""
    users = np.array([-1])
    empty = sp.csr_matrix((1, N_ITEMS), dtype=np.float32)
    wanted = np.zeros((1, 2), dtype=bool)
    wanted[0, 1] = True  # band 1's category
    for source in ("reranker", "pop", "ease", "reranker+knn"):
        model = fit_model(data).serve_with(source)
        plain = model.score(users, empty, user_band=[0])[0]
        keen = model.score(users, empty, user_band=[0], user_interests=wanted)[0]
        match = data["item_band"] == 1
        candidate = plain > -1.0  # items outside the candidate set score below -1
        both = match & candidate & (keen > -1.0)
        assert both.any(), source
        np.testing.assert_allclose(keen[both], plain[both] * (1 + model.interest_boost),
                                   rtol=1e-5, err_msg=source)
        np.testing.assert_allclose(keen[~match & candidate], plain[~match & candidate],
                                   rtol=1e-6, err_msg=source)


def test_serve_with_names_a_bad_source(model):
    with pytest.raises(ValueError, match=r"source='trees'"):
        model.serve_with("trees")


def test_served_source_survives_save_load_and_resets_on_refit(data, tmp_path):
    model = fit_model(data).serve_with("knn")
    back = Recommender.load(model.save(tmp_path / "m").parent)
    assert back.served_by == "knn"
    users = _users(data)
    np.testing.assert_array_equal(back.rank(users, data["X"], n=4, **_side(data, users))[0],
                                  model.rank(users, data["X"], n=4, **_side(data, users))[0])
    model.fit(data["X"], validation=(*data["validation"], data["temporal_at_cut"]),
              item_temporal=data["temporal"], **data["side"])
    assert model.served_by == "reranker"


def test_recent_popularity_is_a_component_counting_the_recent_window(data):
    """``pop_recent`` ranks by the items' recent activity at the cut (``item_temporal``'s
    first column, log1p counts), or, with ``recent_window_days``, by the pairs seen within
    that window as the popularity-recent baseline counts them."""
    from models import Popularity

    assert "pop_recent" in COMPONENTS and "pop_recent" in SIGNALS
    model = fit_model(data)
    recent = model._components["pop_recent"].global_scores_
    counts = np.expm1(data["temporal"][:, 0].astype(np.float64))
    np.testing.assert_allclose(recent, counts / counts.sum(), rtol=1e-6)

    # A window in days: the baseline's own counting, at the validation cut and at the end.
    X = data["X"]
    ages = X.copy()
    ages.data = np.where(np.arange(X.nnz) % 3 == 0, 2.0, 40.0).astype(np.float32)
    windowed = HybridRanker(**{**SMALL, "recent_window_days": 7.0}).fit(
        X, validation=(*data["validation"], data["temporal_at_cut"], ages),
        item_temporal=data["temporal"], pair_age=ages, **data["side"])
    expected = Popularity(window=7.0).fit(X, pair_age=ages).global_scores_
    np.testing.assert_allclose(windowed._components["pop_recent"].global_scores_, expected)
    with pytest.raises(ValueError, match="recent_window_days needs pair_age"):
        HybridRanker(**{**SMALL, "recent_window_days": 7.0}).fit(
            X, validation=(*data["validation"], data["temporal_at_cut"]),
            item_temporal=data["temporal"], **data["side"])


def test_serving_recent_popularity_ranks_the_recently_taken_first(data):
    model = fit_model(data).serve_with("pop_recent")
    users = np.array([-1])
    items, _, _ = model.rank(users, sp.csr_matrix((1, N_ITEMS)), n=3,
                             user_band=np.array([-1]), user_community=np.array([-1]))
    counts = data["temporal"][:, 0]
    assert np.all(np.diff(counts[items[0]]) <= 0)
    assert counts[items[0][0]] == counts.max()


def test_the_factor_autoencoder_is_a_component_when_on_and_ranks_a_cold_item_by_metadata(
        data, tmp_path):
    """Off by default; on, it is fitted with the items' metadata (a course nobody took is
    scored by it), served alone when asked, and saved and loaded with the rest."""
    assert "factor_ae" not in fit_model(data).components
    metadata = data["side"]["item_features"]
    model = HybridRanker(**{**SMALL, "factor_ae_factors": 4, "factor_ae_epochs": 30}).fit(
        data["X"], validation=(*data["validation"], data["temporal_at_cut"]),
        item_temporal=data["temporal"], item_metadata=metadata, **data["side"])
    assert "factor_ae" in model.components
    component = model._components["factor_ae"]
    assert component.scored_[COLD_ITEM] and component.epoch_users == 20000
    scores = component.score(_users(data), data["X"])
    assert np.all(scores[:, COLD_ITEM] > 0)
    served = model.serve_with("factor_ae")
    users = _users(data)
    items = served.recommend(users, data["X"], n=3, user_band=data["band"])[0]
    expected = np.argsort(-np.where(data["X"].toarray() > 0, -np.inf, scores), axis=1,
                          kind="stable")[:, :3]
    np.testing.assert_array_equal(items[:5], expected[:5])
    model.save(tmp_path / "with_ae")
    loaded = HybridRanker.load(tmp_path / "with_ae")
    np.testing.assert_array_equal(loaded._components["factor_ae"].decoder_, component.decoder_)

"""The contract every model passes: one mixin, inherited by each model's test class.

Like implicit's ``tests/recommender_base_test.py``: a test class sets ``make_model()`` (and, when
the model needs it, ``fit_side``) and inherits every test below. The data is a tiny checkerboard:
two groups of users, two groups of items, each user interacting with most items of their own
group and none of the other, with irregular weights so that no two scores tie by symmetry.
Every model must rank a user's unseen own-group items above the other group's items.

The contract also covers what a model leaves behind: a refit keeps nothing of the earlier fit,
and a saved model is ``.npz`` arrays that load with ``allow_pickle=False`` (plus, for a model
with fitted scikit-learn parts, the joblib files it declares).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from models.base import NotFittedError, Recommender

USERS_PER_GROUP = 20
ITEMS_PER_GROUP = 6
SEEN_SHARE = 0.65


@dataclass
class Checkerboard:
    user_items: sp.csr_matrix
    user_group: np.ndarray
    item_group: np.ndarray

    @property
    def n_users(self) -> int:
        return self.user_items.shape[0]

    @property
    def n_items(self) -> int:
        return self.user_items.shape[1]

    def pair_age(self) -> sp.csr_matrix:
        """Days since each pair's latest interaction, 1 to 60, irregular: stored where the user
        interacted (the side information of recent-window models)."""
        ages = self.user_items.copy()
        ages.data = (1.0 + (37 * np.arange(ages.nnz)) % 60).astype(np.float32)
        return ages

    def unseen_own(self, user: int) -> set[int]:
        """Items of the user's group that are not in their row."""
        own = np.flatnonzero(self.item_group == self.user_group[user])
        return set(own.tolist()) - set(self.user_items[user].indices.tolist())


def checkerboard(seed: int = 0, users_per_group: int = USERS_PER_GROUP) -> Checkerboard:
    """Two user groups × two item groups; users pick own-group items independently.

    Each own-group item is in a user's row with probability SEEN_SHARE (at least 2 and at
    most ITEMS_PER_GROUP - 1 of them), so items of a group are not correlated negatively, as
    they would be if every user had the same number of items.
    """
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    user_group = np.repeat([0, 1], users_per_group)
    item_group = np.repeat([0, 1], ITEMS_PER_GROUP)
    for user, group in enumerate(user_group):
        own = np.flatnonzero(item_group == group)
        picked = own[rng.random(ITEMS_PER_GROUP) < SEEN_SHARE]
        while not 2 <= picked.size < ITEMS_PER_GROUP:
            picked = own[rng.random(ITEMS_PER_GROUP) < SEEN_SHARE]
        rows += [user] * picked.size
        cols += picked.tolist()
    # Irregular weights, so that no two scores tie by symmetry.
    vals = rng.uniform(1.0, 3.0, len(rows)).round(2)
    X = sp.csr_matrix(
        (vals.astype(np.float32), (rows, cols)),
        shape=(len(user_group), len(item_group)),
    )
    return Checkerboard(X, user_group, item_group)


class RecommenderContract:
    """Shared tests; subclasses define ``make_model`` and declare ``bad_params``."""

    #: At least one {param: bad value}; fit must raise ValueError naming the param.
    bad_params: ClassVar[dict[str, Any]] = {}
    #: Whether the model ranks a user's unseen own-group items first on the checkerboard.
    own_group_first: ClassVar[bool] = True
    #: Whether a user unseen at fit time is ranked from the row passed at scoring time.
    scores_from_row: ClassVar[bool] = True
    #: Files of a saved model that hold fitted scikit-learn parts (joblib); all else is .npz.
    sklearn_files: ClassVar[frozenset[str]] = frozenset()

    def make_model(self) -> Recommender:
        raise NotImplementedError

    def fit_side(self, data: Checkerboard) -> dict[str, Any]:
        """Side information passed to fit (e.g. item features)."""
        return {}

    # -- helpers --------------------------------------------------------------------------------

    @pytest.fixture
    def data(self) -> Checkerboard:
        return checkerboard()

    @pytest.fixture
    def model(self, data: Checkerboard) -> Recommender:
        return self.make_model().fit(data.user_items, **self.fit_side(data))

    @staticmethod
    def _all(data: Checkerboard) -> np.ndarray:
        return np.arange(data.n_users)

    # -- sklearn conventions --------------------------------------------------------------------

    def test_fit_returns_self(self, data):
        model = self.make_model()
        assert model.fit(data.user_items, **self.fit_side(data)) is model
        assert model.is_fitted()
        assert (model.n_users_, model.n_items_) == data.user_items.shape

    def test_init_only_stores_params(self):
        model = self.make_model()
        params = model.get_params()
        assert params, "every model has at least one parameter"
        for name, value in params.items():
            assert getattr(model, name) is value
        fitted = [a for a in vars(model) if a.endswith("_") and not a.startswith("__")]
        assert fitted == [], f"__init__ set fitted attributes {fitted}"
        assert not model.is_fitted()
        clone = type(model)(**params)
        assert clone.get_params() == params
        assert type(model).__name__ in repr(model)

    def test_bad_params_raise_naming_the_param_and_value(self, data):
        assert self.bad_params, "declare at least one bad parameter value"
        for name, value in self.bad_params.items():
            model = self.make_model().set_params(**{name: value})  # no error yet: init rule
            with pytest.raises(ValueError, match=re.escape(f"{name}={value!r}")):
                model.fit(data.user_items, **self.fit_side(data))

    def test_unknown_param_and_side_info_rejected(self, data):
        with pytest.raises(ValueError, match="no_such_param"):
            self.make_model().set_params(no_such_param=1)
        with pytest.raises(TypeError, match="no_such_side"):
            self.make_model().fit(data.user_items, no_such_side=1, **self.fit_side(data))

    def test_unfitted_model_refuses_to_score(self, data):
        model = self.make_model()
        with pytest.raises(NotFittedError, match="not fitted"):
            model.recommend(np.array([0]), data.user_items[[0]])
        with pytest.raises(NotFittedError):
            model.save("never-written")

    # -- scoring and ranking --------------------------------------------------------------------

    def test_score_shape_and_dtype(self, model, data):
        scores = model.score(self._all(data), data.user_items)
        assert scores.shape == (data.n_users, data.n_items)
        assert scores.dtype == np.float32
        assert np.isfinite(scores).all()

    def test_recommends_unseen_items_of_own_group_first(self, model, data):
        if not self.own_group_first:
            pytest.fail("this model class must override the test with its own ranking check")
        ids, _ = model.recommend(self._all(data), data.user_items, n=ITEMS_PER_GROUP)
        for user in range(data.n_users):
            unseen = data.unseen_own(user)
            top = ids[user, : len(unseen)].tolist()
            assert set(top) == unseen, f"user {user}: {ids[user]}, unseen own items {unseen}"

    def test_batch_equals_single_user(self, model, data):
        ids, scores = model.recommend(self._all(data), data.user_items, n=5)
        for user in range(data.n_users):
            one_ids, one_scores = model.recommend(user, data.user_items[user])
            assert one_ids.shape == (10,) and one_scores.shape == (10,)
            np.testing.assert_array_equal(one_ids[:5], ids[user])
            np.testing.assert_allclose(one_scores[:5], scores[user], rtol=1e-5, atol=1e-6)
        # Order within a batch does not matter either.
        perm = np.random.default_rng(1).permutation(data.n_users)
        p_ids, _ = model.recommend(perm, data.user_items[perm], n=5)
        np.testing.assert_array_equal(p_ids, ids[perm])

    def test_filter_seen_removes_exactly_the_seen_items(self, model, data):
        X = data.user_items
        ids, _ = model.recommend(self._all(data), X, n=data.n_items)
        for user in range(data.n_users):
            seen = set(X[user].indices.tolist())
            returned = [i for i in ids[user].tolist() if i >= 0]
            assert not seen & set(returned)
            assert sorted(returned) == sorted(set(range(data.n_items)) - seen)
        ids, _ = model.recommend(self._all(data), X, n=data.n_items, filter_seen=False)
        for user in range(data.n_users):
            assert sorted(ids[user].tolist()) == list(range(data.n_items))

    def test_candidates_restrict_the_output(self, model, data):
        X = data.user_items
        candidates = np.array([0, 3, 5, 7, 11])
        ids, scores = model.recommend(self._all(data), X, n=4, candidates=candidates)
        full = model.score(self._all(data), X)
        for user in range(data.n_users):
            allowed = [c for c in candidates.tolist() if c not in set(X[user].indices.tolist())]
            expected = sorted(allowed, key=lambda i: (-full[user, i], i))[:4]
            got = [i for i in ids[user].tolist() if i >= 0]
            assert got == expected
        with pytest.raises(ValueError, match="candidates"):
            model.recommend(self._all(data), X, candidates=np.array([data.n_items]))

    def test_shapes_order_and_padding(self, model, data):
        X = data.user_items
        n = data.n_items + 3
        ids, scores = model.recommend(self._all(data), X, n=n)
        assert ids.shape == scores.shape == (data.n_users, n)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        for user in range(data.n_users):
            valid = ids[user] >= 0
            n_valid = data.n_items - X[user].nnz
            assert valid[:n_valid].all() and not valid[n_valid:].any()
            assert np.isneginf(scores[user, n_valid:]).all()
            assert len(set(ids[user, :n_valid].tolist())) == n_valid
            assert (np.diff(scores[user, :n_valid]) <= 0).all()
        empty_ids, empty_scores = model.recommend(np.zeros(0, dtype=int), X[:0], n=3)
        assert empty_ids.shape == empty_scores.shape == (0, 3)

    def test_rows_must_match_users_and_catalogue(self, model, data):
        X = data.user_items
        with pytest.raises(ValueError, match="user_items"):
            model.recommend(np.array([0, 1]), X[[0]])
        with pytest.raises(ValueError, match="user_items"):
            model.recommend(np.array([0]), sp.csr_matrix((1, data.n_items + 1)))
        with pytest.raises(ValueError, match="user_indices"):
            model.recommend(np.array([0.5]), X[[0]])
        with pytest.raises(ValueError, match="n must"):
            model.recommend(np.array([0]), X[[0]], n=-1)

    def test_unseen_user_is_ranked_from_their_row(self, model, data):
        template = 2
        row = data.user_items[[template]]
        for unseen in (-1, data.n_users + 5):
            expected = data.unseen_own(template)
            ids, scores = model.recommend(np.array([unseen]), row, n=len(expected))
            assert (ids >= 0).all() and np.isfinite(scores).all()
            if self.scores_from_row:
                assert set(ids[0].tolist()) == expected
        ids, scores = model.recommend(np.array([-1]), sp.csr_matrix((1, data.n_items)), n=3)
        assert (ids >= 0).all() and np.isfinite(scores).all()

    # -- persistence and determinism ------------------------------------------------------------

    def test_save_load_round_trip_gives_identical_scores(self, model, data, tmp_path):
        path = model.save(tmp_path / "m")
        assert path.name == "model.npz"
        for loader in (type(model), Recommender):
            loaded = loader.load(tmp_path / "m")
            assert type(loaded) is type(model)
            assert loaded.get_params() == model.get_params()
            users = np.concatenate([self._all(data), [-1]])
            rows = sp.vstack([data.user_items, data.user_items[[0]]]).tocsr()
            np.testing.assert_array_equal(loaded.score(users, rows), model.score(users, rows))
        with np.load(path, allow_pickle=False) as npz:
            assert all(npz[key].dtype.kind in "biufcU" for key in npz.files)
        other = next(c for c in Recommender._registry.values() if not isinstance(model, c))
        with pytest.raises(ValueError, match=type(model).__name__):
            other.load(tmp_path / "m")

    def test_saved_arrays_load_without_pickle(self, model, tmp_path):
        model.save(tmp_path / "m")
        files = sorted(p for p in (tmp_path / "m").rglob("*") if p.is_file())
        assert any(p.suffix == ".npz" for p in files)
        for path in files:
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as npz:
                    for key in npz.files:  # an object array would raise here
                        assert npz[key].dtype.kind in "biufcU", (path, key)
            else:
                assert path.name in self.sklearn_files, f"{path.name} is not an .npz file"
                loaded = joblib.load(path)  # an estimator, or a list of them (an ensemble)
                members = loaded if isinstance(loaded, list) else [loaded]
                assert members and all(isinstance(m, BaseEstimator) for m in members), path

    def test_refit_on_same_data_gives_same_scores(self, model, data):
        again = self.make_model().fit(data.user_items, **self.fit_side(data))
        users = self._all(data)
        np.testing.assert_array_equal(
            again.score(users, data.user_items), model.score(users, data.user_items)
        )

    def test_refit_keeps_nothing_of_the_earlier_fit(self, model, data):
        # Serve the first fit (a single user and a batch) so that every cache gets built.
        model.recommend(0, data.user_items[0])
        model.score(self._all(data), data.user_items)
        other = checkerboard(seed=1, users_per_group=USERS_PER_GROUP - 5)
        model.fit(other.user_items, **self.fit_side(other))
        fresh = self.make_model().fit(other.user_items, **self.fit_side(other))
        assert sorted(vars(model)) == sorted(vars(fresh))
        for name, value in vars(fresh).items():
            _assert_same_state(getattr(model, name), value, name)
        users = np.concatenate([self._all(other), [-1]])
        rows = sp.vstack([other.user_items, other.user_items[[0]]]).tocsr()
        np.testing.assert_array_equal(model.score(users, rows), fresh.score(users, rows))
        one = model.recommend(3, other.user_items[3])
        np.testing.assert_array_equal(one[0], fresh.recommend(3, other.user_items[3])[0])


def _assert_same_state(got: Any, want: Any, name: str) -> None:
    """Fitted state ``got`` equals ``want``: arrays by value, models and dicts recursively.

    Other objects (a fitted scikit-learn estimator) are compared by type; their predictions are
    compared through the scores.
    """
    assert type(got) is type(want), name
    if sp.issparse(want):
        assert got.shape == want.shape and (got != want).nnz == 0, name
    elif isinstance(want, np.ndarray):
        np.testing.assert_array_equal(got, want, err_msg=name)
    elif isinstance(want, dict | Recommender):
        got_items = got if isinstance(got, dict) else vars(got)
        want_items = want if isinstance(want, dict) else vars(want)
        assert sorted(got_items) == sorted(want_items), name
        for key, value in want_items.items():
            _assert_same_state(got_items[key], value, f"{name}.{key}")
    elif want is None or isinstance(want, bool | int | float | str | np.generic):
        assert got == want, name

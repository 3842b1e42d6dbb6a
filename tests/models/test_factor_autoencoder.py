"""The factor autoencoder: the shared contract, and what its loss and its parts promise."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import EASE, FactorAutoencoder
from tests.models.mixin import RecommenderContract


class TestFactorAutoencoder(RecommenderContract):
    bad_params = {"factors": 0, "epochs": -1, "learning_rate": 0.0, "l2": -1.0,
                  "holdout": 1.0, "batch_size": 0, "epoch_users": 0, "max_items": 0,
                  "weighting": "squared",
                  "random_state": -1}

    def make_model(self):
        return FactorAutoencoder(factors=8, epochs=60, learning_rate=0.02, batch_size=8,
                                 random_state=0)


class TestFactorAutoencoderBinary(TestFactorAutoencoder):
    def make_model(self):
        return FactorAutoencoder(factors=8, epochs=60, learning_rate=0.02, batch_size=8,
                                 weighting="binary", random_state=0)


class TestFactorAutoencoderWithFeatures(TestFactorAutoencoder):
    def fit_side(self, data):
        return {"item_features": sp.csr_matrix(np.eye(2, dtype=np.float32)[data.item_group])}


def low_rank(seed: int = 0, n_users: int = 400, n_items: int = 120, factors: int = 4,
             per_user: int = 12) -> sp.csr_matrix:
    """Users drawn from a softmax over latent-factor scores: the model this one assumes."""
    rng = np.random.default_rng(seed)
    users, items = rng.normal(size=(n_users, factors)), rng.normal(size=(n_items, factors))
    logits = 1.5 * users @ items.T
    rows, cols = [], []
    for u in range(n_users):
        p = np.exp(logits[u] - logits[u].max())
        cols.append(rng.choice(n_items, size=per_user, replace=False, p=p / p.sum()))
        rows.append(np.full(per_user, u))
    return sp.csr_matrix((np.ones(n_users * per_user, np.float32),
                          (np.concatenate(rows), np.concatenate(cols))), shape=(n_users, n_items))


def held_out_hits(model, X: sp.csr_matrix, seed: int = 1) -> float:
    """Share of one held-out item per user found in the model's top 10."""
    rng = np.random.default_rng(seed)
    coo = X.tocoo()
    keep = np.ones(X.nnz, dtype=bool)
    starts = X.indptr[:-1]
    held = starts + rng.integers(0, np.diff(X.indptr))
    keep[held] = False
    train = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=X.shape)
    scores = model.fit(train).score(np.arange(X.shape[0]), train)
    scores[train.nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :10]
    return float(np.mean([X.indices[h] in top[u] for u, h in enumerate(held)]))


def test_on_low_rank_data_it_finds_more_held_out_items_than_popularity_and_ease():
    X = low_rank()
    ae = held_out_hits(FactorAutoencoder(factors=8, epochs=40, batch_size=32,
                                         random_state=0), X)
    ease = max(held_out_hits(EASE(l2=l2), X) for l2 in (10.0, 50.0, 200.0))
    popular = held_out_hits(FactorAutoencoder(factors=8, epochs=0, random_state=0), X)
    assert ae > popular + 0.1
    assert ae > ease


def test_an_empty_row_scores_the_item_biases_and_scores_are_probabilities():
    X = low_rank(n_users=100)
    model = FactorAutoencoder(factors=4, epochs=5, random_state=0).fit(X)
    scores = model.score(np.arange(3), sp.csr_matrix((3, X.shape[1]), dtype=np.float32))
    bias = model.bias_[model.active_]
    expected = np.exp(bias - bias.max())
    np.testing.assert_allclose(scores[0, model.active_], expected / expected.sum(), rtol=1e-5)
    full = model.score(np.arange(100), X)
    np.testing.assert_allclose(full.sum(axis=1), 1.0, rtol=1e-4)
    assert full.min() >= 0.0


def test_zero_epochs_rank_by_popularity():
    X = low_rank(n_users=100)
    model = FactorAutoencoder(epochs=0, random_state=0).fit(X)
    counts = X.getnnz(axis=0)
    order = np.argsort(-model.score(np.array([0]), sp.csr_matrix((1, X.shape[1])))[0],
                       kind="stable")
    assert np.all(np.diff(counts[order]) <= 0)


def test_max_items_keeps_the_most_used_and_scores_the_rest_zero():
    X = low_rank(n_users=100)
    counts = X.getnnz(axis=0)
    model = FactorAutoencoder(factors=4, epochs=2, max_items=10, random_state=0).fit(X)
    assert model.active_.size == 10
    assert counts[model.active_].min() >= np.sort(counts)[-10]
    scores = model.score(np.arange(5), X[:5])
    rest = np.setdiff1d(np.arange(X.shape[1]), model.active_)
    assert np.all(scores[:, rest] == 0) and np.all(scores[:, model.active_] > 0)


def test_a_seed_fixes_the_model_and_another_seed_changes_it():
    X = low_rank(n_users=100)
    a = FactorAutoencoder(factors=4, epochs=3, random_state=5).fit(X)
    b = FactorAutoencoder(factors=4, epochs=3, random_state=5).fit(X)
    c = FactorAutoencoder(factors=4, epochs=3, random_state=6).fit(X)
    np.testing.assert_array_equal(a.decoder_, b.decoder_)
    assert not np.array_equal(a.decoder_, c.decoder_)


@pytest.mark.parametrize("holdout", [0.0, 1.0])
def test_holdout_must_leave_something_on_both_sides(holdout):
    with pytest.raises(ValueError, match="holdout"):
        FactorAutoencoder(holdout=holdout).fit(low_rank(n_users=20))


def test_a_course_nobody_took_is_ranked_by_its_features():
    # Two kinds of items (feature 0 or 1), and users who take one kind only; the last item of
    # each kind has no interactions. Each user's unseen new item of their kind comes first.
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 12
    kind = np.arange(n_items) % 2
    new = np.array([10, 11])
    user_kind = np.arange(n_users) % 2
    rows, cols = [], []
    for u in range(n_users):
        own = np.setdiff1d(np.flatnonzero(kind == user_kind[u]), new)
        picked = rng.choice(own, size=3, replace=False)
        rows += [u] * 3
        cols += picked.tolist()
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    features = sp.csr_matrix(np.eye(2, dtype=np.float32)[kind])
    model = FactorAutoencoder(factors=4, epochs=80, batch_size=16, learning_rate=0.02,
                              random_state=0).fit(X, item_features=features)
    scores = model.score(np.arange(n_users), X)
    own_new = new[user_kind]
    other_new = new[1 - user_kind]
    assert np.all(scores[np.arange(n_users), own_new] > scores[np.arange(n_users), other_new])
    # without features a new item scores 0, as in EASE
    plain = FactorAutoencoder(factors=4, epochs=5, random_state=0).fit(X)
    assert np.all(plain.score(np.arange(n_users), X)[:, new] == 0)
    with pytest.raises(ValueError, match="item_features has 3 rows"):
        FactorAutoencoder(epochs=1).fit(X, item_features=sp.csr_matrix((3, 2)))

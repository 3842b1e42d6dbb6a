"""The re-ranker's training rows and held-out lists are what building every row would give.

Training builds signal rows only for the candidate pairs it keeps, and makes a held-out user's
list and calibration pairs in one pass; both must equal the plain computation (every row built,
then indexed; the list of :meth:`HybridRanker._rank`), or a faster fit would be a different
model.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from models.hybrid import reranker
from models.hybrid.reranker import (
    ItemCrossFit,
    _one_ahead,
    _subsample,
    holdout_folds,
    negatives_kept,
    training_rows,
    training_users,
    validation_users,
)
from tests.models.test_hybrid import fit_model, make_data


@pytest.fixture(scope="module")
def fitted():
    with threadpool_limits(1):
        data = make_data()
        yield data, fit_model(data)


def test_rows_of_the_kept_pairs_equal_every_row_indexed(fitted):
    data, model = fitted
    fit_X, target = data["validation"]
    users = validation_users(target)

    def kept_only(batch):
        return model._candidates(batch, fit_X[batch], model._context(batch), None)

    def every_row(batch):
        r, i, rows = model._pair_rows(batch, fit_X[batch], model._context(batch), None)
        return r, i, lambda select: rows[select]

    fast = training_rows(kept_only, target, users, 1, 0)
    plain = training_rows(every_row, target, users, 1, 0)
    for a, b in zip(fast, plain):
        np.testing.assert_array_equal(a, b)
    n_candidates = kept_only(users)[0].size
    assert 0 < fast[0].shape[0] < n_candidates  # negatives were dropped, positives kept
    assert fast[1].any() and not fast[1].all()


def test_holdout_lists_equal_the_ranked_lists(fitted):
    data, model = fitted
    fit_X, target = data["validation"]
    fold = validation_users(target)
    served = ItemCrossFit([model._reranker], np.zeros((0, fit_X.shape[1]), dtype=bool))
    lists, pairs = model._holdout_pairs(fold, fit_X, target, None, served)
    ranked = model._rank(fold, fit_X[fold], 10, {"allowed": None})[0]
    np.testing.assert_array_equal(lists, ranked)
    assert (lists[:, 0] >= 0).all()
    assert sum(s.shape[0] for s in pairs["scores"]) == sum(x.size for x in pairs["labels"])


def _subsample_by_lexsort(cand_r, truth, rng, negatives_per_user):
    """The plain computation: sort by (user, -key) with positives' keys lifted above 2."""
    key = rng.random(truth.size) + truth * 2.0
    order = np.lexsort((-key, cand_r))
    first = np.searchsorted(cand_r[order], cand_r[order], side="left")
    rank_in_user = np.arange(order.size) - first
    positives = np.bincount(cand_r, truth)[cand_r[order]]
    return order[truth[order] | (rank_in_user < negatives_per_user + positives)]


@pytest.mark.parametrize("n_users", [1, 40, 1000, 1500])
@pytest.mark.parametrize("negatives", [0, 1, 30])
def test_kept_pairs_equal_the_lexicographic_sort(n_users, negatives):
    # the packed integer sort (and its fallback above 1024 users) keeps the same pairs in the
    # same order, so the trees see the same rows
    draw = np.random.default_rng(n_users)
    cand_r = draw.permutation(np.repeat(np.arange(n_users), draw.integers(0, 80, n_users)))
    truth = draw.random(cand_r.size) < 0.05
    kept = _subsample(cand_r, truth, np.random.default_rng(3), negatives)
    np.testing.assert_array_equal(
        kept, _subsample_by_lexsort(cand_r, truth, np.random.default_rng(3), negatives))
    per_user = np.bincount(cand_r[kept], ~truth[kept], minlength=n_users)
    assert (per_user == np.minimum(negatives, np.bincount(cand_r, ~truth, minlength=n_users))).all()
    assert truth[kept].sum() == truth.sum()


def test_training_users_leave_out_a_single_held_out_fold():
    # one held-out fold: its users' rows would never reach a tree, so none are built for them
    users = np.arange(0, 20000, 2)
    (fold,) = holdout_folds(users, 0.2, 0)
    rows = training_users(users, [fold], 3000, 0)
    assert rows.size == 3000 and not np.isin(rows, fold).any() and np.isin(rows, users).all()
    assert (np.diff(rows) > 0).all()
    everyone_else = training_users(users, [fold], 10**6, 0)
    np.testing.assert_array_equal(everyone_else, np.setdiff1d(users, fold))
    # cross-fitted folds: each fold's trees learn on the others, so every user has rows
    small = users[:400]
    folds = holdout_folds(small, 0.2, 0)
    assert len(folds) == 5
    np.testing.assert_array_equal(training_users(small, folds, 100, 0), small)
    # nothing held out: a sample of them all
    assert training_users(users, [], 3000, 0).size == 3000


def test_negatives_are_capped_only_at_scale():
    # small validation sets keep every negative asked for; many users share a fixed budget
    assert negatives_kept(30, 943) == 30 and negatives_kept(30, 3333) == 30
    assert negatives_kept(30, 4913) == 20 and negatives_kept(30, 20000) == 5
    assert negatives_kept(30, 10**7) == 1
    assert negatives_kept(0, 20000) == 0 and negatives_kept(3, 20000) == 3


def test_batches_made_one_ahead_give_the_rows_of_a_plain_loop(fitted, monkeypatch):
    data, model = fitted
    fit_X, target = data["validation"]
    users = validation_users(target)

    def pairs(batch):
        return model._candidates(batch, fit_X[batch], model._context(batch), None)

    monkeypatch.setattr(reranker, "_BATCH", 7)  # several batches, so the second thread works
    ahead = training_rows(pairs, target, users, 2, 0)
    monkeypatch.setattr(reranker, "_one_ahead",
                        lambda make, batches: (make(batch) for batch in batches))
    plain = training_rows(pairs, target, users, 2, 0)
    for a, b in zip(ahead, plain):
        np.testing.assert_array_equal(a, b)


def test_one_ahead_keeps_the_order_and_makes_at_most_one_batch_ahead():
    made = []

    def make(batch):
        made.append(int(batch[0]))
        return int(batch[0]) * 10

    batches = [np.array([k]) for k in range(6)]
    got = []
    for value in _one_ahead(make, batches):
        got.append(value)
        assert len(made) <= len(got) + 1  # the one being used and at most one more
    assert got == [10 * k for k in range(6)]
    assert list(_one_ahead(make, batches[:1])) == [0]

"""Courses new at the validation cut are cross-fitted like the held-out users.

On a validation cut whose candidates have no history (the cold-item protocol), trees that
learned which of those courses the other validation users took would rank them for the
held-out users with knowledge that no new course has when the model serves, and the guard
would trust them. Here the new courses' take-up depends on the course alone, and each course
can be told apart by one signal (its age), so trees that saw a course's take-up could
recognise it; trees that did not can only guess.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from models.hybrid import HybridRanker, reranker
from models.hybrid.reranker import ItemCrossFit, new_item_shares
from recommender.evaluation.metrics import ndcg_at_k
from tests.models.test_hybrid import SMALL

N_USERS, N_OLD, N_NEW = 600, 20, 16


def cold_item_cut(seed: int = 0) -> dict:
    """Users with 2-4 old courses before the cut take 1-2 new courses after it, most often
    three favourites drawn at random; every new course has an age of its own at the cut, the
    one signal that tells the new courses apart."""
    rng = np.random.default_rng(seed)
    n_items = N_OLD + N_NEW
    history_r, history_c, target_r, target_c = [], [], [], []
    old_pop = np.linspace(2.0, 0.5, N_OLD)
    favourites = rng.choice(N_NEW, 3, replace=False)
    new_pop = np.full(N_NEW, 0.2)
    new_pop[favourites] = 6.0
    # Ages 10, 17, ..., one a course; the favourites' are apart (the 3rd, 8th and 13th), so
    # that no favourite's age tells of another's.
    places = np.empty(N_NEW, dtype=np.int64)
    places[favourites] = [2, 7, 12]
    places[np.setdiff1d(np.arange(N_NEW), favourites)] = rng.permutation(
        np.setdiff1d(np.arange(N_NEW), [2, 7, 12]))
    for user in range(N_USERS):
        old = rng.choice(N_OLD, rng.integers(2, 5), replace=False, p=old_pop / old_pop.sum())
        new = N_OLD + rng.choice(N_NEW, rng.integers(1, 3), replace=False,
                                 p=new_pop / new_pop.sum())
        history_r += [user] * old.size
        history_c += old.tolist()
        target_r += [user] * new.size
        target_c += new.tolist()
    shape = (N_USERS, n_items)
    fit_X = sp.csr_matrix((np.ones(len(history_r), np.float32), (history_r, history_c)), shape)
    target = sp.csr_matrix((np.ones(len(target_r), np.float32), (target_r, target_c)), shape)
    temporal = np.zeros((n_items, 3), dtype=np.float32)
    temporal[:N_OLD] = [2.0, 300.0, 1.0]
    temporal[N_OLD:, 1] = 10 + 7 * places
    temporal[N_OLD:, 2] = -1.0
    return {"X": (fit_X + target).tocsr(), "fit_X": fit_X, "target": target,
            "temporal": temporal, "new": np.arange(N_OLD, n_items)}


@pytest.fixture(scope="module")
def cut() -> dict:
    return cold_item_cut()


@pytest.fixture(scope="module")
def model(cut) -> HybridRanker:
    with threadpool_limits(1):
        return HybridRanker(**{**SMALL, "n_candidates": 30}).fit(
            cut["X"], validation=(cut["fit_X"], cut["target"], cut["temporal"]),
            validation_candidates=cut["new"], item_temporal=cut["temporal"],
            user_band=np.zeros(N_USERS, dtype=np.int64))


def test_the_new_candidates_taken_after_the_cut_split_in_two_halves(cut):
    shares = new_item_shares(cut["fit_X"], cut["target"], None, 0)
    assert shares.shape == (2, N_OLD + N_NEW)
    assert not (shares[0] & shares[1]).any()
    np.testing.assert_array_equal(np.flatnonzero(shares[0] | shares[1]), cut["new"])
    assert abs(int(shares[0].sum()) - int(shares[1].sum())) <= 1
    # a candidate subset keeps its own new courses only
    some = np.zeros(N_OLD + N_NEW, dtype=bool)
    some[cut["new"][:5]] = True
    halves = new_item_shares(cut["fit_X"], cut["target"], some, 0)
    np.testing.assert_array_equal(np.flatnonzero(halves.any(axis=0)), cut["new"][:5])


def test_no_halves_without_a_new_course_taken_after_the_cut(cut):
    untaken = sp.csr_matrix(cut["target"].shape, dtype=np.float32)
    assert new_item_shares(cut["fit_X"], untaken, None, 0).shape == (0, N_OLD + N_NEW)
    everything_known = (cut["fit_X"] + cut["target"]).tocsr()
    assert new_item_shares(everything_known, cut["target"], None, 0).shape[0] == 0


class _Constant:
    def __init__(self, value: float):
        self.value = value

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.full(rows.shape[0], self.value)


def test_a_new_course_is_scored_by_the_trees_that_never_learned_on_it():
    shares = np.array([[True, False, False], [False, True, False]])  # item 2 has history
    scorer = ItemCrossFit([_Constant(0.2), _Constant(0.6)], shares)
    scores = scorer.predict(np.zeros((3, 4)), np.array([0, 1, 2]))
    np.testing.assert_allclose(scores, [0.2, 0.6, 0.4])


def test_held_out_lists_do_not_recognise_the_new_courses(model, cut):
    """Trees fitted on the other users' take-up of the same new courses find the three
    favourites by their ages (nDCG@10 0.71 against popularity's 0.23 before the courses were
    cross-fitted); trees that saw neither the user nor the course do no better than
    popularity, which has nothing to go on among courses without history."""
    relevant = cut["target"][model.holdout_users_]

    def held_out(source: str) -> float:
        return float(np.nan_to_num(ndcg_at_k(model.holdout_lists(source), relevant)).mean())

    assert held_out("reranker") < held_out("pop") + 0.05


def test_one_held_out_fold_serves_its_two_sets_of_trees(cut, monkeypatch):
    """Above the cross-fitting limit one fold is held out; its two sets of trees (each
    without one half of the new courses' rows) are averaged and served, and the held-out
    users' new courses are still scored by the set that never learned on them."""
    monkeypatch.setattr(reranker, "_CROSSFIT_LIMIT", 10)
    with threadpool_limits(1):
        model = HybridRanker(**{**SMALL, "n_candidates": 30}).fit(
            cut["X"], validation=(cut["fit_X"], cut["target"], cut["temporal"]),
            validation_candidates=cut["new"], item_temporal=cut["temporal"],
            user_band=np.zeros(N_USERS, dtype=np.int64))
    assert model.holdout_users_.size == round(0.2 * N_USERS)
    assert len(model._reranker.members) == 2
    relevant = cut["target"][model.holdout_users_]
    lists = {s: np.nan_to_num(ndcg_at_k(model.holdout_lists(s), relevant)).mean()
             for s in ("reranker", "pop")}
    assert lists["reranker"] < lists["pop"] + 0.05

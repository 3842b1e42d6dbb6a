"""The hybrid's order among equal scores: where the trees rank, band popularity, then
popularity; then the lower item index, or, in the benchmark, its random order in the index's
place. A component served alone keeps its own order: no tie signals."""

import numpy as np

from models.hybrid.candidates import top_columns
from models.hybrid.reranker import TIE_SIGNALS, candidate_order, top_n, untied
from models.hybrid.signals import SIGNALS

POP_BAND, POP = TIE_SIGNALS


def _rows(pop_band, pop):
    rows = np.zeros((len(pop_band), len(SIGNALS)), dtype=np.float32)
    rows[:, POP_BAND], rows[:, POP] = pop_band, pop
    return rows


def test_where_the_trees_rank_equal_scores_go_by_band_popularity_then_popularity_then_index():
    r = np.zeros(5, dtype=np.int64)
    i = np.array([0, 1, 2, 3, 4])
    score = np.array([0.5, 0.5, 0.5, 0.9, 0.5], dtype=np.float32)
    rows = _rows([0.1, 0.3, 0.3, 0.0, 0.3], [5.0, 1.0, 2.0, 0.0, 2.0])
    assert i[candidate_order(r, i, score, rows)].tolist() == [3, 2, 4, 1, 0]
    items, scores, _ = top_n(r, i, score, rows, 1, 5)
    assert items[0].tolist() == [3, 2, 4, 1, 0]
    assert scores[0].tolist() == [np.float32(0.9)] + [np.float32(0.5)] * 4


def test_without_tie_signals_equal_scores_go_by_index_whatever_the_signals_say():
    r = np.zeros(5, dtype=np.int64)
    i = np.array([0, 1, 2, 3, 4])
    score = np.array([0.5, 0.5, 0.5, 0.9, 0.5], dtype=np.float32)
    rows = _rows([0.1, 0.3, 0.3, 0.0, 0.3], [5.0, 1.0, 2.0, 0.0, 2.0])
    assert i[candidate_order(r, i, score)].tolist() == [3, 0, 1, 2, 4]
    items, _, signals = top_n(r, i, score, rows, 1, 5, by_tie_signals=False)
    assert items[0].tolist() == [3, 0, 1, 2, 4]
    assert signals[0, :, POP].tolist() == [0.0, 5.0, 1.0, 2.0, 2.0]  # each pair's own row


def test_untied_scores_sort_into_that_order_and_keep_distinct_ones_in_place():
    rng = np.random.default_rng(0)
    r = np.repeat(np.arange(50), 40)
    i = np.tile(np.arange(40), 50)
    score = np.round(rng.random(r.size), 1).astype(np.float32)  # many ties per user
    rows = _rows(np.round(rng.random(r.size), 1), rng.random(r.size))
    stepped = untied(r, i, score, rows)
    want = candidate_order(r, i, score, rows)
    got = np.lexsort((i, -stepped, r))
    assert np.array_equal(got, want)
    # a distinct score never passes another: the order of the original scores holds
    for u in range(50):
        mine = r == u
        a, b = score[mine], stepped[mine]
        higher = a[:, None] > a[None, :]
        assert (b[:, None] > b[None, :])[higher].all()
    assert np.abs(stepped - score).max() < 1e-5


def test_a_step_never_reaches_the_next_lower_score():
    below = np.float32(0.5)
    top = np.nextafter(below, np.float32(1))  # one float32 unit above
    score = np.array([top, top, top, below], dtype=np.float32)
    r = np.zeros(4, dtype=np.int64)
    i = np.arange(4)
    rows = _rows([3, 2, 1, 9], [0, 0, 0, 0])
    stepped = untied(r, i, score, rows)
    assert stepped[3] == below  # the lower score keeps its place, below every step
    assert (stepped[:3] > below).all()


def test_a_tie_order_replaces_the_index_among_pairs_equal_in_every_signal():
    r = np.zeros(5, dtype=np.int64)
    i = np.array([0, 1, 2, 3, 4])
    score = np.array([0.5, 0.5, 0.5, 0.9, 0.5], dtype=np.float32)
    rows = _rows([0.3, 0.3, 0.3, 0.0, 0.1], [1.0, 1.0, 1.0, 0.0, 1.0])
    tie = np.array([0.7, 0.2, 0.5, 0.1, 0.0])
    # 0, 1 and 2 tie in score and signals: the tie order places them (1, 2, 0), not their
    # index; it never passes the score (3 first) or a signal (4, lower band popularity, last)
    assert i[candidate_order(r, i, score, rows, tie)].tolist() == [3, 1, 2, 0, 4]
    stepped = untied(r, i, score, rows, tie)
    assert np.argsort(-stepped, kind="stable").tolist() == [3, 1, 2, 0, 4]
    # without the signals (a component served alone) the tie order alone places the four
    assert i[candidate_order(r, i, score, None, tie)].tolist() == [3, 4, 1, 2, 0]
    stepped = untied(r, i, score, None, tie)
    assert np.argsort(-stepped, kind="stable").tolist() == [3, 4, 1, 2, 0]


def test_the_candidates_cut_through_equal_scores_by_the_tie_order():
    scores = np.array([[[3.0, 1.0, 1.0, 1.0, 1.0, 0.0]]], dtype=np.float32)
    assert top_columns(scores, 3)[0, 0].tolist() == [True, True, True, False, False, False]
    tie = np.array([[0.9, 0.8, 0.6, 0.1, 0.3, 0.0]])
    assert top_columns(scores, 3, tie_order=tie)[0, 0].tolist() == [
        True, False, False, True, True, False]
    # no room left among the ties: none of them
    assert top_columns(scores, 1, tie_order=tie)[0, 0].tolist() == [
        True, False, False, False, False, False]


def test_the_cut_by_tie_order_keeps_the_lowest_tie_orders_of_each_run_at_the_cut():
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 4, (3, 5, 30)).astype(np.float32)  # 3 components, many ties
    tie = rng.random((5, 30))
    got = top_columns(scores, 7, tie_order=tie)
    for c in range(3):
        for u in range(5):
            # brute force: best score first, then the lower tie order
            want = np.lexsort((tie[u], -scores[c, u]))[:7]
            assert set(np.flatnonzero(got[c, u])) == set(want.tolist())

"""top_n: ties by item index by default, in a random order per row with a generator."""

import numpy as np
import scipy.sparse as sp

from models.base import top_n
from models.popularity import Popularity


def test_default_ties_go_to_the_lower_index():
    ids, vals = top_n(np.zeros((3, 6), dtype=np.float32), 2)
    assert ids.tolist() == [[0, 1]] * 3
    assert vals.tolist() == [[0.0, 0.0]] * 3


def test_random_ties_spread_over_the_tied_items():
    rows = 4000
    ids, _ = top_n(np.zeros((rows, 6), dtype=np.float32), 2, np.random.default_rng(0))
    counts = np.bincount(ids.ravel(), minlength=6)
    # each of the 6 tied items fills a third of the lists (2 slots of 6): 1,333 +- ~30
    assert np.all(np.abs(counts - rows * 2 / 6) < 150), counts
    assert (ids[:, 0] != ids[:, 1]).all()


def test_random_ties_leave_distinct_scores_in_order():
    scores = np.array([[5.0, 1.0, 3.0, 3.0, 3.0, -np.inf]] * 3000, dtype=np.float32)
    ids, vals = top_n(scores, 3, np.random.default_rng(1))
    assert (ids[:, 0] == 0).all()  # the best is never a tie
    assert set(np.unique(ids[:, 1:])) == {2, 3, 4}  # the three tied at 3.0, never 1 or -inf
    assert (vals[:, 1:] == 3.0).all()
    # the tied items take both remaining slots in every order, not only the lowest first
    assert len({tuple(row) for row in ids[:, 1:].tolist()}) == 6


def test_random_ties_never_return_minus_inf_and_pad():
    scores = np.array([[1.0, -np.inf, 1.0]], dtype=np.float32)
    ids, vals = top_n(scores, 4, np.random.default_rng(2))
    assert sorted(ids[0, :2].tolist()) == [0, 2]
    assert ids[0, 2:].tolist() == [-1, -1]
    assert np.isneginf(vals[0, 2:]).all()


def test_same_seed_same_lists_and_no_ties_unchanged():
    rng = np.random.default_rng(3)
    scores = rng.random((50, 40)).astype(np.float32)  # no ties
    assert np.array_equal(top_n(scores, 10)[0], top_n(scores, 10, np.random.default_rng(9))[0])
    tied = np.round(scores, 1)
    first = top_n(tied, 10, np.random.default_rng(4))[0]
    assert np.array_equal(first, top_n(tied, 10, np.random.default_rng(4))[0])


def test_recommend_passes_the_generator():
    # every item taken once: popularity scores all six alike
    X = sp.csr_matrix(np.eye(6, dtype=np.float32))
    model = Popularity().fit(X)
    users = np.arange(6)
    by_index = model.recommend(users, X, n=2, filter_seen=False)[0]
    assert by_index.tolist() == [[0, 1]] * 6
    drawn = model.recommend(users, X, n=2, filter_seen=False,
                            tie_rng=np.random.default_rng(5))[0]
    assert len({tuple(row) for row in drawn.tolist()}) > 1
    again = model.recommend(users, X, n=2, filter_seen=False,
                            tie_rng=np.random.default_rng(5))[0]
    assert np.array_equal(drawn, again)


def _full_sort_reference(scores: np.ndarray, n: int, seed: int | None) -> list[list[int]]:
    """Each row sorted whole by (score descending, tie key): what top_n must give."""
    rng = None if seed is None else np.random.default_rng(seed)
    out = []
    for row in scores:
        key = np.arange(row.size) if rng is None else rng.random(row.size)
        order = np.lexsort((key, -row))[:n]
        out.append([int(i) for i in order if row[i] > -np.inf])
    return out


def test_rows_tied_at_the_cut_match_a_full_sort():
    # Only the items at or above the cut are re-sorted for a tied row; the lists (and, with a
    # generator, the order drawn for the ties) must be those of sorting the whole row.
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, size=(60, 30)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    ids, _ = top_n(scores, 5)
    assert [[i for i in row if i >= 0] for row in ids.tolist()] == _full_sort_reference(
        scores, 5, None)
    # with a generator: the k best scores, each item once, in descending order
    ids, vals = top_n(scores, 5, np.random.default_rng(6))
    for row, got, got_vals in zip(scores, ids, vals):
        finite = np.sort(row[row > -np.inf])[::-1][:5]
        kept = got[got >= 0]
        assert len(set(kept.tolist())) == kept.size == finite.size
        assert np.array_equal(row[kept], finite) and np.array_equal(got_vals[:kept.size], finite)


def test_batch_size_bounds_the_cells_of_a_batch():
    from models.base import BATCH_CELLS, batch_size

    assert batch_size(3000, 2000) == 2000  # the district's catalogue: the callers' usual size
    assert batch_size(40_000, 2000) == BATCH_CELLS // 40_000 == 200
    assert batch_size(10**9, 1000) == 1 and batch_size(0, 500) == 500


def test_tie_keys_order_equal_scores_by_the_lower_key_at_the_cut_too():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 3, (40, 25)).astype(np.float32)  # many ties, also at the cut
    keys = rng.random((40, 25))
    ids, vals = top_n(scores, 6, tie_keys=keys)
    for r in range(40):
        want = np.lexsort((keys[r], -scores[r]))[:6]
        assert ids[r].tolist() == want.tolist()
        assert vals[r].tolist() == scores[r, want].tolist()

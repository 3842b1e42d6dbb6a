"""A resident's candidates do not depend on which other courses are left out around them.

Serving ranks a resident over the allowed courses only; training and the benchmark rank over
the whole catalogue with the same courses blocked. Both must give the same candidates and the
same signal rows, ties at a component's cut included, or the served model would differ from
the one that was measured.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from models.hybrid.candidates import top_columns
from tests.models.test_hybrid import fit_model, make_data


@pytest.mark.parametrize("k", [1, 7, 30, 59])
def test_top_columns_are_the_best_scores_then_the_lower_columns(k):
    rng = np.random.default_rng(k)
    scores = np.round(rng.normal(size=(2, 20, 60)), 1).astype(np.float32)  # many ties
    scores[..., 5] = -0.0
    scores[..., 6] = 0.0
    scores[:, :3, :10] = -np.inf
    scores[0, 3, :] = 0.0  # a whole row tied
    top = top_columns(scores, k)
    for row, chosen in zip(scores.reshape(-1, 60), top.reshape(-1, 60)):
        # by score, then by the lower column; -0.0 and 0.0 are equal scores
        want = np.lexsort((np.arange(row.size), -(row + np.float32(0.0))))[:k]
        assert np.array_equal(np.flatnonzero(chosen), np.sort(want))


@pytest.fixture(scope="module")
def fitted():
    with threadpool_limits(1):
        data = make_data()
        # Three candidates per component: category popularity alone ties a whole category
        # at that cut.
        yield data, fit_model(data, n_candidates=3)


def test_candidates_over_the_allowed_courses_equal_those_over_the_whole_catalogue(fitted):
    data, model = fitted
    X = data["X"]
    n_items = X.shape[1]
    rng = np.random.default_rng(1)
    ties_at_the_cut = 0
    for user in range(X.shape[0]):
        users, row = np.array([user]), X[[user]]
        ctx = model._context(users)
        seen = np.zeros(n_items, dtype=bool)
        seen[row.indices] = True
        for allowed in (rng.random(n_items) < 0.6, np.ones(n_items, dtype=bool)):
            # the same courses blocked: the first leaves out columns, the second cannot
            narrow = model._pair_rows(users, row, ctx, allowed & ~seen)
            whole = model._pair_rows(users, row, ctx, allowed)
            for a, b in zip(narrow, whole):
                np.testing.assert_array_equal(a, b)
        scores = model._pair_rows(users, row, ctx, ~seen)[2][:, 3]  # cat_band
        ties_at_the_cut += np.unique(scores).size < scores.size
    assert ties_at_the_cut > 0  # the comparison met equal scores

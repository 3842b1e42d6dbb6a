"""The components' ranks in the signal rows are the number of higher scores in the row, for
one resident and for a training batch alike, ties, signed zeros, -inf and NaN included."""

from __future__ import annotations

import numpy as np
import pytest

from models.hybrid import candidates, signals

SPECIAL = np.array([-np.inf, -1.5, -0.0, 0.0, 1e-45, 0.25, 3.0, np.inf, np.nan], np.float32)


@pytest.mark.parametrize("n_users", [1, 7])  # one resident; a batch
@pytest.mark.parametrize("sorted_given", [False, True])  # as the candidates' cut sorted them
def test_ranks_count_the_higher_scores_of_the_row(n_users, sorted_given):
    rng = np.random.default_rng(n_users)
    n_items = 40
    # Ties, signed zeros, -inf (blocked) and the odd NaN, as the components can give.
    pool = np.concatenate([SPECIAL[:-1], rng.normal(size=6).astype(np.float32)])
    masked = rng.choice(pool, (len(candidates.COMPONENTS), n_users, n_items))
    masked[0, 0, 3] = np.nan
    rows = np.sort(rng.integers(0, n_users, 90))
    items = rng.integers(0, n_items, 90)
    values = masked[:, rows, items]
    ordered = np.sort(masked, axis=2) if sorted_given else None
    ranks = signals._ranks(masked, rows, values, ordered)
    plain = (masked[:, rows, :] > values[:, :, None]).sum(axis=2)
    # np.sort puts NaN last, so it counts as higher than any number, and nothing is above it
    plain += np.isnan(masked[:, rows, :]).sum(axis=2) * ~np.isnan(values)
    assert ranks.dtype == np.float32
    np.testing.assert_array_equal(ranks, plain)

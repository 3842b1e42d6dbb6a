"""``weighting``: how EASE, item-kNN and ALS read the matrix's values, the same way when they
learn and when they score."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import ALS, EASE, ItemKNN
from models.base import Recommender
from models.weighting import value_scale, weighed
from tests.models.mixin import checkerboard

MODELS = {
    "ease": lambda w: EASE(l2=5.0, weighting=w),
    "knn": lambda w: ItemKNN(k=10, weighting=w),
    "als": lambda w: ALS(factors=3, regularization=0.5, iterations=8, random_state=0,
                         num_threads=1, weighting=w),
}


def _heavy(seed: int = 0) -> sp.csr_matrix:
    """The checkerboard with log-normal weights: a few cells hundreds of times the median."""
    X = checkerboard(seed).user_items.copy()
    X.data = np.random.default_rng(seed).lognormal(0.0, 2.0, X.nnz).astype(np.float32)
    return X


def test_the_three_readings_of_a_matrix():
    X = sp.csr_matrix(np.array([[2.0, 0.0, 8.0], [4.0, 4.0, 0.0]], dtype=np.float32))
    assert value_scale(X) == 4.0
    assert weighed(X, "raw", 4.0) is X
    binary = weighed(X, "binary", 4.0)
    assert binary.toarray().tolist() == [[1, 0, 1], [1, 1, 0]]
    log = weighed(X, "log", 4.0)
    np.testing.assert_allclose(log.toarray(), [[np.log2(1.5), 0, np.log2(3)], [1, 1, 0]])
    assert X.toarray()[0, 2] == 8.0  # the input is left as it was


def test_a_stored_zero_stays_zero_and_in_place():
    X = sp.csr_matrix((np.array([0.0, 3.0], dtype=np.float32), ([0, 0], [0, 1])), shape=(1, 2))
    for weighting in ("binary", "log"):
        out = weighed(X, weighting, value_scale(X))
        assert out.nnz == 2 and out.toarray()[0, 0] == 0.0 and out.toarray()[0, 1] > 0


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("weighting", ["binary", "log"])
def test_a_weighting_is_the_raw_model_of_the_reweighed_matrix(name, weighting):
    X = _heavy()
    model = MODELS[name](weighting).fit(X)
    reference = MODELS[name]("raw").fit(weighed(X, weighting, value_scale(X)))
    users = np.arange(X.shape[0])
    # Scoring reads the rows given the same way, with the scale of the fit matrix: a row of
    # other values (a refreshed history) is not rescaled by its own median.
    rows = X.copy()
    rows.data = rows.data * 3.0
    np.testing.assert_allclose(model.score(users, rows),
                               reference.score(users, weighed(rows, weighting,
                                                              value_scale(X))),
                               rtol=1e-4, atol=1e-5)
    assert not np.allclose(model.score(users, X), MODELS[name]("raw").fit(X).score(users, X),
                           atol=1e-3)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_on_a_matrix_of_ones_every_weighting_is_the_same_model(name):
    X = checkerboard().user_items.copy()
    X.data[:] = 1.0
    users = np.arange(X.shape[0])
    raw = MODELS[name]("raw").fit(X).score(users, X)
    for weighting in ("binary", "log"):
        np.testing.assert_allclose(MODELS[name](weighting).fit(X).score(users, X), raw,
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_scale_is_saved_and_a_file_without_it_reads_raw(name, tmp_path):
    X = _heavy(1)
    model = MODELS[name]("log").fit(X)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.weighting == "log" and loaded.value_scale_ == pytest.approx(value_scale(X))
    users = np.arange(X.shape[0])
    np.testing.assert_allclose(loaded.score(users, X), model.score(users, X), rtol=1e-5)
    # A model saved before the parameter existed: raw values, no scale.
    raw = MODELS[name]("raw").fit(X)
    raw.value_scale_ = None
    raw.save(tmp_path / "old")
    old = Recommender.load(tmp_path / "old")
    assert old.value_scale_ is None
    np.testing.assert_allclose(old.score(users, X), raw.score(users, X), rtol=1e-5)


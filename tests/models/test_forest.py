"""The table-driven forest predicts exactly what sklearn predicts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from models.base import float32_keys
from models.forest import FlatForest


@pytest.mark.parametrize("leaves", [15, 31, 60])  # uint16, uint32 and uint64 leaf masks
def test_flat_forest_matches_sklearn_probabilities(leaves):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values follow each split's learned side
    signal = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) ** 2
    y = signal + rng.normal(0, 0.5, 3000) > 0.7
    ranker = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=leaves, random_state=0)
    ranker.fit(X, y)
    forest = FlatForest.from_sklearn(ranker)
    assert forest is not None
    test = rng.normal(size=(500, 6))
    test[rng.random(test.shape) < 0.05] = np.nan
    np.testing.assert_allclose(forest.predict_proba(test), ranker.predict_proba(test)[:, 1],
                               rtol=1e-9, atol=1e-12)



def test_members_share_one_table_and_give_the_mean_of_their_probabilities():
    """An averaged re-ranker's members (fitted on different rows) are walked as one forest."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    y = X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(0, 0.5, 3000) > 0.7
    members = [HistGradientBoostingClassifier(max_iter=25, max_leaf_nodes=15, random_state=0)
               .fit(X[part], y[part]) for part in np.array_split(rng.permutation(3000), 3)]
    forest = FlatForest.from_sklearn(*members)
    assert forest is not None
    test = rng.normal(size=(400, 5)).astype(np.float32)
    each = np.array([m.predict_proba(test)[:, 1] for m in members])
    assert not np.allclose(each[0], each[1])
    np.testing.assert_allclose(forest.predict_proba(test), each.mean(axis=0), rtol=1e-9,
                               atol=1e-12)
    # members of different sizes cannot share the per-member sums: sklearn's own predictor
    shorter = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    assert FlatForest.from_sklearn(members[0], shorter) is None

def test_layouts_it_cannot_table_fall_back_to_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 4))
    y = rng.random(4000) < 0.5  # noise: trees grow to their leaf limit
    wide = HistGradientBoostingClassifier(max_iter=3, max_leaf_nodes=100, min_samples_leaf=5,
                                          random_state=0).fit(X, y)
    assert max(int(p[0].nodes["is_leaf"].sum()) for p in wide._predictors) > 64
    assert FlatForest.from_sklearn(wide) is None
    Xc = np.column_stack([rng.integers(0, 5, 4000), X[:, 0]])
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0],
                                                 random_state=0).fit(Xc, Xc[:, 0] >= 3)
    assert FlatForest.from_sklearn(categorical) is None


def test_float32_rows_take_the_same_leaves_as_float64_rows():
    """Signal rows are float32: they are placed among the float64 thresholds through float32
    keys, which must give exactly what comparing them as float64 gives, at the thresholds,
    next to them, at signed zeros, infinities and NaN."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    X[:, 4] = rng.integers(0, 4, 3000)  # few distinct values: thresholds between them
    y = X[:, 0] + 0.5 * X[:, 1] ** 2 + X[:, 4] + rng.normal(0, 0.5, 3000) > 1.0
    ranker = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    forest = FlatForest.from_sklearn(ranker)
    thresholds = np.concatenate(forest.thresholds)
    at = thresholds.astype(np.float32)
    edges = np.concatenate([at, np.nextafter(at, np.float32(np.inf)),
                            np.nextafter(at, np.float32(-np.inf)),
                            [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(np.float32)
    test = rng.choice(edges, (4000, 5))
    proba = forest.predict_proba(test)
    np.testing.assert_array_equal(proba, forest.predict_proba(test.astype(np.float64)))
    np.testing.assert_allclose(proba, ranker.predict_proba(test)[:, 1], rtol=1e-9, atol=1e-12)


def testfloat32_keys_order_as_the_floats_compare():
    rng = np.random.default_rng(0)
    special = np.array([-np.inf, -1.5, -0.0, 0.0, 1e-45, -1e-45, 0.25, 3.0, np.inf], np.float32)
    x = np.concatenate([special, rng.normal(0, 1e3, 500).astype(np.float32),
                        rng.choice(special, 200)])
    keys = float32_keys(x)
    a, b = np.meshgrid(np.arange(x.size), np.arange(x.size))
    np.testing.assert_array_equal(keys[a] < keys[b], x[a] < x[b])
    np.testing.assert_array_equal(keys[a] == keys[b], x[a] == x[b])  # -0.0 == 0.0
    assert keys.min() >= np.iinfo(np.int32).min and keys.max() <= np.iinfo(np.int32).max

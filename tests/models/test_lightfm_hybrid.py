"""LightFM, the benchmark's comparison baseline: the shared contract plus its cold start.

LightFM is optional (built from source): outside CI these tests skip, with the reason in the
summary, when it is not installed; in CI (``CI=true``) its absence fails the module, since the
test command's install step builds it there.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from models.lightfm_hybrid import INSTALL_HINT, LightFMHybrid, feature_rows, missing
from tests.models.mixin import ITEMS_PER_GROUP, RecommenderContract, checkerboard

if os.environ.get("CI") != "true":
    pytest.importorskip("lightfm", reason=f"LightFM is not installed: {INSTALL_HINT}")


def _group_features(data) -> dict:
    """Each user's band and each item's content: their group, as the benchmark passes them."""
    items = sp.csr_matrix(np.eye(2, dtype=np.float32)[data.item_group])
    return {"user_band": data.user_group.astype(np.int64), "item_features": items}


class TestLightFM(RecommenderContract):
    bad_params = {"factors": 0, "loss": "hinge", "epochs": 0, "learning_rate": 0.0,
                  "alpha": -1.0, "side_features": "yes", "random_state": "seed",
                  "num_threads": 0}
    # No fold-in: a user unseen at fit time is ranked by the items' biases.
    scores_from_row = False

    def make_model(self):
        # BPR: on a checkerboard this small, plain WARP ranks a few users' own items below
        # the other group's (it learns from hard negatives, which are few here).
        return LightFMHybrid(factors=8, epochs=40, loss="bpr", random_state=0)


class TestLightFMWithSideFeatures(TestLightFM):
    def make_model(self):
        return LightFMHybrid(factors=8, epochs=40, random_state=0)

    def fit_side(self, data):
        return _group_features(data)


def test_a_new_item_is_placed_by_its_features():
    data = checkerboard()
    # One more item, of group 0 by its content, that nobody has taken.
    X = sp.hstack([data.user_items, sp.csr_matrix((data.n_users, 1))], format="csr")
    item_group = np.append(data.item_group, 0)
    side = {"user_band": data.user_group.astype(np.int64),
            "item_features": sp.csr_matrix(np.eye(2, dtype=np.float32)[item_group])}
    model = LightFMHybrid(factors=8, epochs=40, random_state=0).fit(X, **side)
    users = np.flatnonzero(data.user_group == 0)
    scores = model.score(users, X[users])
    new = X.shape[1] - 1
    other_group = np.flatnonzero(item_group == 1)
    assert (scores[:, new][:, None] > scores[:, other_group]).all()
    # Without side features the new item is only an unlearned identity: it is not scored.
    plain = LightFMHybrid(factors=8, epochs=40, random_state=0, side_features=False).fit(X)
    assert np.all(plain.score(users, X[users])[:, new] == 0.0)


def test_a_newcomer_is_ranked_by_their_band():
    data = checkerboard()
    # One more user of band 1 with no interactions at fit time.
    X = sp.vstack([data.user_items, sp.csr_matrix((1, data.n_items))], format="csr")
    band = np.append(data.user_group, 1).astype(np.int64)
    items = sp.csr_matrix(np.eye(2, dtype=np.float32)[data.item_group])
    model = LightFMHybrid(factors=8, epochs=40, random_state=0).fit(
        X, user_band=band, item_features=items)
    newcomer = X.shape[0] - 1
    ids, _ = model.recommend(np.array([newcomer]), X[[newcomer]], n=ITEMS_PER_GROUP)
    assert set(ids[0].tolist()) == set(np.flatnonzero(data.item_group == 1).tolist())


def test_side_features_must_have_a_row_per_user_and_item():
    data = checkerboard()
    with pytest.raises(ValueError, match="user_band has 3 rows, expected 40"):
        LightFMHybrid(epochs=1).fit(data.user_items, user_band=np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="item_features has 2 rows, expected 12"):
        LightFMHybrid(epochs=1).fit(data.user_items, item_features=sp.eye(2, format="csr"))


def test_feature_rows_sum_to_one_and_skip_the_identity_of_the_inactive():
    rows = feature_rows(np.array([True, False, True]),
                        [sp.csr_matrix(np.array([[1, 1], [0, 2], [0, 0]], dtype=np.float32))])
    dense = rows.toarray()
    np.testing.assert_allclose(dense.sum(axis=1), 1.0)
    assert dense[1, 1] == 0.0  # no identity for the entity without interactions
    np.testing.assert_allclose(dense[0], [1 / 3, 0, 0, 1 / 3, 1 / 3])


def test_missing_names_the_install_command(monkeypatch):
    assert missing() is None
    monkeypatch.setitem(sys.modules, "lightfm", None)  # as if not installed
    reason = missing()
    assert reason is not None and "pip install -e '.[compare]'" in reason

import numpy as np
import pandas as pd
import pytest

from features.event_log import encode_events
from features.frames import DataBundle
from features.ids import IdMapping
from features.interactions import InteractionMatrix

from .conftest import CUTOFF, district_bundle


def _bundle(rows, **cols):
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event"])
    inter["timestamp"] = pd.to_datetime(inter["timestamp"])
    for k, v in cols.items():
        inter[k] = v
    return DataBundle(inter, pd.DataFrame({"user_id": []}), pd.DataFrame({"item_id": []}))


def test_exact_weights_with_negative_evidence_and_clipping(district):
    m = InteractionMatrix(cutoff=CUTOFF).fit_transform(district)
    # u1/k1: view .5 + enroll 2 + 2 attends - no_show 1 + rating 5 -> 2; u2/k1: view .5;
    # u2/k2: enroll 2 - cancel 2 = 0 (removed); u4/k2: enroll 2 - no_show 1; u4/k1: rating 1
    # -> -2, clipped to 0 (removed).
    expected = np.zeros((5, 3), dtype=np.float32)
    expected[0, 0], expected[1, 0], expected[3, 1] = 5.5, 0.5, 1.0
    assert m.dtype == np.float32 and m.format == "csr"
    np.testing.assert_array_equal(m.toarray(), expected)
    assert m.nnz == 3  # no explicit zeros left
    assert (m.data > 0).all()


def test_half_life_and_weight_column():
    b = _bundle([("a", "x", "2024-01-01", "enroll"), ("a", "x", "2024-01-11", "complete"),
                 ("b", "x", "2024-01-11", "interact")], weight=[1.0, 1.0, 3.0])
    m = InteractionMatrix(half_life_days=10).fit_transform(b)
    # The enrolment is one half-life before the cut-off (the latest timestamp).
    np.testing.assert_allclose(m.toarray(), [[2 * 0.5 + 4.0], [3.0]], rtol=1e-6)


def test_cutoff_excludes_later_events_and_defaults_to_latest_timestamp():
    b = _bundle([("a", "x", "2024-01-01", "enroll"), ("a", "x", "2024-02-01", "cancel")])
    assert InteractionMatrix().fit(b).cutoff_ == pd.Timestamp("2024-02-01")
    early = InteractionMatrix(cutoff="2024-01-15").fit_transform(b)
    np.testing.assert_array_equal(early.toarray(), [[2.0]])
    assert InteractionMatrix().fit_transform(b).nnz == 0


def test_custom_and_unknown_event_weights():
    b = _bundle([("a", "x", "2024-01-01", "view"), ("a", "y", "2024-01-01", "bookmark")])
    t = InteractionMatrix(event_weights={"view": 3.0}, unknown_event_weight=0.25).fit(b)
    assert t.unknown_events_ == ["bookmark"]
    assert t.event_weights_["view"] == 3.0 and t.event_weights_["enroll"] == 2.0
    np.testing.assert_array_equal(t.transform(b).toarray(), [[3.0, 0.25]])


def test_an_unlisted_event_counts_as_the_generic_interaction():
    b = _bundle([("a", "x", "2024-01-01", "bookmark"), ("a", "y", "2024-01-01", "interact")])
    t = InteractionMatrix(event_weights={"interact": 1.5}).fit(b)
    assert t.unknown_events_ == ["bookmark"] and t.unknown_event_weight_ == 1.5
    np.testing.assert_array_equal(t.transform(b).toarray(), [[1.5, 1.5]])


def test_rating_without_value_adds_nothing():
    b = _bundle([("a", "x", "2024-01-01", "rate"), ("a", "x", "2024-01-01", "view")],
                value=[np.nan, np.nan])
    np.testing.assert_array_equal(InteractionMatrix().fit_transform(b).toarray(), [[0.5]])


@pytest.mark.parametrize("param,value", [("half_life_days", 0), ("half_life_days", "7"),
                                         ("event_weights", {"view": float("nan")}),
                                         ("rating_center", None)])
def test_bad_parameters_are_named(district, param, value):
    with pytest.raises(ValueError, match=param):
        InteractionMatrix(**{param: value}).fit(district)


def test_pre_encoded_events_must_match(district):
    t = InteractionMatrix(cutoff=CUTOFF).fit(district)
    ok = encode_events(district.interactions, t.id_mapping_, CUTOFF)
    np.testing.assert_array_equal(t.transform(district, ok).toarray(),
                                  t.transform(district).toarray())
    other = encode_events(district.interactions, t.id_mapping_, "2024-05-01")
    with pytest.raises(ValueError, match="cutoff"):
        t.transform(district, other)


def test_given_mapping_keeps_later_items_as_empty_columns():
    full = district_bundle(extra_events=True)
    mapping = IdMapping().fit(full)
    m = InteractionMatrix(cutoff=CUTOFF, id_mapping=mapping).fit_transform(full)
    assert m.shape == (6, 4)
    assert m[:, 3].nnz == 0 and m[5].nnz == 0

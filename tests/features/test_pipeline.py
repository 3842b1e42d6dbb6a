import logging

import numpy as np
import pandas as pd

from features.ids import IdMapping
from features.pipeline import FeaturePipeline

from .conftest import CUTOFF, district_bundle


def _assert_same(a, b):
    assert a.id_mapping.user_ids_.tolist() == b.id_mapping.user_ids_.tolist()
    assert a.id_mapping.item_ids_.tolist() == b.id_mapping.item_ids_.tolist()
    for name in ("interactions", "seen", "user_matrix", "content"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        assert (x != y).nnz == 0, name
    pd.testing.assert_frame_equal(a.users, b.users)
    pd.testing.assert_frame_equal(a.items, b.items)


def test_no_leakage_from_events_after_the_cutoff():
    before = FeaturePipeline(cutoff=CUTOFF).fit_transform(district_bundle())
    after = FeaturePipeline(cutoff=CUTOFF).fit_transform(district_bundle(extra_events=True))
    _assert_same(before, after)
    # The later events really exist and would change the features without the cut-off.
    later = FeaturePipeline().fit_transform(district_bundle(extra_events=True))
    assert later.interactions.shape != before.interactions.shape


def test_no_leakage_with_a_shared_full_mapping():
    full = district_bundle(extra_events=True)
    mapping = IdMapping().fit(full)
    a = FeaturePipeline(cutoff=CUTOFF, id_mapping=mapping).fit_transform(full)
    b = FeaturePipeline(cutoff=CUTOFF, id_mapping=mapping).fit_transform(district_bundle())
    _assert_same(a, b)
    assert a.interactions.shape == (6, 4)


def test_full_district_skips_nothing_and_shapes_agree(district):
    p = FeaturePipeline(cutoff=CUTOFF)
    fs = p.fit_transform(district)
    assert p.skipped_ == [] and fs.skipped == []
    assert fs.interactions.shape == fs.seen.shape == (5, 3)
    assert fs.users.shape[0] == fs.user_matrix.shape[0] == 5
    assert fs.items.shape[0] == fs.content.shape[0] == 3
    assert set(p.timings_) >= {"encode_events", "interaction_matrix", "content_matrix"}
    # transform on the same bundle reproduces fit_transform.
    _assert_same(fs, p.transform(district))


def test_generic_dataset_reports_what_it_skipped(generic, caplog):
    with caplog.at_level(logging.INFO, logger="features.pipeline"):
        p = FeaturePipeline().fit(generic)
    for col in ("interactions.event", "users.birth_year", "users.age_band", "items.description",
                "items.category"):
        assert col in p.skipped_
    assert "skipped: " in caplog.text and "users.birth_year" in caplog.text
    fs = p.transform(generic)
    np.testing.assert_array_equal(fs.interactions.toarray(), [[1, 1, 0], [1, 0, 0], [0, 0, 1]])


def test_new_resident_after_fit_gets_a_cold_row(district):
    p = FeaturePipeline(cutoff=CUTOFF).fit(district)
    p.id_mapping_.add_users(["u-new"])
    users = pd.concat([district.users, pd.DataFrame({"user_id": ["u-new"],
                                                     "birth_year": [2020]})])
    fs = p.transform(district.__class__(district.interactions, users, district.items))
    row = fs.users.loc[5]
    assert row["user_id"] == "u-new" and row["age_band"] == "preschool"
    assert row["n_events"] == 0 and fs.interactions.shape == (6, 3)

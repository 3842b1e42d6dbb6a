import logging

import numpy as np
import pandas as pd
import pytest

from features.bands import BAND_NAMES, AgeBands
from features.frames import DataBundle
from features.pipeline import FeaturePipeline, ModelInputs

from .conftest import CUTOFF, district_bundle

_ARRAYS = ("user_band", "user_community", "user_attributes", "item_category", "item_bands",
           "item_community", "item_temporal")


def _assert_same(a: ModelInputs, b: ModelInputs) -> None:
    assert a.cutoff == b.cutoff
    for name in ("X", "item_features"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape and x.dtype == y.dtype, name
        assert (x != y).nnz == 0, name
    for name in _ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _users_only(users: pd.DataFrame) -> DataBundle:
    inter = pd.DataFrame({"user_id": ["a"], "item_id": ["x"],
                          "timestamp": pd.to_datetime(["2020-01-01"])})
    return DataBundle(inter, users, pd.DataFrame({"item_id": ["x"]}))


def test_district_inputs_are_exact(district):
    p = FeaturePipeline().fit(district)
    f = p.transform(district, cutoff=CUTOFF)
    assert f.cutoff == CUTOFF and f.X.shape == (5, 3)
    # The interaction matrix's own weights (see test_interactions): u1/k1, u2/k1, u4/k2.
    assert f.X[0, 0] == 5.5 and f.X[1, 0] == 0.5 and f.X[3, 1] == 1.0 and f.X.nnz == 3
    # Born 1964, 1990, 2019, 2012, 1950; ages at the cut-off year 2024.
    assert [BAND_NAMES[b] for b in f.user_band] == ["elderly", "working_age", "preschool",
                                                    "school_age", "elderly"]
    vocab = p.vocabulary_
    assert vocab.communities.tolist() == ["c1", "c2"]
    assert f.user_community.tolist() == [0, 0, 0, 1, 1]
    assert vocab.categories.tolist() == ["handicraft", "interest", "skills"]
    assert f.item_category.tolist() == [1, 2, 0]
    assert f.item_community.tolist() == [0, 1, 0]
    elderly, working, preschool = (BAND_NAMES.index(b) for b in ("elderly", "working_age",
                                                                  "preschool"))
    assert np.flatnonzero(f.item_bands[1]).tolist() == sorted([working, elderly])
    assert np.flatnonzero(f.item_bands[2]).tolist() == [preschool]
    assert f.item_features.shape == (3, len(p.courses_.content_feature_names_))
    # k1's last event is at the cut-off, k2's on 2024-04-03 19:30, k3 has none (-1 days).
    assert f.item_temporal[0, 2] == 0.0 and f.item_temporal[2].tolist() == [0.0, -1.0, -1.0]
    assert f.item_temporal[1, 2] == pytest.approx((CUTOFF - pd.Timestamp("2024-04-03 19:30"))
                                                  / pd.Timedelta(days=1))
    assert set(f.side()) == set(_ARRAYS) | {"item_features", "item_metadata"}


def test_no_leakage_from_events_after_the_cutoff():
    full = district_bundle(extra_events=True)
    p = FeaturePipeline().fit(full)
    later = p.transform(full, cutoff=CUTOFF)
    _assert_same(later, p.transform(district_bundle(), cutoff=CUTOFF))
    # The mapping knows the later resident and course: empty rows and columns.
    assert later.X.shape == (6, 4) and later.X[:, 3].nnz == 0 and later.X[5].nnz == 0
    # The later events really exist and change the inputs without the cut-off.
    assert (p.transform(full).X != later.X).nnz > 0


def test_transform_at_the_latest_timestamp_by_default(district):
    p = FeaturePipeline()
    f = p.fit_transform(district)
    assert f.cutoff == district.interactions["timestamp"].max()
    assert set(p.timings_) >= {"ids", "encode_events", "interaction_matrix", "content_matrix",
                               "item_temporal"}


@pytest.mark.parametrize("cutoff,expected", [
    ("2023-12-31 23:59", ["working_age", "preschool", "school_age", None]),
    ("2024-01-01 00:00", ["elderly", "school_age", "school_age", None]),
])
def test_band_boundaries_at_the_cutoff(cutoff, expected):
    # Born 1964: 60 from 1 Jan 2024. Born 2018: 6 from 1 Jan 2024. Born 2030: not yet born.
    users = pd.DataFrame({"user_id": ["a", "b", "c", "d"],
                          "birth_year": [1964, 2018, 2012, 2030]})
    f = FeaturePipeline().fit_transform(_users_only(users), cutoff=cutoff)
    assert [BAND_NAMES[b] if b >= 0 else None for b in f.user_band] == expected


def test_custom_bands_and_declared_band_fallback():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "age_band": ["elderly", None, "bogus"]})
    f = FeaturePipeline().fit_transform(_users_only(users), cutoff="2024-01-01")
    assert f.user_band.tolist() == [BAND_NAMES.index("elderly"), -1, -1]
    aged = pd.DataFrame({"user_id": ["a"], "birth_year": [1969]})
    f = FeaturePipeline(age_bands=AgeBands((0, 6, 18, 55))).fit_transform(
        _users_only(aged), cutoff="2024-06-01")
    assert f.user_band.tolist() == [BAND_NAMES.index("elderly")]


def test_profile_attributes_are_coded_per_user():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "gender": ["F", None, "M"],
                          "region": ["N", "S", "S"]})
    p = FeaturePipeline().fit(_users_only(users))
    assert list(p.vocabulary_.attributes) == ["gender", "region"]
    f = p.transform(_users_only(users))
    assert f.user_attributes.tolist() == [[0, 0], [-1, 1], [1, 1]]


def test_generic_dataset_reports_what_it_skipped(generic, caplog):
    with caplog.at_level(logging.INFO, logger="features.pipeline"):
        p = FeaturePipeline().fit(generic)
    for col in ("interactions.event", "users.birth_year", "users.age_band", "items.description",
                "items.category"):
        assert col in p.skipped_
    assert "skipped: " in caplog.text and "users.birth_year" in caplog.text
    f = p.transform(generic)
    np.testing.assert_array_equal(f.X.toarray(), [[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert (f.user_band == -1).all() and (f.item_category == -1).all()
    assert f.item_features.nnz == 0 and not f.item_bands.any()


def test_full_district_skips_nothing(district):
    assert FeaturePipeline().fit(district).skipped_ == []


def test_given_mapping_and_vocabulary_are_used_as_they_are(district):
    first = FeaturePipeline().fit(district_bundle(extra_events=True))
    mapping = first.id_mapping_
    p = FeaturePipeline(id_mapping=mapping, vocabulary=first.vocabulary_).fit(district)
    assert p.id_mapping_ is mapping and p.vocabulary_ is first.vocabulary_
    f = p.transform(district)
    # u9 and k9 appear only in the later events: known to the mapping, empty here.
    assert f.X.shape == (6, 4) and f.X[5].nnz == 0 and f.user_band[5] == -1


def test_bad_recent_fraction_is_named(district):
    with pytest.raises(ValueError, match="recent_fraction"):
        FeaturePipeline(recent_fraction=0).fit(district)


def test_pair_ages_on_request(district):
    assert FeaturePipeline().fit_transform(district, cutoff=CUTOFF).pair_age is None
    f = FeaturePipeline(pair_ages=True).fit_transform(district, cutoff=CUTOFF)
    ages = f.pair_age
    assert ages.shape == f.X.shape and ages.dtype == np.float32
    day = pd.Timedelta(days=1)
    # u1/k1's latest event is a rating at 12:00 on the cut-off day
    assert ages[0, 0] == pytest.approx((CUTOFF - pd.Timestamp("2024-06-30 12:00")) / day)
    # u2/k2 cancelled (no confidence left in X) but still has an age: it had events
    assert f.X[1, 1] == 0 and ages[1, 1] == pytest.approx(
        (CUTOFF - pd.Timestamp("2024-03-02 20:00")) / day)
    # an event at the cut-off itself is stored as one second, never as "no event"
    assert ages[3, 0] == pytest.approx(1 / 86400)
    pairs = set(zip(*ages.nonzero()))
    assert pairs == {(0, 0), (1, 0), (1, 1), (3, 0), (3, 1)}


def test_a_split_part_reuses_its_wholes_item_arrays(district):
    p = FeaturePipeline().fit(district)
    whole = p.transform(district)
    part = district.with_interactions(district.interactions.iloc[:-2])
    reused = p.transform(part, cutoff=CUTOFF, same_items=whole)
    _assert_same(reused, p.transform(part, cutoff=CUTOFF))
    assert reused.item_features is whole.item_features


def test_item_metadata_is_the_content_without_its_text_block(district):
    p = FeaturePipeline().fit(district)
    f = p.transform(district, cutoff=CUTOFF)
    names = p.courses_.content_feature_names_
    n_text = sum(name.startswith("text_") for name in names)
    assert n_text > 0 and f.text_columns == n_text == p.courses_.n_text_features
    metadata = f.item_metadata
    assert metadata.shape == (f.item_features.shape[0], len(names) - n_text)
    assert (metadata != f.item_features[:, n_text:]).nnz == 0
    # every course has a category, so every row keeps something
    assert (metadata.getnnz(axis=1) > 0).all()

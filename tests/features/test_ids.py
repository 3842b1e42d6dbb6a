import numpy as np
import pandas as pd
import pytest

from features.frames import DataBundle
from features.ids import IdMapping

from .conftest import CUTOFF, district_bundle


def test_fit_sorts_union_of_tables_and_interactions():
    m = IdMapping().fit(district_bundle(extra_events=True))
    assert m.user_ids_.tolist() == ["u1", "u2", "u3", "u4", "u5", "u9"]
    assert m.item_ids_.tolist() == ["k1", "k2", "k3", "k9"]
    assert m.user_ids_.dtype.kind == "U"


def test_until_ignores_ids_seen_only_later():
    m = IdMapping().fit(district_bundle(extra_events=True), until=CUTOFF)
    assert m.user_ids_.tolist() == ["u1", "u2", "u3", "u4", "u5"]
    assert m.item_ids_.tolist() == ["k1", "k2", "k3"]


def test_lookup_both_ways_and_unknown():
    m = IdMapping().fit(district_bundle())
    np.testing.assert_array_equal(m.user_index(["u3", "nope", "u1"]), [2, -1, 0])
    np.testing.assert_array_equal(m.item_index(pd.Series(["k2", "k9"])), [1, -1])
    np.testing.assert_array_equal(m.user_index("u5"), [4])
    assert m.user_ids([4, 0]).tolist() == ["u5", "u1"]
    assert m.item_ids(np.array([2])).tolist() == ["k3"]


def test_large_and_categorical_inputs_take_the_fast_paths_consistently():
    m = IdMapping().fit(district_bundle())
    rng = np.random.default_rng(0)
    ids = np.array(["u1", "u2", "u3", "u4", "u5", "zz"])[rng.integers(0, 6, 150_000)]
    expected = np.array([0, 1, 2, 3, 4, -1])[pd.Index(["u1", "u2", "u3", "u4", "u5", "zz"])
                                              .get_indexer(ids)]
    np.testing.assert_array_equal(m.user_index(pd.Series(ids)), expected)
    np.testing.assert_array_equal(m.user_index(pd.Series(ids, dtype="category")), expected)
    np.testing.assert_array_equal(m.user_index(ids.astype(object)), expected)


def test_round_trip_through_npz_without_pickle(tmp_path):
    b = district_bundle()
    users = pd.concat([b.users, pd.DataFrame({"user_id": ["居民-7"]})])
    m = IdMapping().fit(DataBundle(b.interactions, users, b.items))
    np.savez(tmp_path / "ids.npz", **m.to_arrays())
    with np.load(tmp_path / "ids.npz", allow_pickle=False) as f:
        back = IdMapping.from_arrays(f)
    assert back.user_ids_.tolist() == m.user_ids_.tolist()
    assert back.item_ids_.tolist() == m.item_ids_.tolist()
    np.testing.assert_array_equal(back.user_index(["居民-7"]), [5])


def test_from_arrays_rejects_duplicates_and_missing_keys():
    with pytest.raises(ValueError, match="user_ids holds duplicate"):
        IdMapping.from_arrays({"user_ids": np.array(["a", "a"]), "item_ids": np.array(["x"])})
    with pytest.raises(ValueError, match="item_ids"):
        IdMapping.from_arrays({"user_ids": np.array(["a"])})


def test_numeric_ids_become_strings():
    inter = pd.DataFrame({"user_id": [10, 2], "item_id": [5, 5],
                          "timestamp": pd.to_datetime(["2020-01-01"] * 2)})
    b = DataBundle(inter, pd.DataFrame({"user_id": []}), pd.DataFrame({"item_id": []}))
    m = IdMapping().fit(b)
    assert m.user_ids_.tolist() == ["10", "2"]
    np.testing.assert_array_equal(m.user_index(["2"]), [1])


def test_chunked_arrow_column_from_parquet(tmp_path):
    m = IdMapping().fit(district_bundle())
    ids = pd.DataFrame({"user_id": np.tile(["u5", "u1", "zz"], 40_000)})
    ids.to_parquet(tmp_path / "ids.parquet", row_group_size=10_000)
    col = pd.read_parquet(tmp_path / "ids.parquet")["user_id"].astype("str")
    np.testing.assert_array_equal(m.user_index(col), np.tile([4, 0, -1], 40_000))

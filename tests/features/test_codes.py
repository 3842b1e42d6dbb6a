"""Codes: one lookup for every vocabulary, which user columns become profile attributes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.bands import BAND_NAMES
from features.codes import (
    MAX_ATTRIBUTE_VALUES,
    Codebook,
    Vocabulary,
    band_codes,
    codes,
    distinct,
    profile_attributes,
)

VOCAB = ["arts", "dance", "智能手机"]
# One value of each kind: known, unknown, missing in every spelling, non-text, empty.
VALUES = ["dance", "nope", None, np.nan, pd.NA, "智能手机", "", "arts", 5]
EXPECTED = [1, -1, -1, -1, -1, 2, -1, 0, -1]


def test_codes_are_positions_with_minus_one_for_missing_or_unknown():
    np.testing.assert_array_equal(codes(VALUES, VOCAB), EXPECTED)
    assert codes("arts", VOCAB).tolist() == [0]
    assert codes([], VOCAB).dtype == np.int64 and codes(["a"], []).tolist() == [-1]
    assert codes([5, 7.0], ["5", "7.0"]).tolist() == [0, 1]  # compared by their text


@pytest.mark.parametrize("form", ["list", "object", "str", "category", "arrow-chunked"])
def test_small_and_large_inputs_give_the_same_codes(form):
    book = Codebook(VOCAB)
    reps = 300  # 2,700 values: above the dict lookup's limit
    values = VALUES[:5] + VALUES[5:8]  # the non-text 5 would make a mixed column
    expected = EXPECTED[:8]
    big = values * reps
    if form == "object":
        big = np.array(big, dtype=object)
    elif form == "str":
        big = pd.Series(big, dtype="str")
    elif form == "category":
        big = pd.Series(big, dtype="category")
    elif form == "arrow-chunked":
        chunk = pa.array([None if pd.isna(v) else v for v in values], type=pa.string())
        big = pd.Series(pd.arrays.ArrowExtensionArray(pa.chunked_array([chunk] * reps)))
    np.testing.assert_array_equal(book.codes(big), np.tile(expected, reps))
    np.testing.assert_array_equal(book.codes(values), expected)


def test_large_non_text_values_are_compared_by_their_text():
    book = Codebook(["1", "2", "3.5"])
    values = np.tile(np.array([1, 2, 3, np.nan, 3.5], dtype=object), 400)
    np.testing.assert_array_equal(book.codes(values), np.tile([0, 1, -1, -1, 2], 400))


def test_band_codes_follow_band_names():
    assert band_codes([*BAND_NAMES, "unknown", None]).tolist() == [0, 1, 2, 3, -1, -1]


def test_distinct_is_sorted_without_missing_or_empty():
    assert distinct(pd.Series(["b", None, "a", "", "b"])).tolist() == ["a", "b"]
    assert distinct(pd.Series(["b", "a"], dtype="category")[:1]).tolist() == ["b"]
    assert distinct(pd.Series([], dtype=object)).tolist() == []


def _users(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "user_id": [f"U{i}" for i in range(n)],
        "household_id": [f"H{i // 2}" for i in range(n)],
        "gender": rng.choice(["F", "M", None], n),
        "region": rng.choice(["North", "South", "East"], n),
        "birth_year": rng.integers(1940, 2020, n),
        "registered_at": pd.date_range("2025-01-01", periods=n, freq="D"),
        "nickname": [f"name-{i}" for i in range(n)],  # one value per user: not a profile
        "country": ["CN"] * n,  # one value for everyone: tells nothing
    })


def test_profile_attributes_are_the_few_valued_text_columns():
    found = profile_attributes(_users())
    assert list(found) == ["gender", "region"]
    assert found["gender"].tolist() == ["F", "M"]
    many = pd.DataFrame({"user_id": range(100),
                         "zone": [f"Z{i % (MAX_ATTRIBUTE_VALUES + 1)}" for i in range(100)]})
    assert profile_attributes(many) == {}


def test_attribute_codes_frame_and_one_profile_agree_and_survive_the_artifact():
    users = _users()
    vocab = Vocabulary(np.array(["a"]), np.array([], dtype=str), profile_attributes(users))
    assert vocab.category_codes(["a", "b", None]).tolist() == [0, -1, -1]
    codes = vocab.attribute_codes(users)
    assert codes.shape == (len(users), 2)
    assert (codes[users["gender"].isna().to_numpy(), 0] == -1).all()
    row = users.iloc[3].to_dict()
    np.testing.assert_array_equal(vocab.profile_codes(row), codes[3:4])
    assert vocab.profile_codes({"gender": "X", "region": None}).tolist() == [[-1, -1]]
    again = Vocabulary.from_arrays(vocab.to_arrays())
    assert list(again.attributes) == ["gender", "region"]
    np.testing.assert_array_equal(again.attribute_codes(users), codes)

"""Model inputs: which user columns become profile attributes, and their codes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.training.inputs import MAX_ATTRIBUTE_VALUES, Vocabulary, profile_attributes


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
    codes = vocab.attribute_codes(users)
    assert codes.shape == (len(users), 2)
    assert (codes[users["gender"].isna().to_numpy(), 0] == -1).all()
    row = users.iloc[3].to_dict()
    np.testing.assert_array_equal(vocab.profile_codes(row), codes[3:4])
    assert vocab.profile_codes({"gender": "X", "region": None}).tolist() == [[-1, -1]]
    again = Vocabulary.from_arrays(vocab.to_arrays())
    assert list(again.attributes) == ["gender", "region"]
    np.testing.assert_array_equal(again.attribute_codes(users), codes)

import numpy as np
import pandas as pd
import pytest

from features.bands import AgeBands
from features.frames import DataBundle
from features.residents import ResidentFeatures

from .conftest import CUTOFF


def _users_only(users: pd.DataFrame) -> DataBundle:
    inter = pd.DataFrame({"user_id": pd.Series([], dtype=str), "item_id": pd.Series([], dtype=str),
                          "timestamp": pd.to_datetime(pd.Series([], dtype=str))})
    return DataBundle(inter, users, pd.DataFrame({"item_id": []}))


@pytest.mark.parametrize("cutoff,expected", [
    ("2023-12-31 23:59", ["working_age", "preschool", "school_age", "unknown"]),
    ("2024-01-01 00:00", ["elderly", "school_age", "school_age", "unknown"]),
])
def test_band_boundaries_at_the_cutoff(cutoff, expected):
    # Born 1964: 60 from 1 Jan 2024. Born 2018: 6 from 1 Jan 2024. Born 2030: not yet born.
    users = pd.DataFrame({"user_id": ["a", "b", "c", "d"],
                          "birth_year": [1964, 2018, 2012, 2030]})
    f = ResidentFeatures(cutoff=cutoff).fit_transform(_users_only(users))
    assert f["age_band"].tolist() == expected
    assert f.loc[3, "age"] == -1


def test_custom_bands_and_declared_band_fallback():
    users = pd.DataFrame({"user_id": ["a", "b", "c"], "age_band": ["elderly", None, "bogus"]})
    f = ResidentFeatures(cutoff="2024-01-01").fit_transform(_users_only(users))
    assert f["age_band"].tolist() == ["elderly", "unknown", "unknown"]
    aged = pd.DataFrame({"user_id": ["a"], "birth_year": [1969]})
    f = ResidentFeatures(cutoff="2024-06-01", age_bands=AgeBands((0, 6, 18, 55)))
    assert f.fit_transform(_users_only(aged))["age_band"].tolist() == ["elderly"]


def test_district_values_are_exact(district):
    t = ResidentFeatures(cutoff=CUTOFF, half_life_days=None)
    f = t.fit_transform(district)
    assert f.index.name == "user_index" and f["user_id"].tolist() == ["u1", "u2", "u3", "u4", "u5"]
    assert f["age"].tolist() == [60, 34, 5, 12, 74]
    assert f["age_band"].tolist() == ["elderly", "working_age", "preschool", "school_age",
                                      "elderly"]
    assert f["community_id"].tolist() == ["c1", "c1", "c1", "c2", "c2"]
    # Household h1 = u1 (60), u2 (34), u3 (5); u4 has none; u5 lives alone in h2.
    assert f["household_size"].tolist() == [3, 3, 3, 1, 1]
    assert f["with_preschool"].tolist() == [1, 1, 0, 0, 0]
    assert f["with_school_age"].tolist() == [0, 0, 0, 0, 0]
    assert f["with_elderly"].tolist() == [0, 1, 1, 0, 0]
    assert f["n_events"].tolist() == [6, 3, 0, 3, 0]
    assert f["n_positive"].tolist() == [4, 1, 0, 1, 0]
    assert f["act_interest"].tolist() == [4.0, 0, 0, 0, 0]
    assert f["act_skills"].tolist() == [0, 1.0, 0, 1.0, 0]
    assert t.categories_ == ["handicraft", "interest", "skills"]
    assert t.attendance_rate_ == 0.5  # 2 attends, 2 no-shows in the whole log
    np.testing.assert_allclose(f["attendance_rate"], [2 / 3, 0.5, 0.5, 0.0, 0.5])
    np.testing.assert_allclose(f["no_show_rate"], [1 / 3, 0.5, 0.5, 1.0, 0.5])
    np.testing.assert_allclose(f["days_since_last"], [(11 * 60 + 59) / 1440, 60 + 959 / 1440,
                                                      1825, 0, 1825])
    # u1's course k1 runs Monday 09:00, u2/u4's k2 Wednesday 19:30 (schedule beats event time).
    assert f["pref_weekday"].tolist() == [0, 2, -1, 2, -1]
    assert f["pref_slot"].tolist() == ["morning", "evening", "unknown", "evening", "unknown"]
    assert f["wd_0"].tolist() == [1.0, 0, 0, 0, 0]
    np.testing.assert_allclose(f["tenure_days"], [181 + 1439 / 1440] * 4 + [10 + 1439 / 1440])


def test_activity_decays_by_half_life(district):
    f = ResidentFeatures(cutoff=CUTOFF, half_life_days=30).fit_transform(district)
    age = (CUTOFF - pd.Timestamp("2024-04-01 19:30")) / pd.Timedelta(days=1)
    assert f.loc[3, "act_skills"] == pytest.approx(0.5 ** (age / 30))


def test_residents_without_events_get_defaults_and_no_nan(district):
    f = ResidentFeatures(cutoff=CUTOFF).fit_transform(district)
    quiet = f.loc[[2, 4]]
    assert (quiet["has_history"] == 0).all() and (quiet["act_total"] == 0).all()
    assert (quiet["days_since_last"] == 1825).all()
    assert not f.isna().any().any()


def test_matrix_form_is_finite_and_named(district):
    t = ResidentFeatures(cutoff=CUTOFF).fit(district)
    f = t.transform(district)
    x = t.to_matrix(f)
    assert x.shape == (5, len(t.feature_names_)) and x.dtype == np.float32
    assert np.isfinite(x.toarray()).all()
    row = dict(zip(t.feature_names_, x.toarray()[0]))
    assert row["band_elderly"] == 1 and row["community_c1"] == 1 and row["street_s1"] == 1
    assert row["age"] == pytest.approx(0.6)
    assert row["n_attend"] == pytest.approx(np.log1p(2))


def test_skipped_columns_reported(generic):
    t = ResidentFeatures().fit(generic)
    assert "users.birth_year" in t.skipped_ and "items.category" in t.skipped_
    f = t.transform(generic)
    assert f["age_band"].tolist() == ["unknown"] * 3
    # Date-only timestamps say nothing about the time of day.
    assert f["pref_slot"].tolist() == ["unknown"] * 3
    assert f["pref_weekday"].tolist() == [2, 4, 5]


def test_bad_parameter_is_named(district):
    with pytest.raises(ValueError, match="recency_cap_days"):
        ResidentFeatures(recency_cap_days=-1).fit(district)

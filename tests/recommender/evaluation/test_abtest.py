"""The A/B report's arithmetic (intervals against published values, the sample-ratio check) and
its conversions on a real store."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from recommender.evaluation.abtest import (
    conversions,
    experiment_report,
    format_report,
    newcombe,
    sample_ratio,
    wilson,
)
from tests.recommender.data.test_store import _district, _load


def test_wilson_matches_published_intervals():
    # Newcombe (1998), Statistics in Medicine 17, table I: 81/263 -> 0.2553 to 0.3662,
    # 0/10 -> 0 to 0.2775
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_newcombe_matches_the_published_difference_interval():
    # Newcombe (1998), Statistics in Medicine 17, table II (method 10): 56/70 - 48/80 = 0.2,
    # 0.0524 to 0.3339
    diff, low, high = newcombe(48, 80, 56, 70)
    assert diff == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_sample_ratio_mismatch_is_flagged_only_when_the_split_is_off():
    fair = sample_ratio(8_050, 1_950, 0.2)
    assert not fair["mismatch"] and fair["p_value"] > 0.1
    off = sample_ratio(7_700, 2_300, 0.2)
    assert off["mismatch"] and off["p_value"] < 1e-10
    assert sample_ratio(0, 0, 0.2)["mismatch"] is False


def test_conversions_need_a_listed_course_within_the_window_by_the_right_people():
    at = pd.Timestamp("2025-03-01 09:00")
    imps = pd.DataFrame({
        "kind": ["resident", "resident", "resident", "household", "profile"],
        "resident_id": ["R1", "R2", "R3", None, None],
        "household_id": [None, None, None, "H1", None],
        "courses": ["K1|K2", "K1", "K2", "K5", "K1"],
        "served_at": [at] * 5})
    enrolments = pd.DataFrame({
        "resident_id": ["R1", "R2", "R3", "R9"],
        "course_id": ["K2", "K1", "K1", "K5"],
        "occurred_at": [at + pd.Timedelta(days=2), at + pd.Timedelta(days=9),
                        at + pd.Timedelta(hours=1), at + pd.Timedelta(days=1)]})
    got = conversions(imps, enrolments, {"H1": ["R8", "R9"]}, days=7)
    # R1 took a listed course in time; R2 too late; R3 an unlisted one; H1's member R9 did
    assert got.tolist() == [True, False, False, True, False]
    assert conversions(imps, enrolments, {}, days=10).tolist() == [True, True, False, False,
                                                                    False]


def test_report_on_a_store(store):
    _load(store, _district())  # R1 enrolled in K1 on 2025-03-01 09:00
    exp = store.start_experiment(version_a="v1", version_b="v2", share=0.5,
                                 started_by="test")["experiment_id"]
    at = dt.datetime(2025, 2, 27, 12, 0)
    base = {"household_id": None, "experiment_id": exp, "served_at": at, "band": "elderly"}
    store.add_impressions([
        {**base, "request_id": "a", "kind": "resident", "resident_id": "R1", "variant": "B",
         "model_version": "v2", "courses": "K2|K1"},
        {**base, "request_id": "b", "kind": "resident", "resident_id": "R3", "variant": "A",
         "model_version": "v1", "courses": "K1", "band": None},
        {**base, "request_id": "c", "kind": "household", "resident_id": None,
         "household_id": "H1", "variant": "A", "model_version": "v1", "courses": "K2"},
        {**base, "request_id": "d", "kind": "profile", "resident_id": None, "variant": "A",
         "model_version": "v1", "courses": "K1"}])
    report = experiment_report(store, days=7)
    assert report["variants"]["B"] | {"ci95": None} == {
        "impressions": 1, "conversions": 1, "rate": 1.0, "ci95": None}
    assert report["variants"]["A"]["impressions"] == 2
    assert report["variants"]["A"]["conversions"] == 0
    assert report["difference"]["b_minus_a"] == 1.0
    assert report["sample_ratio"]["units"] == {"A": 2, "B": 1}
    assert [b["band"] for b in report["by_band"]] == ["elderly", "unknown"]
    assert report["profile_impressions"] == 1
    assert experiment_report(store, days=1)["variants"]["B"]["conversions"] == 0
    text = format_report(report)
    assert "Wilson" in text and "B - A" in text and "no mismatch" in text
    with pytest.raises(LookupError, match="^experiment_id: no experiment 99"):
        experiment_report(store, 99)
    with pytest.raises(ValueError, match="^days: 0"):
        experiment_report(store, days=0)

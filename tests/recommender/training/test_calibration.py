"""Calibration through the real training recipe on a generated district: the probabilities
match the observed take-up rate of held-out validation pairs they were not fitted on, training
records the enrolment window and daily rates, and the demand check runs end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.frames import with_categorical_ids
from features.pipeline import FeaturePipeline
from models.hybrid.calibration import effective_exposure, fit_maps
from recommender.training.calibration import demand_check, wape
from recommender.training.inputs import (
    course_exposure,
    enrolment_lag_days,
    enrolment_lead_days,
    fit_hybrid,
    prepare_fit,
)

SMALL = {"max_iter": 20, "knn_neighbours": 30, "n_candidates": 30, "max_train_users": 2000}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from recommender.data.datasets import load_dataset
    from recommender.demo.generator import generate_district

    out = tmp_path_factory.mktemp("district")
    generate_district(out, residents=800, courses=90, seed=7, fmt="csv")
    return with_categorical_ids(load_dataset(out))


@pytest.fixture(scope="module")
def fitted(bundle):
    data = prepare_fit(bundle, FeaturePipeline().fit(bundle), "temporal", warm_only=False)
    model, _ = fit_hybrid(data, SMALL, seed=0)
    return data, model


def test_training_records_window_and_daily_rates(fitted):
    data, model = fitted
    cal = model.calibration
    assert cal is not None
    assert cal.horizon_days == 1.0  # probabilities per day of a course's exposure
    assert cal.lead_days == pytest.approx(enrolment_lead_days(data.split.train))
    assert cal.lag_days == pytest.approx(enrolment_lag_days(data.split.train))
    assert 0 <= cal.lead_days < 365 and 0 <= cal.lag_days < 365


def test_predicted_rate_matches_observed_on_unseen_pairs(fitted):
    """Fit the daily-rate maps (courses with history, new courses) on half of the held-out
    pairs, with the days counted as training counts them, and check them on the other half."""
    _, model = fitted
    pairs = model._calibration_pairs
    days = pairs["exposure"][pairs["items"]]
    keep = days > 0
    scores = model.held_out_scores(model.served_by)[keep]
    labels, new = pairs["labels"][keep], pairs["new"][pairs["items"][keep]]
    days = effective_exposure(days[keep], model.calibration.exposure_power)
    half = np.random.default_rng(0).random(scores.size) < 0.5
    predicted = np.zeros(int((~half).sum()))
    maps = fit_maps(scores[half], labels[half], days[half], new[half])
    for part, (x, y) in zip((~new, new), maps):
        predicted[part[~half]] = 1 - (1 - np.interp(scores[~half & part], x, y)) ** days[
            ~half & part]
    observed = labels[~half]
    assert predicted.mean() == pytest.approx(observed.mean(), rel=0.3)
    # and by thirds of the predicted probability (a reliability check), within sampling
    # noise: three standard errors of a third's take-up rate (~400 pairs here), at least 0.05
    order = np.argsort(predicted)
    for part in np.array_split(order, 3):
        rate = predicted[part].mean()
        noise = 3 * np.sqrt(rate * (1 - rate) / part.size)
        assert rate == pytest.approx(observed[part].mean(), abs=max(0.05, noise))


def test_course_exposure_rule():
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"],
                          "start_date": pd.to_datetime(["2026-01-10", "2026-03-01", None,
                                                        "2025-12-01"])})
    days = course_exposure(items, np.array(["a", "b", "c", "d"]), 20.0, 5.0,
                           "2026-01-01", "2026-01-31")
    # a: window Dec 21 - Jan 15 -> 14 days of January; b: opens Feb 9 -> 0; c: unknown start ->
    # the whole period; d: closed Dec 6 -> 0
    assert days.tolist() == pytest.approx([14.0, 0.0, 30.0, 0.0])


def test_demand_check_beats_the_naive_forecast(bundle):
    result = demand_check(bundle, params=SMALL)
    assert result["courses"] > 0 and result["actual"] > 0
    assert np.isfinite(result["wape_model"]) and np.isfinite(result["wape_naive"])
    assert result["wape_model"] < result["wape_naive"]


def test_wape():
    assert wape(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == pytest.approx(0.5)

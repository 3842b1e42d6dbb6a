"""Calibration through the real training recipe on a generated district: the probabilities
match the observed take-up rate of held-out validation pairs they were not fitted on, training
records the validation horizon and the enrolment lead, and the demand check runs end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.frames import with_categorical_ids
from features.pipeline import FeaturePipeline
from models.hybrid.calibration import fit_isotonic
from recommender.training.calibration import demand_check, wape
from recommender.training.inputs import (
    enrolment_lead_days,
    fit_hybrid,
    prepare_fit,
    taking_enrolments,
    validation_horizon_days,
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


def test_training_records_horizon_and_lead(fitted):
    data, model = fitted
    cal = model.calibration
    assert cal is not None
    assert cal.horizon_days == pytest.approx(validation_horizon_days(data))
    assert cal.horizon_days > 0
    assert cal.lead_days == pytest.approx(enrolment_lead_days(data.split.train))
    assert 0 <= cal.lead_days < 365


def test_predicted_rate_matches_observed_on_unseen_pairs(fitted):
    """Fit the isotonic map on half of the held-out pairs, check it on the other half."""
    _, model = fitted
    pairs = model._calibration_pairs
    col = (0 if model.served_by == "reranker"
           else 1 + list(model.components).index(model.served_by))
    keep = pairs["items_mask"][pairs["items"]]
    scores, labels = pairs["scores"][keep, col], pairs["labels"][keep]
    half = np.random.default_rng(0).random(scores.size) < 0.5
    x, y = fit_isotonic(scores[half], labels[half])
    predicted = np.interp(scores[~half], x, y)
    observed = labels[~half]
    assert predicted.mean() == pytest.approx(observed.mean(), rel=0.3)
    # and by thirds of the predicted probability (a reliability check)
    order = np.argsort(predicted)
    for part in np.array_split(order, 3):
        assert predicted[part].mean() == pytest.approx(observed[part].mean(), abs=0.05)


def test_taking_enrolments_rule():
    items = pd.DataFrame({"item_id": ["a", "b", "c"],
                          "start_date": pd.to_datetime(["2026-01-10", "2026-03-01", None])})
    mask = taking_enrolments(items, np.array(["a", "b", "c"]), 20.0, pd.Timestamp("2026-01-01"))
    assert mask.tolist() == [True, False, True]
    assert taking_enrolments(items, np.array(["a", "b"]), float("inf"), "2026-01-01").all()


def test_demand_check_beats_the_naive_forecast(bundle):
    result = demand_check(bundle, params=SMALL)
    assert result["courses"] > 0 and result["actual"] > 0
    assert np.isfinite(result["wape_model"]) and np.isfinite(result["wape_naive"])
    assert result["wape_model"] < result["wape_naive"]


def test_wape():
    assert wape(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == pytest.approx(0.5)

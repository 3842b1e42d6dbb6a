"""The hybrid's calibration: an isotonic map stored as arrays (no pickle), monotone, within
[0, 1], scaled to a horizon with a constant hazard; take-up probabilities respect what may be
offered; models saved before calibration load without it and refuse to give probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from models.hybrid import HybridRanker
from models.hybrid.calibration import (
    EXPOSURE_POWERS,
    effective_exposure,
    fit_exposure_power,
    fit_isotonic,
    floor_rate,
    scale_to_horizon,
)
from tests.models.test_hybrid import fit_model, make_data


@pytest.fixture(scope="module")
def data() -> dict:
    return make_data()


@pytest.fixture(scope="module")
def model(data) -> HybridRanker:
    return fit_model(data).set_validation_horizon(30.0)


def test_isotonic_is_monotone_and_bounded():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=2000)
    labels = rng.random(2000) < 1 / (1 + np.exp(-2 * scores))
    x, y = fit_isotonic(scores, labels)
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
    assert y.min() >= 0 and y.max() <= 1
    # out of the seen range: clipped to the end values
    assert np.interp([-100, 100], x, y).tolist() == [y[0], y[-1]]


def test_isotonic_needs_pairs_and_a_positive():
    assert fit_isotonic(np.arange(5.0), np.ones(5))[0].size == 0
    assert fit_isotonic(np.arange(50.0), np.zeros(50))[0].size == 0
    assert floor_rate(0, 0) == 0.0 and floor_rate(1, 4) == 0.25


def test_constant_hazard_scaling():
    p = np.array([0.0, 0.1, 0.5, 1.0])
    assert scale_to_horizon(p, 30, 30) == pytest.approx(p)
    assert scale_to_horizon(p, 60, 30) == pytest.approx(1 - (1 - p) ** 2)
    assert np.all(np.diff(scale_to_horizon(np.full(3, 0.2), 1, 30)) == 0)
    with pytest.raises(ValueError, match="horizon_days"):
        scale_to_horizon(p, 0, 30)


def test_fitted_model_is_calibrated(model):
    cal = model.calibration
    assert cal is not None and cal.horizon_days == 30.0
    assert np.all(np.diff(cal.x) >= 0) and np.all(np.diff(cal.y) >= 0)
    assert 0 <= cal.y.min() and cal.y.max() <= 1 and 0 <= cal.floor <= 1
    assert all(0 <= s <= 1 for s in cal.active_share)


def test_take_up_probabilities(model, data):
    users = np.arange(data["X"].shape[0])
    allowed = np.ones(data["X"].shape[1], dtype=bool)
    allowed[3] = False
    p = model.take_up(users, data["X"], 30.0, allowed=allowed)
    assert p.shape == data["X"].shape and p.min() >= 0 and p.max() <= 1
    assert np.all(p[:, 3] == 0)
    seen = data["X"].toarray() > 0
    assert np.all(p[seen] == 0)
    longer = model.take_up(users, data["X"], 90.0, allowed=allowed)
    assert np.all(longer >= p - 1e-7)


def test_a_blended_model_gives_take_up_probabilities_in_its_own_order(data):
    """Served by the trees blended with EASE: probabilities of the blend's scores, so a
    resident's most likely course is the top of the blend's list."""
    model = fit_model(data).set_validation_horizon(30.0).serve_with("reranker+ease")
    users = np.arange(data["X"].shape[0])
    p = model.take_up(users, data["X"], 30.0)
    assert p.min() >= 0 and p.max() <= 1 and p.max() > 0
    top = model.rank(users, data["X"], n=1)[0][:, 0]
    ranked = top >= 0
    np.testing.assert_allclose(p[users[ranked], top[ranked]], p[ranked].max(axis=1))


def test_calibration_is_saved_without_pickle(model, tmp_path):
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "model.npz", allow_pickle=False) as z:
        assert {"calibration_x_", "calibration_y_", "calibration_floor_",
                "calibration_horizon_days_", "calibration_active_share_"} <= set(z.files)
    loaded = HybridRanker.load(tmp_path / "m")
    assert np.array_equal(loaded.calibration.x, model.calibration.x)
    assert loaded.calibration.floor == model.calibration.floor


def test_model_saved_before_calibration_loads_without_it(model, data, tmp_path):
    model.save(tmp_path / "old")
    path = tmp_path / "old" / "model.npz"
    with np.load(path, allow_pickle=False) as z:
        kept = {k: z[k] for k in z.files if not k.startswith("calibration_")}
    np.savez(path, **kept)
    old = HybridRanker.load(tmp_path / "old")
    assert old.calibration is None
    with pytest.raises(ValueError, match="no calibration"):
        old.take_up(np.arange(3), data["X"][:3], 30.0)
    old.rank(np.arange(3), data["X"][:3], n=3)  # still ranks


def test_serve_with_recalibrates_for_the_served_source(data):
    model = fit_model(data).set_validation_horizon(30.0)
    trees = model.calibration.x.copy()
    model.serve_with("pop_band")
    assert model.calibration is not None
    assert not np.array_equal(model.calibration.x, trees) or model.calibration.x.size == 0
    model.serve_with("reranker+ease")  # the blend's own scores of the held-out pairs
    np.testing.assert_array_equal(
        model.held_out_scores("reranker+ease"),
        (0.5 / (1 + model._calibration_pairs["tree_rank"])
         + 0.5 * model.held_out_scores("ease")).astype(np.float32))
    assert model.calibration is not None and model.calibration.x.size > 0


def test_exposure_days_of_a_window():
    from models.hybrid.calibration import exposure_days

    start = np.array(["2026-01-10", "2026-03-01", "NaT", "2025-12-01"], dtype="datetime64[s]")
    days = exposure_days(start, 20.0, 5.0, np.datetime64("2026-01-01"),
                         np.datetime64("2026-01-31"))
    assert days.tolist() == pytest.approx([14.0, 0.0, 30.0, 0.0])
    assert exposure_days(start, np.inf, np.inf, np.datetime64("2026-01-01"),
                         np.datetime64("2026-01-31")).tolist() == [30.0] * 4


def test_daily_rates_weigh_pairs_by_their_exposure():
    # two blocks of scores: the low one taken up once in 100 pair-days, the high one 10 in 100
    scores = np.r_[np.zeros(50), np.ones(50)]
    labels = np.r_[np.eye(1, 50, 0).ravel(), np.tile([1, 0, 0, 0, 0], 10)]
    x, y = fit_isotonic(scores, labels, np.full(100, 2.0))
    assert np.interp([0.0, 1.0], x, y) == pytest.approx([1 / 100, 10 / 100])


def test_the_enrolment_lag_survives_save_and_load(data, tmp_path):
    """The lag after a course's start bounds when it takes residents; a loaded model must
    keep it (it was once left out of the saved arrays, so loaded models had no limit)."""
    from models.base import Recommender

    model = fit_model(data).set_validation_horizon(30.0)
    model.restrict_calibration(np.full(data["X"].shape[1], 30.0), lead_days=14.0, lag_days=21.0)
    back = Recommender.load(model.save(tmp_path / "m").parent)
    assert float(back.calibration_lag_days_) == 21.0
    assert back.calibration.lag_days == 21.0


def test_new_courses_take_their_own_map():
    """Courses with no history get the map fitted on the validation cut's new courses: the
    trees score them low for want of popularity, yet they are taken up as often."""
    from models.hybrid.calibration import Calibration

    cal = Calibration(np.array([0.0, 1.0]), np.array([0.0, 0.1]), 0.0, 1.0,
                      new_x=np.array([0.0, 1.0]), new_y=np.array([0.2, 0.4]))
    p = cal(np.array([0.5, 0.5]), new=np.array([False, True]))
    assert p.tolist() == pytest.approx([0.05, 0.3])
    assert cal(np.array([0.5])).tolist() == pytest.approx([0.05])  # unmarked: the common map
    plain = Calibration(np.array([0.0, 1.0]), np.array([0.0, 0.1]), 0.0, 1.0)
    assert plain(np.array([0.5]), new=np.array([True])).tolist() == pytest.approx([0.05])


def test_the_new_courses_map_survives_save_and_load(data, tmp_path):
    from models.base import Recommender

    model = fit_model(data).set_validation_horizon(30.0)
    model.calibration_new_x_, model.calibration_new_y_ = np.array([0.0, 1.0]), np.array([.2, .4])
    back = Recommender.load(model.save(tmp_path / "m").parent)
    assert back.calibration.new_x.tolist() == [0.0, 1.0]
    assert back.calibration.new_y.tolist() == pytest.approx([0.2, 0.4])


def test_effective_exposure_keeps_no_exposure_at_none():
    days = np.array([0.0, 1.0, 4.0, 16.0])
    np.testing.assert_allclose(effective_exposure(days, 1.0), days)
    np.testing.assert_allclose(effective_exposure(days, 0.5), [0.0, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(effective_exposure(days, 0.0), [0.0, 1.0, 1.0, 1.0])


def _pairs_taken(rng: np.random.Generator, chance_per_day) -> tuple:
    """Pairs of scores in [0, 1] and exposures of 1-30 days, taken up with a daily chance
    ``chance_per_day(score, days)`` over their days."""
    n = 20_000
    scores = rng.random(n)
    days = rng.integers(1, 31, n).astype(float)
    p = 1 - (1 - chance_per_day(scores, days)) ** days
    return scores, rng.random(n) < p, days, rng.random(n) < 0.3


def test_the_exposure_power_follows_how_take_up_grows_with_the_days():
    rng = np.random.default_rng(0)
    # a steady daily chance: thirty days are thirty chances
    steady = _pairs_taken(rng, lambda s, d: 0.01 * s)
    assert fit_exposure_power(*steady) == 1.0
    # one chance per opening, whatever its days (a daily chance that shrinks with them)
    once = _pairs_taken(rng, lambda s, d: 1 - (1 - 0.3 * s) ** (1 / d))
    assert fit_exposure_power(*once) == 0.0
    assert set(EXPOSURE_POWERS) >= {0.0, 1.0}


def test_take_up_counts_the_horizon_to_the_exposure_power(model, data):
    users = np.arange(6)
    X = data["X"][users]
    saved = model.calibration_exposure_power_
    try:
        model.calibration_exposure_power_ = np.array(0.0)  # one chance per opening
        np.testing.assert_allclose(model.take_up(users, X, 10.0), model.take_up(users, X, 90.0))
        model.calibration_exposure_power_ = np.array(0.5)
        half = model.take_up(users, X, 4.0)
        model.calibration_exposure_power_ = np.array(1.0)
        np.testing.assert_allclose(half, model.take_up(users, X, 2.0), rtol=1e-5)
        assert (model.take_up(users, X, 90.0) >= model.take_up(users, X, 10.0)).all()
    finally:
        model.calibration_exposure_power_ = saved

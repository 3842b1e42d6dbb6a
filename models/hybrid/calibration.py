"""Probabilities that mean what they say: the hybrid's scores mapped to P(taken up).

The trees (or the component that ranks the candidates) give scores that order courses well
but are not probabilities: they were trained on subsampled negatives, and a component's score
is a rank. Coordinators add them up into an expected number of enrolments, so they are
calibrated on the validation users the trees never saw: every held-out user's candidate pairs,
scored as served, labelled by whether the pair was taken up between the validation cut and the
training cut. An isotonic regression (monotone, clipped outside the range it saw) maps a score
to that probability; it is kept as its two threshold arrays and evaluated with ``np.interp``,
so the artifact needs no pickle for it.

Pairs outside the candidate set (allowed, not yet taken, but proposed by no component) get one
constant: the rate at which held-out users took such a pair up (``floor``).

Courses take enrolments for a while before they start (``lead_days``, measured by training on
the history); a course that starts much later than the period is not taken up in it, however
well it suits a resident. Training therefore calibrates only on the courses that were taking
enrolments during the validation period, and a forecast counts only the courses that take
enrolments during its own period (start date minus ``lead_days`` before the period's end).

The held-out users are validation users: each took something up after the cut. Their rate is
therefore P(taken | the resident takes something up); a resident's probability multiplies it by
the share of residents like them (with no history, or with some) who took anything up in the
validation period (``active_share``).

The rate is over the validation horizon ``v`` (days between the two cuts). A coming period of
``h`` days is scaled with a constant hazard: ``p_h = 1 - (1 - p_v) ** (h / v)``, i.e. a resident
who would take a course up at some steady rate has the same chance in every day of the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fewer held-out pairs than this, or no positive among them: nothing to calibrate on.
MIN_PAIRS = 20


@dataclass(frozen=True)
class Calibration:
    """An isotonic map score -> P(taken up within ``horizon_days``), plus the floor."""

    x: np.ndarray  # increasing score thresholds
    y: np.ndarray  # non-decreasing probabilities at the thresholds, in [0, 1]
    floor: float  # P(taken up) of an allowed pair outside the candidates
    horizon_days: float  # the validation horizon the probabilities are over (NaN: unknown)
    lead_days: float = float("inf")  # how long before its start a course takes enrolments
    active_share: tuple[float, float] = (1.0, 1.0)  # users without / with history who took up

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """P(taken up within the validation horizon) of each score."""
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y).astype(np.float32)


def fit_isotonic(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of ``labels`` (0/1) on ``scores``: its threshold arrays.

    Returns two empty arrays when there are fewer than :data:`MIN_PAIRS` pairs or no positive.
    """
    from sklearn.isotonic import IsotonicRegression

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if scores.size < MIN_PAIRS or labels.sum() == 0:
        return np.zeros(0), np.zeros(0)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    return (np.asarray(iso.X_thresholds_, dtype=np.float64),
            np.asarray(iso.y_thresholds_, dtype=np.float64))


def scale_to_horizon(p: np.ndarray, horizon_days: float, validation_days: float) -> np.ndarray:
    """``p`` over ``validation_days`` rescaled to ``horizon_days`` with a constant hazard.

    Raises
    ------
    ValueError
        When either horizon is not a positive number of days.
    """
    if not horizon_days > 0:
        raise ValueError(f"horizon_days={horizon_days!r}: must be a positive number of days")
    if not validation_days > 0:
        raise ValueError(f"validation horizon {validation_days!r} days: must be positive")
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return (1.0 - (1.0 - p) ** (horizon_days / validation_days)).astype(np.float32)


def floor_rate(positives_outside: int, pairs_outside: int) -> float:
    """The take-up rate of allowed pairs no component proposed (0 when there were none)."""
    return float(positives_outside) / pairs_outside if pairs_outside > 0 else 0.0


__all__ = ["MIN_PAIRS", "Calibration", "fit_isotonic", "floor_rate", "scale_to_horizon"]

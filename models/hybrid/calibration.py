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

Courses take new residents in a window around their start: from ``lead_days`` before it to
``lag_days`` after it (both measured by training on the history). A course's *exposure* in a
period is the number of days of the period inside its window; a course with none is not taken
up in that period, however well it suits a resident. Training calibrates on the pairs of
courses exposed during the validation period, as a daily rate: the isotonic regression of
``label / exposure`` weighted by ``exposure`` (each block's value is its take-ups over its
exposure days), so ``horizon_days`` is then 1. A forecast scales each course's daily rate to
its own exposure in the coming period with a constant hazard: ``p_h = 1 - (1 - p_1) ** h``
(generally ``1 - (1 - p_v) ** (h / v)`` for rates over ``v`` days), i.e. a resident who would
take a course up at a steady rate has the same chance on every day of its window. A course
whose window closes in a week gets a week's worth of take-up, not a month's. The days count
to a power fitted on the held-out pairs (``exposure_power``, :func:`fit_exposure_power`; ``h``
above is then ``days ** power``): residents enrol in bursts when a course opens, and where
courses open for two days of the period were taken up about as often as those open for
thirty, the power is below 1 (0: one chance per opening, whatever its days).

The held-out users are validation users: each took something up after the cut. Their rate is
therefore P(taken | the resident takes something up); a resident's probability multiplies it by
the share of residents like them (with no history, or with some) who took anything up in the
validation period (``active_share``).

Courses nobody has taken yet (new ones, with no history at the cut) get their own isotonic map
(``new_x``, ``new_y``), fitted on the held-out pairs of the courses that had no history at the
validation cut. The trees score a course partly by its past popularity, which a new course
lacks: one map over all courses reads a new course's low score as a low take-up, although the
validation period shows new courses taken up at least as often as known ones at a far lower
score. Too few such pairs (or no positive among them) and new courses share the common map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fewer held-out pairs than this, or no positive among them: nothing to calibrate on.
MIN_PAIRS = 20


@dataclass(frozen=True)
class Calibration:
    """An isotonic map score -> P(taken up within ``horizon_days``), plus the floor."""

    x: np.ndarray  # increasing score thresholds (courses with history; all without new_x)
    y: np.ndarray  # non-decreasing probabilities at the thresholds, in [0, 1]
    floor: float  # P(taken up) of an allowed pair outside the candidates
    horizon_days: float  # the validation horizon the probabilities are over (NaN: unknown)
    lead_days: float = float("inf")  # how long before its start a course takes enrolments
    active_share: tuple[float, float] = (1.0, 1.0)  # users without / with history who took up
    lag_days: float = float("inf")  # how long after its start a course still takes residents
    new_x: np.ndarray | None = None  # the map of courses with no history (None: ``x``, ``y``)
    new_y: np.ndarray | None = None
    exposure_power: float = 1.0  # a course's exposure counts as ``days ** exposure_power``

    def __call__(self, scores: np.ndarray, new: np.ndarray | None = None) -> np.ndarray:
        """P(taken up within the validation horizon) of each score; ``new`` (bool, per score)
        marks the pairs of courses with no history, which take the new courses' map."""
        scores = np.asarray(scores, dtype=np.float64)
        p = np.interp(scores, self.x, self.y)
        if new is not None and self.new_x is not None and np.size(self.new_x):
            new = np.asarray(new, dtype=bool)
            p[new] = np.interp(scores[new], self.new_x, self.new_y)
        return p.astype(np.float32)


def fit_isotonic(scores: np.ndarray, labels: np.ndarray,
                 exposure: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of ``labels`` (0/1) on ``scores``: its threshold arrays.

    With ``exposure`` (days each pair could be taken up in), the regression is of the daily
    rate: ``labels / exposure`` weighted by ``exposure``, so each block's value is its
    take-ups over its exposure days (a pair exposed for two days counts for two, not for a
    whole period). Returns two empty arrays when there are fewer than :data:`MIN_PAIRS` pairs
    or no positive.
    """
    from sklearn.isotonic import IsotonicRegression

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if scores.size < MIN_PAIRS or labels.sum() == 0:
        return np.zeros(0), np.zeros(0)
    if exposure is None:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    else:
        days = np.asarray(exposure, dtype=np.float64)
        iso = IsotonicRegression(y_min=0.0, out_of_bounds="clip").fit(
            scores, labels / days, sample_weight=days)
    return (np.asarray(iso.X_thresholds_, dtype=np.float64),
            np.clip(np.asarray(iso.y_thresholds_, dtype=np.float64), 0.0, 1.0))


def fit_maps(scores: np.ndarray, labels: np.ndarray, exposure: np.ndarray | None,
             new: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray],
                                       tuple[np.ndarray, np.ndarray]]:
    """The isotonic maps (:func:`fit_isotonic`) of the courses with history and of the new
    ones (``new``, per pair), each fitted on its own pairs when they suffice, else the map of
    all pairs."""
    def part(select: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return fit_isotonic(scores[select], labels[select],
                            None if exposure is None else exposure[select])

    known, fresh = part(~new), part(new)
    if known[0].size and fresh[0].size:
        return known, fresh
    pooled = fit_isotonic(scores, labels, exposure)
    return (known if known[0].size else pooled), (fresh if fresh[0].size else pooled)


# The powers of exposure days tried (:func:`fit_exposure_power`): 1 is the constant hazard, 0
# one chance per course whatever its days.
EXPOSURE_POWERS = (0.0, 0.25, 0.5, 0.75, 1.0)


def effective_exposure(days, power: float) -> np.ndarray:
    """``days ** power``, with no exposure staying none."""
    days = np.asarray(days, dtype=np.float64)
    return np.where(days > 0, np.power(np.maximum(days, 1e-12), power), 0.0)


def fit_exposure_power(scores: np.ndarray, labels: np.ndarray, days: np.ndarray,
                       new: np.ndarray) -> float:
    """The power of the exposure days under which the isotonic daily rates (one map for known
    courses, one for new, as training fits them) give the held-out pairs the highest
    likelihood, among :data:`EXPOSURE_POWERS`.

    A constant hazard (power 1) says a course open for two days in the period is taken up a
    fifteenth as often as one open for thirty; residents enrol in bursts when a course opens,
    and courses that opened days before the period ended were taken up about as often as
    the others (docs/decisions.md), so the days count for less.
    """
    labels = np.asarray(labels, dtype=bool)
    best, best_loglik = 1.0, -np.inf
    for power in EXPOSURE_POWERS:
        eff = effective_exposure(days, power)
        p = np.zeros(labels.size)
        for part, (x, y) in zip((~new, new), fit_maps(scores, labels, eff, new)):
            if x.size:
                p[part] = 1.0 - (1.0 - np.interp(scores[part], x, y)) ** eff[part]
        p = np.clip(p, 1e-6, 1 - 1e-6)
        loglik = float(np.where(labels, np.log(p), np.log1p(-p)).sum())
        if loglik > best_loglik + 1e-9:
            best, best_loglik = power, loglik
    return best


def scale_to_horizon(p: np.ndarray, horizon_days, validation_days: float) -> np.ndarray:
    """``p`` over ``validation_days`` rescaled to ``horizon_days`` with a constant hazard.

    ``horizon_days`` is a number, or an array broadcast against ``p`` (per course: the days of
    the period the course takes new residents in; 0 gives 0).

    Raises
    ------
    ValueError
        When a horizon is not a positive number of days (an array may hold zeros).
    """
    h = np.asarray(horizon_days, dtype=np.float64)
    if (h.ndim == 0 and not h > 0) or not np.all(h >= 0):
        raise ValueError(f"horizon_days={horizon_days!r}: must be a positive number of days")
    if not validation_days > 0:
        raise ValueError(f"validation horizon {validation_days!r} days: must be positive")
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return (1.0 - (1.0 - p) ** (h / validation_days)).astype(np.float32)


def exposure_days(start: np.ndarray, lead_days: float, lag_days: float, since,
                  until) -> np.ndarray:
    """Days of the period ``(since, until]`` in which each course takes new residents: its
    window runs from ``start - lead_days`` to ``start + lag_days`` (an infinite lead or lag
    leaves that side open); an unknown start (NaT) gives the whole period."""
    day = np.timedelta64(1, "D")
    since, until = np.datetime64(since, "s"), np.datetime64(until, "s")
    period = float((until - since) / day)
    start = np.asarray(start, dtype="datetime64[s]")
    rel = (start - since) / day  # NaN where unknown
    opens = np.maximum(rel - lead_days, 0.0)
    closes = np.minimum(rel + lag_days, period)
    out = np.clip(closes - opens, 0.0, period)
    return np.where(np.isnan(rel), period, out)


def floor_rate(positives_outside: float, pairs_outside: float) -> float:
    """The take-up rate of allowed pairs no component proposed, per pair or per pair-day of
    exposure (0 when there were none)."""
    return float(positives_outside) / pairs_outside if pairs_outside > 0 else 0.0


__all__ = ["EXPOSURE_POWERS", "MIN_PAIRS", "Calibration", "effective_exposure", "exposure_days",
           "fit_exposure_power", "fit_isotonic", "fit_maps", "floor_rate", "scale_to_horizon"]

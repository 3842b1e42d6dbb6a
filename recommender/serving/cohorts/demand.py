"""Expected demand per cohort and course, from the model's calibrated take-up probabilities.

A cohort is a community x age band, a band district-wide (``community_id="all"``) or a
community as a whole (``band="all"``). Residents are the model's users with the band and
community they had at the training cut (``Engine.user_column``): the figures describe the
residents the model was trained with, and a resident's band does not move between two
requests of one model version.

The expected demand of a course in a cohort is the sum over the cohort's residents of the
model's calibrated probability that they take it up within ``horizon_days``
(:meth:`models.hybrid.HybridRanker.take_up`). Every resident is scored once per model
version, horizon and day, in batches, over the courses that are open and still running (the
date rule of :func:`~recommender.serving.rules.allowed_mask` without its seats rule, so a full
course still shows the waiting list it would have) that take new residents within the horizon
(from the start date minus the enrolment lead that training measured to the start date plus
its lag), each over the days of the horizon its window covers; the
sums are kept per fine cohort (community x band), and coarser cohorts are sums of fine ones.
Events posted since the model was loaded are not in these figures: they change with the next
model version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.availability import available_on
from models.base import batch_size
from models.hybrid.calibration import exposure_days
from recommender.domain import BAND_NAMES
from recommender.serving.errors import NotFound, ServiceError
from recommender.serving.holder import Snapshot

ALL = "all"
BATCH = 2000  # residents scored per model call at most (fewer for many courses: batch_size)


class ModelNotCalibrated(ServiceError):
    """The served artifact has no calibrated probabilities (trained before calibration)."""

    status, code = 409, "conflict"


@dataclass
class CohortIndex:
    """The model's residents grouped into fine cohorts (community x band; None: unknown)."""

    keys: list[tuple[str | None, str | None]]  # fine cohort k
    group: np.ndarray  # int64 per user index: its fine cohort
    sizes: np.ndarray  # residents per fine cohort
    active: np.ndarray  # residents per fine cohort with any training history

    @classmethod
    def build(cls, snap: Snapshot) -> CohortIndex:
        engine = snap.engine
        n = engine.mapping.n_users
        users = np.arange(n)
        pairs = list(zip(engine.user_column("community_id", users),
                         engine.user_column("age_band", users)))
        codes: dict[tuple, int] = {}
        group = np.fromiter((codes.setdefault(p, len(codes)) for p in pairs), np.int64, n)
        history = engine.history_rows(users)
        has_history = np.diff(history.indptr) > 0
        sizes = np.bincount(group, minlength=len(codes))
        active = np.bincount(group, weights=has_history, minlength=len(codes)).astype(np.int64)
        return cls(list(codes), group, sizes, active)

    def select(self, community_id: str, band: str) -> np.ndarray:
        """Fine cohorts that make up ``(community_id, band)`` ("all" matches any)."""
        return np.array([k for k, (c, b) in enumerate(self.keys)
                         if (community_id == ALL or c == community_id)
                         and (band == ALL or b == band)], dtype=np.int64)

    def members(self, community_id: str, band: str) -> np.ndarray:
        """User indices of the cohort's residents."""
        return np.flatnonzero(np.isin(self.group, self.select(community_id, band)))


@dataclass
class DemandTable:
    """Expected take-up per fine cohort and course over one horizon (courses: the catalogue)."""

    horizon_days: int
    today: dt.date
    offered: np.ndarray  # bool per course: open and still running
    demand: np.ndarray  # float64 (fine cohorts, courses)

    def cohort(self, fine: np.ndarray) -> np.ndarray:
        """Expected demand of a cohort made of the fine cohorts ``fine``, per course."""
        return self.demand[fine].sum(axis=0) if fine.size else np.zeros(self.demand.shape[1])

    @property
    def district(self) -> np.ndarray:
        return self.demand.sum(axis=0)


def offered_courses(snap: Snapshot, today: dt.date) -> np.ndarray:
    """Open courses still running tomorrow (the offer rule's dates, without the seats rule)."""
    cat = snap.catalogue
    return cat.open & available_on(cat.end_date, today + dt.timedelta(days=1), unknown=False)


def course_exposure(snap: Snapshot, today: dt.date, horizon_days: int) -> np.ndarray:
    """Days of the coming ``horizon_days`` in which each course takes new residents: its
    window runs from its start date minus the model's enrolment lead to its start date plus
    the model's lag (:func:`models.hybrid.calibration.exposure_days`)."""
    cal = snap.engine.model.calibration
    items = snap.engine.items
    since = np.datetime64(today, "s")
    until = np.datetime64(today + dt.timedelta(days=int(horizon_days)), "s")
    start = (pd.to_datetime(items["start_date"], errors="coerce").to_numpy(dtype="datetime64[s]")
             if "start_date" in items
             else np.full(len(items), np.datetime64("NaT"), dtype="datetime64[s]"))
    lead = cal.lead_days if cal is not None else float("inf")
    lag = cal.lag_days if cal is not None else float("inf")
    return exposure_days(start, lead, lag, since, until)


def check_calibrated(snap: Snapshot) -> None:
    """Raise :class:`ModelNotCalibrated` unless the model gives calibrated probabilities."""
    if snap.engine.model.calibration is None:
        raise ModelNotCalibrated(
            "model", f"model {snap.engine.version} has no calibrated take-up probabilities "
            "(trained before calibration existed, or on a validation split without a time "
            "cut): retrain with `recommender train`")


def scored_residents(index: CohortIndex, has_history: np.ndarray, cap: int | None,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The residents to score and the weight of each (how many residents each stands for).

    Strata are fine cohort x (history or none). A stratum of at most ``cap`` residents is
    scored whole (weight 1); a larger one through a seeded random sample of ``cap`` residents,
    each weighing ``size / cap``: the cohort sums are then unbiased estimates, with a relative
    standard error of about ``sqrt(1 / cap)`` times the spread of the probabilities, which
    keeps the district-scale computation within a minute. ``cap=None`` scores everyone.
    """
    n = index.group.size
    if cap is None:
        return np.arange(n), np.ones(n)
    rng = np.random.default_rng(seed)
    strata = index.group * 2 + has_history.astype(np.int64)
    order = np.argsort(strata, kind="stable")
    bounds = np.flatnonzero(np.diff(strata[order])) + 1
    users, weights = [], []
    for members in np.split(order, bounds):
        if members.size > cap:
            weights.append(np.full(cap, members.size / cap))
            members = np.sort(rng.choice(members, size=cap, replace=False))
        else:
            weights.append(np.ones(members.size))
        users.append(members)
    if not users:
        return np.zeros(0, np.int64), np.zeros(0)
    users_all, weights_all = np.concatenate(users), np.concatenate(weights)
    keep = np.argsort(users_all, kind="stable")
    return users_all[keep], weights_all[keep]


def compute_demand(snap: Snapshot, index: CohortIndex, horizon_days: int, today: dt.date,
                   cap: int | None = None) -> DemandTable:
    """Score the residents (all, or ``cap`` per stratum: :func:`scored_residents`) over the
    offered courses and sum per fine cohort."""
    check_calibrated(snap)
    engine = snap.engine
    exposure = course_exposure(snap, today, horizon_days)
    # The model ranks over every open course whatever the horizon, so that a longer horizon
    # (more courses within their enrolment window) never changes a resident's candidates and
    # so never lowers a course's demand; a course outside its window scores 0 by its exposure.
    candidates = offered_courses(snap, today)
    offered = candidates & (exposure > 0)
    n_items = len(snap.catalogue.ids)
    demand = np.zeros((len(index.keys), n_items), dtype=np.float64)
    has_history = np.diff(engine.history_rows(np.arange(index.group.size)).indptr) > 0
    users, weights = scored_residents(index, has_history, cap)
    if offered.any():
        size = batch_size(n_items, BATCH)
        for start in range(0, users.size, size):
            batch = users[start:start + size]
            p = engine.model.take_up(batch, engine.history_rows(batch), exposure,
                                     allowed=candidates)
            groups = sp.csr_matrix((weights[start:start + size],
                                    (index.group[batch], np.arange(batch.size))),
                                   shape=(len(index.keys), batch.size))
            demand += groups @ p
    return DemandTable(horizon_days, today, offered, demand)


def check_cohort(snap: Snapshot, community_id: str, band: str) -> None:
    """Raise :class:`NotFound` naming an unknown community or band."""
    if community_id != ALL and community_id not in snap.communities:
        raise NotFound("community_id", f"unknown community {community_id!r}")
    if band != ALL and band not in BAND_NAMES:
        raise NotFound("band", f"unknown band {band!r} (one of {', '.join(BAND_NAMES)} or "
                       f"{ALL!r})")


__all__ = ["ALL", "CohortIndex", "DemandTable", "ModelNotCalibrated", "check_calibrated",
           "check_cohort", "compute_demand", "course_exposure", "offered_courses",
           "scored_residents"]

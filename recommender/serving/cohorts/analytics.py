"""Learning-behaviour analytics of a cohort, computed from the store's tables with pandas.

Residents belong to a cohort by their stored community and by the band the model gave them
at the training cut (residents the model has not seen: their band today, from the birth
year), so these figures and the demand figures describe the same people.

Every figure goes through the suppression rule with the number of distinct residents it was
computed over: a monthly or per-category count with the residents it counts, a rate with the
residents of its denominator, a share with the cohort's size, a course's fill rate with the
residents enrolled in it. A cohort of fewer than ten residents shows none of its own
figures (only the fill rates of the courses held for it, each under its own rule). Counts of
households are shown when the households hold ten residents or more.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from recommender.domain import AgeBands
from recommender.serving.cohorts.demand import ALL, CohortIndex
from recommender.serving.cohorts.figures import MIN_RESIDENTS, SUPPRESSED, figure
from recommender.serving.holder import BAND_BIT, Snapshot

ACTIVE_DAYS = 365  # a resident is active with an enrolment, attendance or completion this recent
TAKE_UP = ("enroll", "attend", "complete")


def resident_bands(residents: pd.DataFrame, snap: Snapshot, today: dt.date) -> pd.Series:
    """Each stored resident's band: the model's (at its training cut), else today's."""
    engine = snap.engine
    ids = residents["resident_id"].astype(str)
    idx = engine.mapping.user_index(ids)
    known = engine.user_column("age_band", np.where(idx >= 0, idx, 0))
    bands = AgeBands()
    today_band = [bands.band(int(y), today) if pd.notna(y) and int(y) <= today.year else None
                  for y in residents["birth_year"]]
    return pd.Series([k if i >= 0 else t for i, k, t in zip(idx, known, today_band)],
                     index=residents.index, dtype=object)


def cohort_analytics(tables: dict, snap: Snapshot, index: CohortIndex, community_id: str,
                     band: str, today: dt.date) -> dict:
    """Participation over time and by category, outcome rates, share active, households
    that learn across generations and fill rates, for one cohort."""
    residents = tables["residents"].copy()
    residents["band"] = resident_bands(residents, snap, today)
    keep = np.ones(len(residents), dtype=bool)
    if community_id != ALL:
        keep &= (residents["community_id"] == community_id).to_numpy()
    if band != ALL:
        keep &= (residents["band"] == band).to_numpy()
    members = residents[keep]
    size = len(members)
    if size < MIN_RESIDENTS:  # every figure below would describe these few residents
        return {"residents": figure(size, size), "monthly": [], "by_category": [],
                "rates": {k: dict(SUPPRESSED) for k in ("completion", "cancellation",
                                                        "no_show")},
                "share_active": dict(SUPPRESSED),
                "multigenerational_households": {k: dict(SUPPRESSED) for k in (
                    "households", "learning_across_generations", "share")},
                "fill_rates": _fill_rates(tables, snap, community_id, band)}
    events = tables["participations"]
    events = events[events["resident_id"].isin(members["resident_id"])].copy()
    courses = tables["courses"].set_index("course_id")
    events["category"] = events["course_id"].map(courses["category"])
    events["month"] = pd.to_datetime(events["occurred_at"]).dt.strftime("%Y-%m")
    return {
        "residents": figure(size, size),
        "monthly": _monthly(events),
        "by_category": _by_category(events),
        "rates": _rates(events),
        "share_active": _share_active(events, size, today),
        "multigenerational_households": _households(residents, members, tables, today),
        "fill_rates": _fill_rates(tables, snap, community_id, band),
    }


def _counted(frame: pd.DataFrame, event: str) -> dict:
    rows = frame[frame["event"] == event]
    return figure(int(len(rows)), rows["resident_id"].nunique())


def _monthly(events: pd.DataFrame) -> list[dict]:
    """Enrolments and attendances per calendar month."""
    return [{"month": month, "enrolments": _counted(part, "enroll"),
             "attendances": _counted(part, "attend")}
            for month, part in sorted(events.groupby("month"), key=lambda kv: kv[0])]


def _by_category(events: pd.DataFrame) -> list[dict]:
    return [{"category": str(cat), "enrolments": _counted(part, "enroll"),
             "completions": _counted(part, "complete")}
            for cat, part in sorted(events.groupby("category"), key=lambda kv: str(kv[0]))]


def _rates(events: pd.DataFrame) -> dict:
    """Completion and cancellation per enrolment (pairs), no-show per expected attendance."""
    enrolled = events[events["event"] == "enroll"][["resident_id", "course_id"]].drop_duplicates()
    n_enrolled = enrolled["resident_id"].nunique()

    def share(event: str) -> float:
        pairs = events[events["event"] == event][["resident_id", "course_id"]].drop_duplicates()
        hit = pairs.merge(enrolled, on=["resident_id", "course_id"])
        return round(len(hit) / len(enrolled), 4) if len(enrolled) else 0.0

    shows = events[events["event"].isin(["attend", "no_show"])]
    no_show = (round(float((shows["event"] == "no_show").mean()), 4) if len(shows) else 0.0)
    return {"completion": figure(share("complete"), n_enrolled),
            "cancellation": figure(share("cancel"), n_enrolled),
            "no_show": figure(no_show, shows["resident_id"].nunique())}


def _share_active(events: pd.DataFrame, size: int, today: dt.date) -> dict | float:
    since = pd.Timestamp(today) - pd.Timedelta(days=ACTIVE_DAYS)
    recent = events[events["event"].isin(TAKE_UP)
                    & (pd.to_datetime(events["occurred_at"]) >= since)]
    active = recent["resident_id"].nunique()
    return figure(round(active / size, 4) if size else 0.0, size)


def _households(residents: pd.DataFrame, members: pd.DataFrame, tables: dict,
                today: dt.date) -> dict:
    """Households of the cohort where residents of two or more bands took a course up."""
    took = tables["participations"]
    took = took[took["event"].isin(TAKE_UP)]["resident_id"].unique()
    active = residents[residents["resident_id"].isin(took) & residents["household_id"].notna()]
    bands_per = active.groupby("household_id")["band"].nunique()
    households = members["household_id"].dropna().unique()
    across = [h for h in households if bands_per.get(h, 0) >= 2]
    people = int(residents["household_id"].isin(across).sum())
    n_people = int(residents["household_id"].isin(households).sum())
    return {"households": figure(len(households), n_people),
            "learning_across_generations": figure(len(across), people),
            "share": figure(round(len(across) / len(households), 4) if len(households) else 0.0,
                            n_people)}


def _fill_rates(tables: dict, snap: Snapshot, community_id: str, band: str) -> list[dict]:
    """Net enrolments over capacity of the courses held in the community for the band."""
    cat = snap.catalogue
    events = tables["participations"]
    net = events[events["event"].isin(["enroll", "cancel"])]
    sign = np.where(net["event"] == "enroll", 1, -1)
    per_pair = pd.Series(sign, index=net.index).groupby(
        [net["course_id"], net["resident_id"]]).sum()
    per_course = (per_pair > 0).groupby(level=0).sum()
    out = []
    for pos, record in enumerate(cat.records):
        if community_id != ALL and record["venue"]["community_id"] != community_id:
            continue
        if band != ALL and not cat.band_bits[pos] & BAND_BIT[band]:
            continue
        capacity = int(cat.capacity[pos])
        enrolled = int(per_course.get(record["course_id"], 0))
        rate = round(enrolled / capacity, 4) if capacity else None
        out.append({"course_id": record["course_id"], "title": record["title"],
                    "capacity": capacity, "enrolled": figure(enrolled, enrolled),
                    "fill_rate": figure(rate, enrolled)})
    return out


__all__ = ["cohort_analytics", "resident_bands"]

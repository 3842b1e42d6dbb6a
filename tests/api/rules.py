"""The service's business rules computed independently from the raw store tables, so tests can
compare the service's answers with what the rules say (not with the service's own code)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from recommender.domain import AgeBands

CHILD = {"preschool", "school_age"}
ADULT = {"working_age", "elderly"}


def band_of(birth_year, today: dt.date) -> str:
    return AgeBands().band(int(birth_year), today)


def taken_by(part: pd.DataFrame, resident_id: str) -> set[str]:
    """Courses the resident is enrolled in (last of enroll/attend/cancel is not cancel) or has
    completed."""
    mine = part[(part["resident_id"] == resident_id)
                & part["event"].isin(["enroll", "attend", "complete", "cancel"])]
    mine = mine.sort_values(["occurred_at", "event_id"])
    out = set()
    for course, events in mine.groupby("course_id")["event"]:
        events = list(events)
        if "complete" in events or events[-1] != "cancel":
            out.add(course)
    return out


def seats_left(courses: pd.DataFrame, part: pd.DataFrame) -> pd.Series:
    """Capacity minus the residents whose latest commitment to the course (by time, then event
    id) is an enrolment or an attendance."""
    ev = part[part["event"].isin(["enroll", "attend", "complete", "cancel"])]
    latest = ev.sort_values(["occurred_at", "event_id"]).groupby(
        ["course_id", "resident_id"])["event"].last()
    holding = latest[latest.isin(["enroll", "attend"])].groupby(level="course_id").size()
    taken = courses["course_id"].map(holding).fillna(0)
    return (courses["capacity"].astype(int) - taken).clip(lower=0).set_axis(courses["course_id"])


def is_family(course: pd.Series) -> bool:
    text = f"{course['title']} {course['tags'] or ''}"
    return "亲子" in text or "祖孙" in text


def allowed_for(store, today: dt.date, *, band=None, child_bands=(), taken=(), category=None,
                frames: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> set[str]:
    """Course ids a resident (band, children's bands, taken courses) may be offered.

    ``frames`` = (courses, participations) already read from ``store`` saves reading them again.
    """
    courses, part = frames or (store.read("courses"), store.read("participations"))
    seats = seats_left(courses, part)
    out = set()
    for c in courses.to_dict("records"):
        if c["status"] != "open" or seats[c["course_id"]] <= 0:
            continue
        if not c["end_date"].date() > today:
            continue
        if category and c["category"] != category:
            continue
        targets = set(c["target_bands"].split("|"))
        fits = band is None or band in targets or (
            band in ADULT and is_family(c) and bool(targets & set(child_bands) & CHILD))
        if fits and c["course_id"] not in taken:
            out.add(c["course_id"])
    return out

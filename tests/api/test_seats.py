"""Seats: a course's taken seats are the residents whose latest commitment to it is an enrolment
or an attendance, the same in the service (after events are folded), in the store and after a
reload. Each test is one way the old enrol-minus-cancel counter went wrong."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.api.conftest import ADMIN, PLATFORM, new_ids, today
from tests.api.rules import band_of, seats_left


@pytest.fixture
def service(client, app):
    """The service answering requests now (an earlier test may have run the app's lifespan
    again, which puts a new service in place)."""
    return app.state.service


@pytest.fixture
def store(service):
    return service.store


def _course(service, free: int = 3) -> str:
    """An open, running course with at least ``free`` seats left and few taken."""
    snap = service.holder.snapshot()
    cat = snap.catalogue
    running = cat.end_date > np.datetime64(today() + dt.timedelta(days=2))
    ok = cat.open & running & (snap.seats_left >= free)
    order = np.argsort((cat.capacity - snap.seats_left)[ok], kind="stable")
    return str(cat.ids[np.flatnonzero(ok)[order[0]]])


def _residents(tables, store, n: int) -> list[str]:
    """``n`` adult residents with no commitment to anything yet."""
    res = tables["residents"]
    part = store.read("participations")
    busy = set(part.loc[part["event"] != "view", "resident_id"])
    free = [r for r, y in zip(res["resident_id"], res["birth_year"])
            if band_of(y, today()) in ("working_age", "elderly") and r not in busy]
    return free[-n:]


def _post(client, *events: tuple[str, str, str]) -> None:
    """Post ``(resident_id, course_id, event)`` events, a minute apart, oldest first."""
    start = dt.datetime.now() - dt.timedelta(hours=2)
    ids = new_ids("E-seat", len(events))
    body = [{"event_id": i, "resident_id": r, "course_id": c, "event": e,
             "occurred_at": (start + dt.timedelta(minutes=k)).replace(microsecond=0).isoformat()}
            for k, (i, (r, c, e)) in enumerate(zip(ids, events))]
    for event in body:  # one at a time, as a platform streams them
        out = client.post("/v1/events", json={"events": [event]}, headers=PLATFORM)
        assert out.status_code == 200 and out.json()["accepted"] == 1, out.text


def _left(service, course: str) -> int:
    snap = service.holder.snapshot()
    return int(snap.seats_left[snap.catalogue.position[course]])


def _agree(client, service, store, course: str) -> int:
    """Seats left of ``course`` in the service, checked against the rule computed from the
    store's rows and against the store's own count, before and after a reload."""
    here = _left(service, course)
    courses = store.read("courses").set_index("course_id", drop=False)
    expected = int(seats_left(courses, store.read("participations"))[course])
    assert here == expected
    assert here == max(int(courses.loc[course, "capacity"])
                       - store.seats_taken([course]).get(course, 0), 0)
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200
    assert _left(service, course) == here
    return here


def test_a_cancel_from_a_resident_who_never_enrolled_frees_nothing(client, service, store,
                                                                   tables):
    course = _course(service)
    stranger, member = _residents(tables, store, 2)
    _post(client, (member, course, "enroll"))
    before = _left(service, course)
    _post(client, (stranger, course, "cancel"))
    assert _left(service, course) == before
    assert _agree(client, service, store, course) == before


def test_enrolling_twice_takes_one_seat(client, service, store, tables):
    course = _course(service)
    (resident,) = _residents(tables, store, 1)
    before = _left(service, course)
    _post(client, (resident, course, "enroll"), (resident, course, "enroll"))
    assert _left(service, course) == before - 1
    _post(client, (resident, course, "attend"))
    assert _left(service, course) == before - 1
    assert _agree(client, service, store, course) == before - 1


def test_stray_cancels_never_make_later_enrolments_free(client, service, store, tables):
    course = _course(service)
    stranger, *members = _residents(tables, store, 3)
    snap = service.holder.snapshot()
    before = _left(service, course)
    taken = int(snap.catalogue.capacity[snap.catalogue.position[course]]) - before
    # More cancellations than the course has enrolments: the old counter went below zero.
    _post(client, *[(stranger, course, "cancel")] * (taken + 2))
    assert _left(service, course) == before
    _post(client, *[(m, course, "enroll") for m in members])
    assert _left(service, course) == before - 2
    assert _agree(client, service, store, course) == before - 2


def test_the_latest_commitment_decides(client, service, store, tables):
    course = _course(service)
    a, b = _residents(tables, store, 2)
    before = _left(service, course)
    _post(client, (a, course, "enroll"), (a, course, "cancel"), (a, course, "enroll"),
          (b, course, "enroll"), (b, course, "cancel"))
    assert _left(service, course) == before - 1
    assert _agree(client, service, store, course) == before - 1

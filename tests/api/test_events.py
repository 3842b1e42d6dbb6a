"""POST /v1/events: per-event validation, durable and idempotent storage, and the next list
changing at once."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from recommender.domain import MAX_ID_LENGTH
from tests.api.conftest import PLATFORM, new_ids, today
from tests.api.rules import band_of


def _now() -> str:
    return dt.datetime.now().replace(microsecond=0).isoformat()


def _stored(store, ids) -> int:
    t = store.tables["participations"]
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(t.c.event_id.in_(ids))).scalar()


def _fresh_resident(tables, store, band: str, offset: int) -> str:
    """A resident of ``band`` with no enrolment yet (so tests do not share residents)."""
    res = tables["residents"]
    part = store.read("participations")
    busy = set(part.loc[part["event"] != "view", "resident_id"])
    candidates = [r for r, y in zip(res["resident_id"], res["birth_year"])
                  if band_of(y, today()) == band and r not in busy]
    return candidates[offset]


def test_same_batch_twice_is_stored_once(client, store, tables):
    residents = tables["residents"]["resident_id"].iloc[:3].tolist()
    courses = tables["courses"]["course_id"].iloc[:3].tolist()
    ids = new_ids("E-twice", 6)
    events = [{"event_id": ids[i], "resident_id": residents[i % 3], "course_id": courses[i % 3],
               "event": "view", "occurred_at": _now()} for i in range(6)]
    events[5] = {**events[5], "event": "rate", "value": 4}
    first = client.post("/v1/events", json={"events": events}, headers=PLATFORM)
    assert first.status_code == 200, first.text
    assert first.json() | {"rejections": []} == {
        "received": 6, "accepted": 6, "duplicates": 0, "rejected": 0, "rejections": []}
    second = client.post("/v1/events", json={"events": events}, headers=PLATFORM).json()
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 6, 0)
    assert _stored(store, ids) == 6
    # A repeat inside one batch is a duplicate too.
    again = new_ids("E-inbatch", 1)[0]
    one = {**events[0], "event_id": again}
    out = client.post("/v1/events", json={"events": [one, one]}, headers=PLATFORM).json()
    assert (out["accepted"], out["duplicates"]) == (1, 1) and _stored(store, [again]) == 1


def test_each_bad_event_is_rejected_with_field_and_reason(client, store, tables):
    rid = tables["residents"]["resident_id"].iloc[10]
    cid = tables["courses"]["course_id"].iloc[10]
    ids = new_ids("E-bad", 10)
    ok = {"resident_id": rid, "course_id": cid, "event": "view", "occurred_at": _now()}
    future = (dt.datetime.now() + dt.timedelta(days=30)).isoformat()
    batch = [
        {**ok, "event_id": ids[0]},
        {**ok, "event_id": ids[1], "event": "like"},
        {**ok, "event_id": ids[2], "event": "rate"},
        {**ok, "event_id": ids[3], "event": "rate", "value": 6},
        {**ok, "event_id": ids[4], "resident_id": "R-unknown"},
        {**ok, "event_id": ids[5], "course_id": "K-unknown"},
        {**ok, "event_id": ids[6], "occurred_at": "yesterday"},
        {**ok, "event_id": ids[7], "occurred_at": future},
        {**ok, "event_id": None},
        {**ok, "event_id": "E" * (MAX_ID_LENGTH + 1)},
    ]
    r = client.post("/v1/events", json={"events": batch}, headers=PLATFORM)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (10, 1, 9)
    got = {(x["index"], x["field"]) for x in body["rejections"]}
    assert got == {(1, "event"), (2, "value"), (3, "value"), (4, "resident_id"),
                   (5, "course_id"), (6, "occurred_at"), (7, "occurred_at"), (8, "event_id"),
                   (9, "event_id")}
    assert all(x["reason"] for x in body["rejections"])
    assert _stored(store, ids) == 1


def test_batch_limits_and_bad_bodies(client):
    event = {"event_id": "x", "resident_id": "R", "course_id": "K", "event": "view",
             "occurred_at": _now()}
    r = client.post("/v1/events", json={"events": [event] * 1001}, headers=PLATFORM)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body.events"
    r = client.post("/v1/events", json={"events": []}, headers=PLATFORM)
    assert r.status_code == 422
    r = client.post("/v1/events", content=b"{not json", headers={
        **PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    # a field of the wrong type is the event's problem, not the batch's
    r = client.post("/v1/events", json={"events": [{**event, "value": "high"}]}, headers=PLATFORM)
    assert r.status_code == 200 and [(x["index"], x["field"]) for x in r.json()[
        "rejections"]] == [(0, "resident_id")]  # the first failing field, in column order


def test_enrolment_changes_the_next_list_at_once(client, store, tables, service):
    rid = _fresh_resident(tables, store, "elderly", 0)
    url = f"/v1/residents/{rid}/recommendations"
    before = client.get(url, headers=PLATFORM).json()["items"]
    top = before[0]["course_id"]
    seats = before[0]["seats_left"]
    enrolled_before = service.holder.snapshot().engine.seen(rid)
    r = client.post("/v1/events", json={"events": [{
        "event_id": new_ids("E-enrol", 1)[0], "resident_id": rid, "course_id": top,
        "event": "enroll", "occurred_at": _now()}]}, headers=PLATFORM)
    assert r.json()["accepted"] == 1
    after = client.get(url, headers=PLATFORM).json()["items"]
    assert top not in {i["course_id"] for i in after}
    assert top in service.holder.snapshot().engine.seen(rid) - enrolled_before
    # Scores are refreshed (the resident's history changed), not just filtered.
    old = {i["course_id"]: i["score"] for i in before}
    common = [i for i in after if i["course_id"] in old]
    assert any(abs(i["score"] - old[i["course_id"]]) > 1e-9 for i in common)
    # The course lost a seat for everyone else.
    other = _fresh_resident(tables, store, "elderly", 1)
    listing = client.get(f"/v1/residents/{other}/recommendations",
                         params={"k": 100, "category": before[0]["category"]},
                         headers=PLATFORM).json()["items"]
    left = {i["course_id"]: i["seats_left"] for i in listing}
    if top in left:
        assert left[top] == seats - 1


def test_cancel_frees_the_seat_and_the_enrolment(client, store, tables, service):
    rid, other = (_fresh_resident(tables, store, "working_age", i) for i in (1, 2))
    params = {"k": 100, "category": "skills"}

    def seats():
        items = client.get(f"/v1/residents/{other}/recommendations", params=params,
                           headers=PLATFORM).json()["items"]
        return {i["course_id"]: i["seats_left"] for i in items}

    before = seats()
    course = next(iter(before))
    e1, e2 = new_ids("E-cancel", 2)
    ev = {"resident_id": rid, "course_id": course, "occurred_at": _now()}
    client.post("/v1/events", json={"events": [{**ev, "event_id": e1, "event": "enroll"}]},
                headers=PLATFORM)
    assert course in service.taken(rid)
    assert seats().get(course, 0) == before[course] - 1
    later = (dt.datetime.now() + dt.timedelta(seconds=1)).replace(microsecond=0).isoformat()
    client.post("/v1/events", json={"events": [{**ev, "event_id": e2, "event": "cancel",
                                                "occurred_at": later}]}, headers=PLATFORM)
    assert course not in service.taken(rid)
    assert seats()[course] == before[course]


@pytest.mark.parametrize("when, stored", [
    ("2026-01-02T10:00:00+00:00", "2026-01-02 18:00:00"),  # converted to district time
    ("2026-01-02T10:00:00Z", "2026-01-02 18:00:00"),
    ("2026-01-02T10:00:00+08:00", "2026-01-02 10:00:00"),  # district offset: unchanged
    ("2026-01-02T10:00:00", "2026-01-02 10:00:00"),  # naive: already district time
    ("2026-01-02T10:00:00+banana", None),  # not ISO 8601: refused
])
def test_event_times_are_stored_in_district_time(client, store, tables, when, stored):
    eid = new_ids("E-tz", 1)[0]
    r = client.post("/v1/events", json={"events": [{
        "event_id": eid, "resident_id": tables["residents"]["resident_id"].iloc[20],
        "course_id": tables["courses"]["course_id"].iloc[0], "event": "view",
        "occurred_at": when}]}, headers=PLATFORM)
    t = store.tables["participations"]
    row = store.read("participations", where=t.c.event_id == eid)
    if stored is None:
        assert [(x["field"], x["reason"]) for x in r.json()["rejections"]] == [
            ("occurred_at", "occurred_at is not an ISO 8601 date-time")]
        assert row.empty
    else:
        assert r.json()["accepted"] == 1
        assert str(row["occurred_at"].iloc[0]) == stored

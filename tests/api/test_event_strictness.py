"""POST /v1/events judges each event on its own and strictly: a mistyped field rejects that event
only, nothing is converted, and the answer names the event (index and id), the field and why."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from recommender.domain import EARLIEST_DATE
from tests.api.conftest import PLATFORM, new_ids


def _now() -> str:
    # district time (no offset): the service judges times in the district's zone
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).replace(
        microsecond=0, tzinfo=None).isoformat()


def _stored(store, ids) -> dict[str, float | None]:
    t = store.tables["participations"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.event_id, t.c.value).where(t.c.event_id.in_(ids)))
        return {eid: value for eid, value in rows}


def test_one_mistyped_field_rejects_only_its_event(client, store, tables):
    rid = tables["residents"]["resident_id"].iloc[40]
    cid = tables["courses"]["course_id"].iloc[4]
    ids = new_ids("E-strict", 8)
    ok = {"resident_id": rid, "course_id": cid, "event": "view", "occurred_at": _now()}
    batch = [
        {**ok, "event_id": ids[0]},
        {**ok, "event_id": ids[1], "occurred_at": 1764000000},
        {**ok, "event_id": ids[2], "event": "rate", "value": True},
        {**ok, "event_id": ids[3], "event": "rate", "value": "5"},
        {**ok, "event_id": ids[4], "value": 3},
        {**ok, "event_id": ids[5], "occurred_at": "1900-01-01T00:00:00"},
        {**ok, "event_id": ids[6], "event": "rate", "value": 4},
        {**ok, "event_id": ids[7], "rating": 4},
    ]
    r = client.post("/v1/events", json={"events": batch}, headers=PLATFORM)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["rejected"]) == (
        8, 2, 0, 6)
    assert body["rejections"] == [
        {"index": 1, "event_id": ids[1], "field": "occurred_at",
         "reason": "occurred_at must be an ISO 8601 date-time string"},
        {"index": 2, "event_id": ids[2], "field": "value", "reason": "value must be a number"},
        {"index": 3, "event_id": ids[3], "field": "value", "reason": "value must be a number"},
        {"index": 4, "event_id": ids[4], "field": "value",
         "reason": "value is allowed only when event is 'rate'"},
        {"index": 5, "event_id": ids[5], "field": "occurred_at",
         "reason": f"occurred_at is before {EARLIEST_DATE}, the earliest date accepted"},
        {"index": 7, "event_id": ids[7], "field": "rating",
         "reason": "'rating' is not a field of participations (expected: event_id, "
                   "resident_id, course_id, event, value, occurred_at)"},
    ]
    assert _stored(store, ids) == {ids[0]: None, ids[6]: 4.0}


def test_an_event_id_of_the_wrong_type_is_not_echoed_as_an_id(client, tables):
    event = {"event_id": 17, "resident_id": tables["residents"]["resident_id"].iloc[41],
             "course_id": tables["courses"]["course_id"].iloc[4], "event": "view",
             "occurred_at": _now()}
    body = client.post("/v1/events", json={"events": [event]}, headers=PLATFORM).json()
    assert body["rejections"] == [{"index": 0, "event_id": None, "field": "event_id",
                                   "reason": "event_id must be a string"}]


def test_the_documented_answers_stay_true(client, app):
    """200 with the report (a partial accept is still 200); 422 only for the body's shape."""
    op = app.openapi()["paths"]["/v1/events"]["post"]
    assert {"200", "422"} <= set(op["responses"])
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/EventReport")
    r = client.post("/v1/events", json={"events": ["not an object"]}, headers=PLATFORM)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body.events.0"

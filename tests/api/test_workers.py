"""Several workers answer alike: seats, coordinators' decisions and new events posted to one
worker show in every worker within one second (a real 2-worker ``recommender serve``)."""

from __future__ import annotations

import datetime as dt
import time

from recommender.data.store import open_store
from tests.api.conftest import COORDINATOR, PLATFORM, new_ids, today
from tests.api.rules import band_of
from tests.api.server import serving, worker_connections

KEY = PLATFORM["X-API-Key"]
WITHIN = 1.0  # seconds


def _fresh(tables, store, n: int) -> list[tuple[str, str, str]]:
    """``n`` elderly residents with no commitment yet: (resident_id, community_id, band)."""
    res = tables["residents"]
    part = store.read("participations")
    busy = set(part.loc[part["event"] != "view", "resident_id"])
    out = [(r, c, "elderly") for r, c, y in zip(res["resident_id"], res["community_id"],
                                                res["birth_year"])
           if band_of(y, today()) == "elderly" and r not in busy]
    return out[len(out) // 2: len(out) // 2 + n]


def _list(conn, resident: str, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in {"k": 10, **params}.items())
    status, body = conn.request("GET", f"/v1/residents/{resident}/recommendations?{query}",
                                key=KEY)
    assert status == 200, body
    return body["items"]


def _until(check, since: float) -> float:
    """Seconds from ``since`` until ``check()`` holds; fails after :data:`WITHIN` seconds."""
    while not check():
        assert time.monotonic() - since < WITHIN, "the other worker did not follow in time"
        time.sleep(0.05)
    return time.monotonic() - since


def test_two_workers_agree_within_a_second(db_url, artifacts, tables, tmp_path):
    store = open_store(db_url, create=False)
    (me, community, band), (other, _, _) = _fresh(tables, store, 2)
    store.dispose()
    with serving(db_url, artifacts, tmp_path, workers=2) as server:
        a, b = worker_connections(server, 2)
        assert a.worker != b.worker
        mine = _list(b, me)
        course = mine[0]
        scores = {i["course_id"]: i["score"] for i in mine[1:]}

        def seats_seen_by_b() -> int | None:
            listed = _list(b, other, k=100, category=course["category"])
            return next((i["seats_left"] for i in listed if i["course_id"] == course["course_id"]),
                        None)

        seats = seats_seen_by_b()
        assert seats is not None and seats > 0
        assert _list(a, me) == mine  # both workers give the same list to begin with

        # An enrolment posted to worker a: b's seats and b's ranking for me follow it.
        when = (dt.datetime.now() - dt.timedelta(minutes=5)).replace(microsecond=0)
        status, report = a.request("POST", "/v1/events", key=KEY, body={"events": [{
            "event_id": new_ids("E-workers", 1)[0], "resident_id": me,
            "course_id": course["course_id"], "event": "enroll",
            "occurred_at": when.isoformat()}]})
        assert status == 200 and report["accepted"] == 1, report
        posted = time.monotonic()
        assert seats_seen_by_b() is not None  # the seat count on b may still lag here ...

        def b_followed() -> bool:
            after = _list(b, me)
            rescored = any(abs(i["score"] - scores[i["course_id"]]) > 1e-9
                           for i in after if i["course_id"] in scores)
            return seats_seen_by_b() == seats - 1 and rescored

        _until(b_followed, posted)
        assert course["course_id"] not in {i["course_id"] for i in _list(b, me)}
        assert [i["course_id"] for i in _list(a, me)] == [i["course_id"] for i in _list(b, me)]

        # A coordinator's rejection recorded through worker a leaves my list on worker b.
        rejected = _list(b, me)[0]["course_id"]
        status, made = a.request("POST", f"/v1/cohorts/{community}/{band}/decisions",
                                 key=COORDINATOR["X-API-Key"],
                                 body={"course_id": rejected, "action": "reject",
                                       "note": "two workers"})
        assert status == 201 or status == 200, made
        decided = time.monotonic()
        _until(lambda: rejected not in {i["course_id"] for i in _list(b, me)}, decided)
        status, _ = b.request("DELETE", f"/v1/decisions/{made['decision_id']}",
                              key=COORDINATOR["X-API-Key"])
        assert status == 200
        undone = time.monotonic()
        _until(lambda: rejected in {i["course_id"] for i in _list(a, me)}, undone)

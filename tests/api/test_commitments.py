"""A view is not a commitment: only an enrolment (not cancelled), attendance or completion takes
a course out of a resident's list; a view may move it, never remove it."""

from __future__ import annotations

import datetime as dt

from tests.api.conftest import PLATFORM, new_ids, today
from tests.api.rules import allowed_for, band_of, taken_by


def _at(seconds: int) -> str:
    return (dt.datetime.now() + dt.timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def _resident_without_commitments(tables, store, band: str, offset: int) -> str:
    part = store.read("participations")
    busy = set(part.loc[part["event"] != "view", "resident_id"])
    res = tables["residents"]
    return [r for r, y in zip(res["resident_id"], res["birth_year"])
            if band_of(y, today()) == band and r not in busy][offset]


def test_view_keeps_a_course_enroll_removes_it_cancel_restores_it(client, store, tables,
                                                                   service):
    rid = _resident_without_commitments(tables, store, "working_age", 7)
    url = f"/v1/residents/{rid}/recommendations"
    course = client.get(url, headers=PLATFORM).json()["items"][0]
    params = {"k": 100, "category": course["category"]}

    def listed() -> set[str]:
        r = client.get(url, params=params, headers=PLATFORM)
        assert r.status_code == 200, r.text
        return {i["course_id"] for i in r.json()["items"]}

    def post(event: str, seconds: int) -> None:
        r = client.post("/v1/events", json={"events": [{
            "event_id": new_ids(f"E-commit-{event}", 1)[0], "resident_id": rid,
            "course_id": course["course_id"], "event": event, "occurred_at": _at(seconds)}]},
            headers=PLATFORM)
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    assert course["course_id"] in listed()
    post("view", 0)
    assert course["course_id"] in service.holder.snapshot().engine.seen(rid)  # in the history
    assert course["course_id"] not in service.taken(rid)
    assert course["course_id"] in listed()  # still eligible (it may have moved)
    post("enroll", 1)
    assert course["course_id"] in service.taken(rid)
    assert course["course_id"] not in listed()
    post("cancel", 2)
    assert course["course_id"] not in service.taken(rid)
    assert course["course_id"] in listed()  # eligible again
    # And the default (diversified) list still offers it after the cancelled enrolment, when
    # it is among the resident's best allowed courses of its category.
    items = client.get(url, params={"k": 100}, headers=PLATFORM).json()["items"]
    assert course["course_id"] in {i["course_id"] for i in items}


def test_courses_viewed_in_the_history_are_still_offered(client, store, tables, service):
    """Residents whose history holds views of courses still on offer get those courses in
    their full lists, exactly as the rules (commitments only) say."""
    frames = (store.read("courses"), store.read("participations"))
    part = frames[1]
    engine = service.holder.snapshot().engine
    res = tables["residents"].set_index("resident_id")
    checked = 0
    for rid in part.loc[part["event"] == "view", "resident_id"].unique()[:80]:
        household = res.loc[rid, "household_id"]
        mates = res[(res["household_id"] == household) & (res.index != rid)]
        children = ([band_of(y, today()) for y in mates["birth_year"]]
                    if isinstance(household, str) else [])
        taken = taken_by(part, rid)
        allowed = allowed_for(store, today(), band=band_of(res.loc[rid, "birth_year"], today()),
                              child_bands=children, taken=taken, frames=frames)
        if not engine.seen(rid) & allowed or len(allowed) > 100:
            continue  # no viewed course on offer, or more than one full list
        r = client.get(f"/v1/residents/{rid}/recommendations", params={"k": 100},
                       headers=PLATFORM)
        assert {i["course_id"] for i in r.json()["items"]} == allowed, rid
        checked += 1
    assert checked > 0

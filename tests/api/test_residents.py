"""PUT /v1/residents/{id}: the platform registers a resident the store lacks (201) or updates one
(200), checked like the importer checks a residents row; their events count from then on and
their next list starts from the profile."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.api.conftest import COORDINATOR, PLATFORM, new_ids, today


def _now() -> str:
    return dt.datetime.now().replace(microsecond=0).isoformat()


def test_register_then_update_idempotently(client, store):
    rid = new_ids("Rput", 1)[0]
    profile = {"birth_year": today().year - 4, "community_id": "C01", "household_id": "H-put"}
    first = client.put(f"/v1/residents/{rid}", json=profile, headers=PLATFORM)
    assert first.status_code == 201, first.text
    assert first.json() == {"resident_id": rid, "birth_year": today().year - 4, "gender": None,
                            "community_id": "C01", "household_id": "H-put",
                            "registered_at": first.json()["registered_at"],
                            "birth_year_estimated": False, "age_band": "preschool",
                            "interests": []}
    again = client.put(f"/v1/residents/{rid}", json=profile, headers=PLATFORM)
    assert again.status_code == 200 and again.json() == first.json()
    moved = client.put(f"/v1/residents/{rid}", json={**profile, "community_id": "C02",
                                                     "gender": "F", "household_id": None},
                       headers=PLATFORM)
    assert moved.status_code == 200
    assert moved.json() == {**first.json(), "community_id": "C02", "gender": "F",
                            "household_id": None}
    assert store.resident(rid)["community_id"] == "C02"


def test_a_new_residents_events_count_and_their_list_uses_the_profile(client, store, tables):
    rid = new_ids("Rnewbie", 1)[0]
    course = tables["courses"]["course_id"].iloc[7]
    event = {"resident_id": rid, "course_id": course, "event": "view", "occurred_at": _now()}
    before = client.post("/v1/events", json={"events": [{**event, "event_id": new_ids(
        "E-newbie", 1)[0]}]}, headers=PLATFORM).json()
    assert [(x["field"], x["reason"]) for x in before["rejections"]] == [
        ("resident_id", "unknown resident_id: not in residents")]
    listed = client.get(f"/v1/residents/{rid}/recommendations", headers=PLATFORM).json()
    assert listed["cold_start"] and listed["age_band"] is None

    r = client.put(f"/v1/residents/{rid}", json={"birth_year": today().year - 72,
                                                  "community_id": "C03"}, headers=PLATFORM)
    assert r.status_code == 201, r.text
    eid = new_ids("E-newbie", 1)[0]
    after = client.post("/v1/events", json={"events": [{**event, "event_id": eid}]},
                        headers=PLATFORM).json()
    assert after["accepted"] == 1 and not after["rejections"]
    assert store.existing_keys("participations", [eid]) == {eid}
    listed = client.get(f"/v1/residents/{rid}/recommendations", headers=PLATFORM).json()
    assert listed["cold_start"] and listed["age_band"] == "elderly"
    assert listed["items"] and all("elderly" in i["target_bands"] for i in listed["items"])


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"community_id": "C01"}, "body.birth_year", "birth_year or age_band is required"),
    ({"birth_year": "1958", "community_id": "C01"}, "body.birth_year",
     "birth_year must be an integer"),
    ({"birth_year": True, "community_id": "C01"}, "body.birth_year",
     "birth_year must be an integer"),
    ({"birth_year": 1958.5, "community_id": "C01"}, "body.birth_year",
     "birth_year is not an integer"),
    ({"birth_year": 1850, "community_id": "C01"}, "body.birth_year",
     "birth_year must be at least 1900"),
    ({"birth_year": 2999, "community_id": "C01"}, "body.birth_year",
     "birth_year must be at most 2100"),
    ({"birth_year": 1958, "community_id": "C99"}, "body.community_id",
     "unknown community_id: not in communities"),
    ({"birth_year": 1958}, "body.community_id", "community_id is required"),
    ({"birth_year": 1958, "community_id": "C01", "gender": "female"}, "body.gender",
     "gender must be one of: F, M, X"),
    ({"birth_year": 1958, "community_id": "C01", "household_id": " H1"}, "body.household_id",
     "household_id has spaces around it"),
])
def test_a_bad_profile_is_refused_naming_the_field(client, store, body, field, reason):
    rid = new_ids("Rbad", 1)[0]
    r = client.put(f"/v1/residents/{rid}", json=body, headers=PLATFORM)
    assert r.status_code == 422, r.text
    assert r.json() == {"error": "invalid_request", "detail": [{"field": field,
                                                                "reason": reason}]}
    assert store.resident(rid) is None


def test_fields_that_are_not_stored_and_roles(client):
    rid = new_ids("Rrole", 1)[0]
    body = {"birth_year": 1958, "community_id": "C01"}
    r = client.put(f"/v1/residents/{rid}", json={**body, "registered_at": "2020-01-01"},
                   headers=PLATFORM)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body.registered_at"
    assert client.put(f"/v1/residents/{rid}", json=body).status_code == 401
    assert client.put(f"/v1/residents/{rid}", json=body, headers=COORDINATOR).status_code == 403
    r = client.put("/v1/residents/R%20bad", json=body, headers=PLATFORM)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "path.resident_id"

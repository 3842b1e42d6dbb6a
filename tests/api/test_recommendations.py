"""Resident, profile, household and similar-course recommendations, checked against the
business rules computed independently from the store (tests/api/rules.py)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from recommender.domain import CATEGORIES
from tests.api.conftest import PLATFORM, new_ids, today
from tests.api.rules import CHILD, allowed_for, band_of, is_family, taken_by


def _residents(tables) -> pd.DataFrame:
    res = tables["residents"].copy()
    res["band"] = [band_of(y, today()) for y in res["birth_year"]]
    return res


def _household_children(res: pd.DataFrame, resident_id: str) -> list[str]:
    me = res.set_index("resident_id").loc[resident_id]
    if pd.isna(me["household_id"]):
        return []
    mates = res[(res["household_id"] == me["household_id"]) & (res["resident_id"] != resident_id)]
    return list(mates["band"])


@pytest.fixture(scope="module")
def sample(tables):
    """One resident of each band, plus an adult living with a preschooler."""
    res = _residents(tables)
    picks = {band: res[res["band"] == band]["resident_id"].iloc[3] for band in res["band"].unique()}
    kids = res[res["band"] == "preschool"]["household_id"].dropna()
    carers = res[res["household_id"].isin(kids) & res["band"].isin(["working_age", "elderly"])]
    picks["carer"] = carers["resident_id"].iloc[0]
    return res, picks


def _expected(store, res, resident_id, category=None, frames=None):
    """The rules' courses: only commitments take a course, so a course the resident merely
    viewed (in the engine's history) is still offered."""
    frames = frames or (store.read("courses"), store.read("participations"))
    band = res.set_index("resident_id").loc[resident_id, "band"]
    taken = taken_by(frames[1], resident_id)
    return allowed_for(store, today(), band=band, child_bands=_household_children(res, resident_id),
                       taken=taken, category=category, frames=frames)


def test_each_category_list_is_exactly_the_allowed_courses(client, store, sample):
    res, picks = sample
    frames = (store.read("courses"), store.read("participations"))
    for who, resident_id in picks.items():
        for category in CATEGORIES:
            r = client.get(f"/v1/residents/{resident_id}/recommendations",
                           params={"k": 100, "category": category}, headers=PLATFORM)
            assert r.status_code == 200, r.text
            got = {item["course_id"] for item in r.json()["items"]}
            expected = _expected(store, res, resident_id, category, frames)
            assert got == expected, (who, category)


def test_default_list_shape_rules_and_diversity(client, store, sample):
    res, picks = sample
    courses = store.read("courses").set_index("course_id")
    for resident_id in picks.values():
        r = client.get(f"/v1/residents/{resident_id}/recommendations", headers=PLATFORM)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["resident_id"] == resident_id and body["known"] and not body["cold_start"]
        items = body["items"]
        allowed = _expected(store, res, resident_id)
        per_cat = Counter(courses.loc[c, "category"] for c in allowed)
        # Diversity reorders, it never shortens the list.
        assert len(items) == min(10, len(allowed))
        assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
        assert {i["course_id"] for i in items} <= allowed
        scores = [i["score"] for i in items]
        if sum(min(5, n) for n in per_cat.values()) >= 10:  # enough others: the cap holds
            assert max(Counter(i["category"] for i in items).values()) <= 5
            assert scores == sorted(scores, reverse=True)
        for item in items:
            course = courses.loc[item["course_id"]]
            assert item["title"] == course["title"] and item["category"] == course["category"]
            assert item["seats_left"] > 0
            assert item["venue"]["community_id"] == course["community_id"]
            assert item["schedule"]["end_date"] > today().isoformat()
            assert item["reasons"], item  # explain defaults to true


def test_family_course_fits_the_adult_of_a_household_with_a_child(client, store, sample):
    res, picks = sample
    carer = picks["carer"]
    band = res.set_index("resident_id").loc[carer, "band"]
    courses = store.read("courses").set_index("course_id")
    r = client.get(f"/v1/residents/{carer}/recommendations",
                   params={"k": 100, "category": "handicraft"}, headers=PLATFORM)
    got = {i["course_id"] for i in r.json()["items"]}
    via_child = {c for c in got if band not in courses.loc[c, "target_bands"].split("|")}
    for c in via_child:  # offered only because a child of the household fits it
        assert is_family(courses.loc[c]) and set(courses.loc[c, "target_bands"].split("|")) & CHILD
    expected_via_child = {c for c in _expected(store, res, carer, "handicraft")
                          if band not in courses.loc[c, "target_bands"].split("|")}
    assert via_child == expected_via_child


def test_category_filter_lifts_the_half_cap_and_explain_false(client, sample):
    _, picks = sample
    r = client.get(f"/v1/residents/{picks['elderly']}/recommendations",
                   params={"k": 8, "category": "interest", "explain": "false"}, headers=PLATFORM)
    body = r.json()
    assert r.status_code == 200 and body["category"] == "interest"
    assert len(body["items"]) > 4  # more than half of k from one category, as asked
    assert all(i["category"] == "interest" and i["reasons"] == [] for i in body["items"])


def test_unknown_resident_gets_a_cold_start_list(client):
    r = client.get("/v1/residents/R-never-seen-42/recommendations", headers=PLATFORM)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cold_start"] and not body["known"] and body["age_band"] is None
    assert len(body["items"]) == 10 and all(i["cold_start"] for i in body["items"])


def test_resident_registered_after_training_is_cold_start_for_their_band(client, store):
    rid = new_ids("Rnew", 1)[0]
    store.insert("residents", pd.DataFrame([{
        "resident_id": rid, "birth_year": today().year - 70, "community_id": "C01",
        "registered_at": today()}]))
    body = client.get(f"/v1/residents/{rid}/recommendations", headers=PLATFORM).json()
    assert body["cold_start"] and body["age_band"] == "elderly"
    assert body["items"] and all("elderly" in i["target_bands"] for i in body["items"])


def test_profile_recommendations(client, store):
    body = {"birth_year": today().year - 8, "community_id": "C03", "interests": ["非遗", "剪纸"]}
    r = client.post("/v1/recommendations", json=body, headers=PLATFORM)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["cold_start"] and out["age_band"] == "school_age"
    assert out["items"] and all("school_age" in i["target_bands"] for i in out["items"])
    assert {i["course_id"] for i in out["items"]} <= allowed_for(store, today(), band="school_age")
    out = client.post("/v1/recommendations", json={"age_band": "working_age", "k": 3,
                                                   "category": "skills"}, headers=PLATFORM).json()
    assert len(out["items"]) == 3 and {i["category"] for i in out["items"]} == {"skills"}


@pytest.mark.parametrize("body, field", [
    ({"birth_year": 1950, "age_band": "preschool"}, "body.age_band"),
    ({"community_id": "C99"}, "body.community_id"),
    ({"age_band": "teen"}, "body.age_band"),
    ({"birth_year": 1800}, "body.birth_year"),
    ({"k": 0}, "body.k"),
    ({"nickname": "x"}, "body.nickname"),
    ({"interests": ["x" * 65]}, "body.interests.0"),
])
def test_profile_errors_name_the_field(client, body, field):
    r = client.post("/v1/recommendations", json=body, headers=PLATFORM)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert field in [d["field"] for d in r.json()["detail"]]


def test_household_courses_members_attend_together(client, sample):
    res, picks = sample
    household = res.set_index("resident_id").loc[picks["carer"], "household_id"]
    members = res[res["household_id"] == household].set_index("resident_id")["band"]
    r = client.get(f"/v1/households/{household}/recommendations", headers=PLATFORM)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {m["resident_id"] for m in body["members"]} == set(members.index)
    assert body["items"], "a carer + preschooler household has courses to share"
    for item in body["items"]:
        who = item["for_members"]
        assert len(who) >= 2 and item["seats_left"] >= len(who)
        for w in who:
            fits = members[w["resident_id"]] in item["target_bands"]
            assert w["role"] == ("participant" if fits else "carer")
        if any(w["role"] == "carer" for w in who):
            assert set(item["target_bands"]) & CHILD


def test_unknown_household_is_404(client):
    r = client.get("/v1/households/H-nobody/recommendations", headers=PLATFORM)
    assert r.status_code == 404
    assert r.json()["detail"][0]["field"] == "path.household_id"


def test_similar_courses(client, store):
    courses = store.read("courses")
    course = courses["course_id"].iloc[5]
    r = client.get(f"/v1/courses/{course}/similar", params={"k": 5}, headers=PLATFORM)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert 0 < len(items) <= 5 and course not in {i["course_id"] for i in items}
    open_now = allowed_for(store, today())
    assert {i["course_id"] for i in items} <= open_now
    r = client.get(f"/v1/courses/{course}/similar",
                   params={"k": 20, "available_only": "false"}, headers=PLATFORM)
    assert len(r.json()["items"]) == 20
    r = client.get("/v1/courses/K-none/similar", headers=PLATFORM)
    assert r.status_code == 404 and r.json()["detail"][0]["field"] == "path.course_id"


@pytest.mark.parametrize("url, field", [
    ("/v1/residents/R000001/recommendations?k=0", "query.k"),
    ("/v1/residents/R000001/recommendations?k=101", "query.k"),
    ("/v1/residents/R000001/recommendations?k=ten", "query.k"),
    ("/v1/residents/R000001/recommendations?category=cooking", "query.category"),
    ("/v1/residents/R000001/recommendations?explain=maybe", "query.explain"),
    ("/v1/residents/bad%20id!/recommendations", "path.resident_id"),
    (f"/v1/residents/{'R' * 65}/recommendations", "path.resident_id"),
    ("/v1/courses/K0001/similar?k=-1", "query.k"),
    ("/v1/households/H%2A/recommendations", "path.household_id"),
])
def test_bad_parameters_are_422_naming_the_field(client, url, field):
    r = client.get(url, headers=PLATFORM)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["detail"]] == [field]
    assert r.json()["detail"][0]["reason"]


def _listed(answer: dict) -> dict:
    """A list without its request id (every served list has its own)."""
    return {k: v for k, v in answer.items() if k != "request_id"}


def test_facts_read_apart_give_the_same_list(service, store, sample):
    # The route reads the store in the thread pool (resident_facts) and ranks on the event
    # loop; the service reading them itself must answer the same.
    rid = new_ids("Rfacts", 1)[0]
    store.insert("residents", pd.DataFrame([{
        "resident_id": rid, "birth_year": today().year - 9, "community_id": "C02",
        "registered_at": today()}]))
    _, picks = sample
    for resident in (picks["elderly"], rid):
        facts = service.resident_facts(resident)
        assert facts.read_row == (resident == rid)
        assert (_listed(service.for_resident(resident, facts=facts))
                == _listed(service.for_resident(resident)))
    assert service.resident_facts(rid).stored["birth_year"] == today().year - 9


def test_household_taken_read_apart_gives_the_same_list(service, sample):
    res, picks = sample
    household = res.set_index("resident_id").loc[picks["carer"], "household_id"]
    taken = service.household_taken(household)
    assert set(taken) == set(res.loc[res["household_id"] == household, "resident_id"])
    assert (_listed(service.for_household(household, taken=taken))
            == _listed(service.for_household(household)))

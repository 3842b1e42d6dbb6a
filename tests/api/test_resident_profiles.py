"""PUT /v1/residents/{id} with a declared profile: a band instead of a birth year, and interests
that steer the resident's next list (on SQLite and PostgreSQL, like every API test)."""

from __future__ import annotations

import pytest

from recommender.domain import AgeBands
from tests.api.conftest import PLATFORM, new_ids, today


def _put(client, rid: str, body: dict):
    return client.put(f"/v1/residents/{rid}", json=body, headers=PLATFORM)


def _list(client, rid: str, k: int = 20) -> list[dict]:
    r = client.get(f"/v1/residents/{rid}/recommendations", params={"k": k}, headers=PLATFORM)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _first_rank(items: list[dict], category: str) -> float:
    return next((i["rank"] for i in items if i["category"] == category), float("inf"))


def _latest_category(items: list[dict]) -> str:
    """The category whose best course stands lowest in a list (never the first course's)."""
    firsts: dict[str, int] = {}
    for item in items:
        firsts.setdefault(item["category"], item["rank"])
    assert len(firsts) > 1, "the list holds one category only"
    return max(firsts, key=firsts.get)


def test_a_resident_registered_by_band_alone(client, store):
    rid = new_ids("Rband", 1)[0]
    stand_in = AgeBands().central_birth_year("elderly", today())
    r = _put(client, rid, {"age_band": "elderly", "community_id": "C02"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["birth_year"], body["birth_year_estimated"], body["age_band"]) == (
        stand_in, True, "elderly")
    assert store.resident(rid)["birth_year"] == stand_in
    assert store.profile(rid)["age_band"] == "elderly"
    again = _put(client, rid, {"age_band": "elderly", "community_id": "C02"})
    assert again.status_code == 200 and again.json() == body
    listed = client.get(f"/v1/residents/{rid}/recommendations", headers=PLATFORM).json()
    assert listed["cold_start"] and listed["age_band"] == "elderly"
    assert listed["items"] and all("elderly" in i["target_bands"] for i in listed["items"])

    real = _put(client, rid, {"birth_year": today().year - 66, "community_id": "C02"})
    assert real.status_code == 200
    assert (real.json()["birth_year"], real.json()["birth_year_estimated"]) == (
        today().year - 66, False)
    assert store.profile(rid)["age_band"] is None


def test_a_band_with_a_birth_year_must_be_that_years_band(client, store):
    rid = new_ids("Rboth", 1)[0]
    ok = _put(client, rid, {"birth_year": today().year - 72, "age_band": "elderly",
                            "community_id": "C01"})
    assert ok.status_code == 201 and ok.json()["birth_year_estimated"] is False
    other = new_ids("Rboth", 1)[0]
    r = _put(client, other, {"birth_year": today().year - 30, "age_band": "elderly",
                             "community_id": "C01"})
    assert r.status_code == 422
    assert r.json()["detail"] == [{"field": "body.age_band", "reason": (
        f"'elderly' does not match birth_year {today().year - 30} (working_age)")}]
    assert store.resident(other) is None


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"interests": ["handicraft", "knitting"]}, "body.interests[1]",
     "interests[1] must be one of: handicraft, intangible_heritage, skills, interest"),
    ({"interests": ["skills", 3]}, "body.interests[1]",
     "interests[1] must be one of: handicraft, intangible_heritage, skills, interest"),
    ({"interests": ["skills", "skills"]}, "body.interests[1]", "interests[1] repeats 'skills'"),
    ({"interests": "skills"}, "body.interests", "interests must be a list of categories"),
    ({"age_band": "teen"}, "body.age_band",
     "age_band must be one of: preschool, school_age, working_age, elderly"),
])
def test_a_bad_declaration_is_refused_naming_the_field(client, store, body, field, reason):
    rid = new_ids("Rdecl", 1)[0]
    r = _put(client, rid, {"birth_year": 1958, "community_id": "C01", **body})
    assert r.status_code == 422, r.text
    assert r.json() == {"error": "invalid_request", "detail": [{"field": field,
                                                                "reason": reason}]}
    assert store.resident(rid) is None and store.profile(rid) is None


def test_declared_interests_move_their_category_up_a_new_residents_list(client, store):
    plain, keen = new_ids("Rkeen", 2)
    profile = {"birth_year": today().year - 70, "community_id": "C01"}
    assert _put(client, plain, profile).status_code == 201
    before = _list(client, plain)
    wanted = _latest_category(before)
    r = _put(client, keen, {**profile, "interests": [wanted]})
    assert r.status_code == 201 and r.json()["interests"] == [wanted]
    assert store.profile(keen)["interests"] == (wanted,)
    after = _list(client, keen)
    assert _first_rank(after, wanted) < _first_rank(before, wanted)
    assert any(reason["code"] == "interest_match" for item in after
               if item["category"] == wanted for reason in item["reasons"])
    # the interests are the profile's: sending the profile without them takes them away
    assert _put(client, keen, profile).status_code == 200
    assert [i["course_id"] for i in _list(client, keen)] == [i["course_id"] for i in before]


def test_declared_interests_apply_to_a_resident_the_model_knows(client, service, store, tables):
    engine = service.holder.snapshot().engine
    known = next(rid for rid in reversed(tables["residents"]["resident_id"].tolist())
                 if engine.context_for(rid) is not None)
    row = store.resident(known)
    profile = {"birth_year": row["birth_year"], "community_id": row["community_id"],
               "gender": row["gender"], "household_id": row["household_id"]}
    before = _list(client, known)
    wanted = _latest_category(before)
    try:
        r = _put(client, known, {**profile, "interests": [wanted]})
        assert r.status_code == 200, r.text
        listed = client.get(f"/v1/residents/{known}/recommendations", params={"k": 20},
                            headers=PLATFORM).json()
        assert listed["known"] and not listed["cold_start"]
        assert _first_rank(listed["items"], wanted) < _first_rank(before, wanted)
    finally:
        _put(client, known, profile)
    assert store.resident(known) == row
    assert [i["course_id"] for i in _list(client, known)] == [i["course_id"] for i in before]

"""Coordinators' decisions over HTTP: recording, listing, undoing, scoped keys, and their effect
on the next recommendations (at once, only for the cohort decided about)."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.settings import Settings
from tests.api.conftest import ADMIN, API_KEYS, COORDINATOR, PLATFORM, today
from tests.api.rules import band_of, is_family

PIN = {"code": "pinned_by_community", "params": {}, "text": "社区推荐"}
SCOPED = {"X-API-Key": "coord-scoped-key-1"}


@pytest.fixture(scope="module")
def cohorts(tables) -> pd.DataFrame:
    res = tables["residents"].copy()
    res["band"] = [band_of(y, today()) for y in res["birth_year"]]
    return res


@pytest.fixture(scope="module")
def home(cohorts) -> str:
    """The community a scoped coordinator key covers: the one with the most residents."""
    return cohorts["community_id"].value_counts().index[0]


@pytest.fixture(scope="module")
def dclient(db_url, artifacts, home):
    """An app on the shared district whose keys include one limited to ``home``."""
    keys = f"{API_KEYS},coordinator@{home}:{SCOPED['X-API-Key']}"
    app = create_app(Settings(database_url=db_url, artifacts_dir=artifacts, api_keys=keys))
    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def clean(dclient):
    """Every test starts and ends with no active decision (the store is shared)."""
    def undo_all():
        book = dclient.app.state.service.decisions
        for d in book.store.decisions():
            book.undo(d["decision_id"], by="test")
    undo_all()
    yield
    undo_all()


def _decide(c, community, band, course, action, headers=COORDINATOR, note="test"):
    return c.post(f"/v1/cohorts/{community}/{band}/decisions", headers=headers,
                  json={"course_id": course, "action": action, "note": note})


def _list(c, resident_id, k=10) -> list[dict]:
    r = c.get(f"/v1/residents/{resident_id}/recommendations", params={"k": k}, headers=PLATFORM)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _ids(items) -> list[str]:
    return [i["course_id"] for i in items]


def test_a_decision_is_recorded_listed_and_undone(dclient, tables, home):
    course = tables["courses"]["course_id"].iloc[0]
    r = _decide(dclient, home, "elderly", course, "approve", note="good for the elderly")
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["action"] == "approve" and made["decided_by"].startswith("coordinator:")
    assert COORDINATOR["X-API-Key"] not in r.text and made["undone_at"] is None
    listed = dclient.get(f"/v1/cohorts/{home}/elderly/decisions", headers=COORDINATOR).json()
    assert [d["decision_id"] for d in listed["decisions"]] == [made["decision_id"]]

    undone = dclient.delete(f"/v1/decisions/{made['decision_id']}", headers=ADMIN)
    assert undone.status_code == 200 and undone.json()["undone_by"].startswith("admin:")
    path = f"/v1/cohorts/{home}/elderly/decisions"
    assert dclient.get(path, headers=COORDINATOR).json()["decisions"] == []
    history = dclient.get(path, params={"include_undone": "true"}, headers=COORDINATOR).json()
    assert [d["decision_id"] for d in history["decisions"]] == [made["decision_id"]]
    assert history["decisions"][0]["undone_at"] is not None


def test_bad_decisions_are_named(dclient, tables, home):
    course = tables["courses"]["course_id"].iloc[0]
    for community, band, course_id, status, field in (
            ("NOPE", "elderly", course, 404, "community_id"),
            (home, "teenager", course, 404, "band"),
            (home, "elderly", "K-NOPE", 404, "course_id")):
        r = _decide(dclient, community, band, course_id, "pin")
        assert r.status_code == status, r.text
        assert r.json()["detail"][0]["field"].endswith(field)
    r = _decide(dclient, home, "elderly", course, "promote")
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body.action"
    assert dclient.delete("/v1/decisions/999999", headers=COORDINATOR).status_code == 404


def test_roles_and_scopes(dclient, tables, cohorts, home):
    course = tables["courses"]["course_id"].iloc[0]
    other = next(c for c in cohorts["community_id"].unique() if c != home)
    assert _decide(dclient, home, "all", course, "pin", headers=PLATFORM).status_code == 403
    assert _decide(dclient, home, "all", course, "pin", headers={}).status_code == 401
    # the scoped key: its own community yes; another one, or district-wide, no
    mine = _decide(dclient, home, "all", course, "approve", headers=SCOPED)
    assert mine.status_code == 201
    for community in (other, "all"):
        r = _decide(dclient, community, "all", course, "approve", headers=SCOPED)
        assert r.status_code == 403 and community in r.text and SCOPED["X-API-Key"] not in r.text
        assert dclient.get(f"/v1/cohorts/{community}/all/decisions",
                           headers=SCOPED).status_code == 403
    theirs = _decide(dclient, other, "all", course, "approve").json()["decision_id"]
    assert dclient.delete(f"/v1/decisions/{theirs}", headers=SCOPED).status_code == 403
    assert dclient.delete(f"/v1/decisions/{mine.json()['decision_id']}",
                          headers=SCOPED).status_code == 200
    # district-wide decisions: unscoped coordinators and admins
    assert _decide(dclient, "all", "all", course, "approve", headers=ADMIN).status_code == 201


def test_coordinators_never_see_one_residents_list(dclient, cohorts):
    resident = cohorts["resident_id"].iloc[0]
    for headers in (COORDINATOR, SCOPED):
        r = dclient.get(f"/v1/residents/{resident}/recommendations", headers=headers)
        assert r.status_code == 403
        household = cohorts["household_id"].dropna().iloc[0]
        assert dclient.get(f"/v1/households/{household}/recommendations",
                           headers=headers).status_code == 403


def _three(cohorts, home, band="elderly"):
    """A resident of (home, band), one of another community with that band, and one of home
    with another band."""
    me = cohorts[(cohorts["community_id"] == home) & (cohorts["band"] == band)]
    away = cohorts[(cohorts["community_id"] != home) & (cohorts["band"] == band)]
    other_band = cohorts[(cohorts["community_id"] == home) & (cohorts["band"] != band)]
    return [frame["resident_id"].iloc[0] for frame in (me, away, other_band)]


def test_a_rejection_and_a_pin_steer_only_their_cohort(dclient, cohorts, home):
    me, away, other_band = _three(cohorts, home)
    before = {r: _list(dclient, r, k=20) for r in (me, away, other_band)}
    mine = _ids(before[me])
    assert len(mine) >= 8, "the resident needs a list to steer"

    rejected = mine[0]
    assert _decide(dclient, home, "elderly", rejected, "reject").status_code == 201
    after = _ids(_list(dclient, me, k=20))
    # the rest stays (a course the category cap kept out may now come in)
    assert rejected not in after and set(mine[1:]) <= set(after)

    pinned = mine[6]  # allowed for the resident, not in the first five
    assert _decide(dclient, home, "elderly", pinned, "pin").status_code == 201
    top = _list(dclient, me, k=5)
    assert top[0]["course_id"] == pinned and top[0]["reasons"][0] == PIN
    assert rejected not in _ids(top)
    for r in (away, other_band):
        assert _list(dclient, r, k=20) == before[r]


def test_a_pin_never_adds_a_course_the_rules_refuse(dclient, tables, cohorts, home):
    me, *_ = _three(cohorts, home)
    courses = tables["courses"]
    # not for the elderly, and not a family course an elderly carer could attend
    family = courses.apply(is_family, axis=1)
    wrong_band = courses[~courses["target_bands"].str.contains("elderly") & ~family]["course_id"]
    for course in wrong_band.iloc[:3]:
        assert _decide(dclient, home, "elderly", course, "pin").status_code == 201
    items = _list(dclient, me, k=20)
    assert not set(_ids(items)) & set(wrong_band)
    assert all(r["code"] != PIN["code"] for i in items for r in i["reasons"])


def test_undo_restores_the_list_and_wildcards_reach_every_cohort(dclient, cohorts, home):
    me, away, other_band = _three(cohorts, home)
    before = {r: _ids(_list(dclient, r, k=20)) for r in (me, away, other_band)}
    course = before[away][0]
    made = _decide(dclient, "all", "elderly", course, "reject").json()["decision_id"]
    assert course not in _ids(_list(dclient, away, k=20))
    assert course not in _ids(_list(dclient, me, k=20))
    assert _ids(_list(dclient, other_band, k=20)) == before[other_band]
    dclient.delete(f"/v1/decisions/{made}", headers=COORDINATOR)
    assert {r: _ids(_list(dclient, r, k=20)) for r in before} == before


def test_approve_changes_no_list(dclient, cohorts, home):
    me, *_ = _three(cohorts, home)
    before = _list(dclient, me, k=10)
    for course in _ids(before)[:3]:
        _decide(dclient, home, "elderly", course, "approve")
    assert _list(dclient, me, k=10) == before


def test_profiles_with_a_community_follow_its_decisions(dclient, cohorts, home):
    other = next(c for c in cohorts["community_id"].unique() if c != home)
    bodies = [{"age_band": "elderly", "community_id": c, "k": 10} for c in (home, other)]
    bodies.append({"age_band": "elderly", "k": 10})  # no community: no cohort decisions

    def lists():
        return [dclient.post("/v1/recommendations", json=b, headers=PLATFORM).json()["items"]
                for b in bodies]

    before = lists()
    course = before[0][0]["course_id"]
    _decide(dclient, home, "elderly", course, "reject")
    after = lists()
    assert course not in _ids(after[0])
    assert after[1:] == before[1:]


def test_households_follow_their_members_decisions(dclient):
    service = dclient.app.state.service
    households = list(service.holder.snapshot().households)
    found = None
    for household in households:
        r = dclient.get(f"/v1/households/{household}/recommendations", headers=PLATFORM).json()
        if len(r.get("items", [])) >= 3:
            found = household, r
            break
    assert found, "some household needs a shared list"
    household, before = found
    first, third = before["items"][0]["course_id"], before["items"][2]["course_id"]
    _decide(dclient, "all", "all", first, "reject")
    _decide(dclient, "all", "all", third, "pin")
    after = dclient.get(f"/v1/households/{household}/recommendations", headers=PLATFORM).json()
    assert first not in _ids(after["items"])
    assert after["items"][0]["course_id"] == third and after["items"][0]["reasons"][0] == PIN


def test_another_workers_decision_shows_within_the_ttl(dclient, tables, home):
    from recommender.serving.decisions import DecisionBook

    store = dclient.app.state.service.store
    now = [0.0]
    worker = DecisionBook(store, ttl=1.0, clock=lambda: now[0])
    course = tables["courses"]["course_id"].iloc[0]
    assert not worker.effects(home, "elderly")
    _decide(dclient, home, "elderly", course, "reject")  # another process's book
    now[0] = 0.5
    assert not worker.effects(home, "elderly")  # the cached read, at most a second old
    now[0] = 1.0
    assert worker.effects(home, "elderly").rejected == {course}
    assert not worker.effects(home, "working_age") and not worker.effects("X", "elderly")


# -- decisions and scopes in the cohort suggestions -----------------------------------------------


def _suggested(client, key, community, band):
    r = client.get(f"/v1/cohorts/{community}/{band}/suggestions?limit=200",
                   headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return {i["course_id"]: i for i in r.json()["items"]}


def test_a_scoped_key_sees_only_its_communities_cohorts(dclient, cohorts, home):
    other = next(c for c in cohorts["community_id"].unique() if c != home)
    listed = dclient.get("/v1/cohorts", headers=SCOPED).json()["cohorts"]
    assert listed and {c["community_id"] for c in listed} == {home}
    everyone = dclient.get("/v1/cohorts", headers=COORDINATOR).json()["cohorts"]
    assert {other, "all"} <= {c["community_id"] for c in everyone}
    for path in ("suggestions", "suggestions.csv", "analytics"):
        assert dclient.get(f"/v1/cohorts/{home}/all/{path}", headers=SCOPED).status_code == 200
        for community in (other, "all"):
            r = dclient.get(f"/v1/cohorts/{community}/all/{path}", headers=SCOPED)
            assert r.status_code == 403 and community in r.text, path
            assert SCOPED["X-API-Key"] not in r.text


def test_suggestions_show_decisions_and_leave_rejected_courses_out(dclient, home):
    before = _suggested(dclient, COORDINATOR["X-API-Key"], home, "all")
    assert len(before) >= 3 and all(i["decision"] is None for i in before.values())
    rejected, pinned, approved = list(before)[:3]
    _decide(dclient, home, "all", rejected, "reject")
    _decide(dclient, "all", "all", pinned, "pin")  # district-wide: reaches this cohort too
    _decide(dclient, home, "all", approved, "approve")
    after = _suggested(dclient, COORDINATOR["X-API-Key"], home, "all")
    assert rejected not in after
    assert after[pinned]["decision"]["action"] == "pin"
    assert after[approved]["decision"]["action"] == "approve"
    csv = dclient.get(f"/v1/cohorts/{home}/all/suggestions.csv?limit=200",
                      headers=COORDINATOR).content.decode("utf-8-sig")
    assert rejected not in csv and ",pin" in csv and ",approve" in csv

"""The coordinators' review page over HTTP: sign-in and its cookie, who may see the page, CSRF,
suppressed figures, scoped keys, and decisions made on the page (seen by the JSON routes)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.coordinator_page import KEY_COOKIE, SUPPRESSED_TEXT
from recommender.settings import Settings
from tests.api.conftest import API_KEYS, COORDINATOR, KEYS, today
from tests.api.rules import band_of

SCOPED_KEY = "coord-page-scoped-1"


@pytest.fixture(scope="module")
def home(tables) -> str:
    """The community the scoped key covers: the one with the most residents."""
    return tables["residents"]["community_id"].value_counts().index[0]


@pytest.fixture(scope="module")
def app(db_url, artifacts, home):
    keys = f"{API_KEYS},coordinator@{home}:{SCOPED_KEY}"
    app = create_app(Settings(database_url=db_url, artifacts_dir=artifacts, api_keys=keys))
    with TestClient(app):  # the lifespan: store open, model loaded, for every browser below
        yield app


@pytest.fixture(autouse=True)
def clean(app):
    """No active decision before or after a test (the store is shared)."""
    def undo_all():
        book = app.state.service.decisions
        for d in book.store.decisions():
            book.undo(d["decision_id"], by="test")
    undo_all()
    yield
    undo_all()


def browser(app) -> TestClient:
    """A fresh browser: its own cookie jar, redirects not followed."""
    return TestClient(app, follow_redirects=False)


def token(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "every form carries a CSRF token"
    return found.group(1)


def sign_in(app, key: str):
    b = browser(app)
    form = b.get("/coordinator/login")
    assert form.status_code == 200
    return b, b.post("/coordinator/login", data={"key": key, "csrf": token(form.text)})


def signed_in(app, key: str = KEYS["coordinator"]) -> TestClient:
    b, r = sign_in(app, key)
    assert r.status_code == 303 and r.headers["location"] == "/coordinator", r.text
    return b


def test_sign_in_keeps_the_key_in_an_httponly_strict_cookie(app):
    b, r = sign_in(app, KEYS["coordinator"])
    assert r.status_code == 303
    cookies = [c for c in r.headers.get_list("set-cookie") if c.startswith(f"{KEY_COOKIE}=")]
    assert len(cookies) == 1
    attributes = cookies[0].lower()
    assert "httponly" in attributes and "samesite=strict" in attributes
    assert "path=/coordinator" in attributes and "secure" not in attributes  # plain http here
    page = b.get("/coordinator")
    assert page.status_code == 200 and "课程建议" in page.text
    assert 'name="viewport"' in page.text and "<svg" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing loaded from away
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # signing out clears the cookie: the page sends the browser back to the form
    out = b.post("/coordinator/logout", data={"csrf": token(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/coordinator/login"
    assert b.get("/coordinator").status_code == 303


def test_over_https_the_cookies_are_secure(app):
    b = TestClient(app, base_url="https://testserver", follow_redirects=False)
    form = b.get("/coordinator/login")
    r = b.post("/coordinator/login", data={"key": KEYS["admin"], "csrf": token(form.text)})
    assert r.status_code == 303
    cookies = r.headers.get_list("set-cookie")
    assert cookies and all("secure" in c.lower() for c in cookies)
    assert b.get("/coordinator").status_code == 200  # admins may review too


def test_no_key_a_wrong_key_or_a_platform_key_cannot_see_the_page(app):
    r = browser(app).get("/coordinator")
    assert r.status_code == 303 and r.headers["location"] == "/coordinator/login"
    b, wrong = sign_in(app, "not-a-key-42")
    assert wrong.status_code == 401 and "密钥无效" in wrong.text
    assert "not-a-key-42" not in wrong.text and KEY_COOKIE not in str(wrong.headers)
    assert b.get("/coordinator").status_code == 303
    _, platform = sign_in(app, KEYS["platform"])
    assert platform.status_code == 403 and KEYS["platform"] not in platform.text
    forged = browser(app)
    forged.cookies.set(KEY_COOKIE, KEYS["platform"], path="/coordinator")
    r = forged.get("/coordinator")
    assert r.status_code == 403 and "课程建议" not in r.text


def test_a_post_without_a_valid_csrf_token_is_refused(app, tables, home):
    b = signed_in(app)
    course = tables["courses"]["course_id"].iloc[0]
    form = {"community": home, "band": "all", "course_id": course, "action": "pin"}
    for csrf in (None, "0" * 64, token(browser(app).get("/coordinator/login").text)):
        data = form if csrf is None else {**form, "csrf": csrf}
        r = b.post("/coordinator/decisions", data=data)
        assert r.status_code == 403, csrf
    assert app.state.service.decisions.listed(home, "all") == []
    # the login form too
    assert browser(app).post("/coordinator/login",
                             data={"key": KEYS["coordinator"]}).status_code == 403
    assert b.post("/coordinator/logout", data={}).status_code == 403


def test_a_small_cohort_shows_the_suppression_text_not_a_number(app, tables):
    b = signed_in(app)
    listed = b.get("/v1/cohorts", headers=COORDINATOR).json()["cohorts"]
    res = tables["residents"].assign(
        band=[band_of(y, today()) for y in tables["residents"]["birth_year"]])
    sizes = res.groupby(["community_id", "band"]).size()
    small = [(c["community_id"], c["band"]) for c in listed
             if c["residents"] == {"suppressed": True} and c["community_id"] != "all"
             and 0 < sizes.get((c["community_id"], c["band"]), 0) < 10]
    assert small, "the district needs a cohort of fewer than 10 residents"
    community, band = small[0]
    page = b.get("/coordinator", params={"community": community, "band": band})
    assert page.status_code == 200
    assert f'居民人数：<b><span class="hidden-figure">{SUPPRESSED_TEXT}</span></b>' in page.text
    assert 'class="suggestions"' not in page.text and "<tr class=\"decision\"" not in page.text
    # no figure of these few residents appears: not the size, not a rate
    assert f"居民人数：<b>{sizes[(community, band)]}" not in page.text
    assert "完成率：<span class=\"hidden-figure\">" in page.text


def test_a_scoped_key_sees_and_acts_only_on_its_communities(app, tables, home):
    b = signed_in(app, SCOPED_KEY)
    page = b.get("/coordinator")
    assert page.status_code == 200
    options = re.findall(r'<option value="([^"]+)"', page.text.split('id="band"')[0])
    assert options == [home]
    other = next(c for c in tables["communities"]["community_id"] if c != home)
    for community in (other, "all"):
        r = b.get("/coordinator", params={"community": community, "band": "all"})
        assert r.status_code == 403 and community in r.text and SCOPED_KEY not in r.text
    course = tables["courses"]["course_id"].iloc[0]
    r = b.post("/coordinator/decisions", data={"community": other, "band": "all",
                                               "course_id": course, "action": "pin",
                                               "csrf": token(page.text)})
    assert r.status_code == 403
    assert app.state.service.decisions.listed(other, "all") == []


def test_a_pin_on_the_page_is_listed_there_and_in_the_json_route(app, home):
    b = signed_in(app)
    page = b.get("/coordinator", params={"community": home, "band": "all", "horizon": "30"})
    assert page.status_code == 200
    course = re.search(r'<tr id="course-([^"]+)">', page.text).group(1)
    r = b.post("/coordinator/decisions", data={
        "csrf": token(page.text), "community": home, "band": "all", "horizon": "30",
        "course_id": course, "action": "pin", "note": "社区老师推荐 <b>"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/coordinator?community={home}&band=all&horizon=30#decisions"
    after = b.get(r.headers["location"])
    assert f'data-course="{course}" data-action="pin"' in after.text
    assert "社区老师推荐 &lt;b&gt;" in after.text  # escaped, never markup
    listed = b.get(f"/v1/cohorts/{home}/all/decisions", headers=COORDINATOR).json()
    assert [(d["course_id"], d["action"], d["note"]) for d in listed["decisions"]] == [
        (course, "pin", "社区老师推荐 <b>")]
    assert listed["decisions"][0]["decided_by"].startswith("coordinator:")
    suggested = b.get(f"/v1/cohorts/{home}/all/suggestions?limit=200", headers=COORDINATOR)
    assert {i["course_id"]: i["decision"] for i in suggested.json()["items"]}[course][
        "action"] == "pin"
    # undo from the page: gone from both
    decision_id = listed["decisions"][0]["decision_id"]
    undone = b.post(f"/coordinator/decisions/{decision_id}/undo",
                    data={"csrf": token(after.text), "horizon": "30"})
    assert undone.status_code == 303
    assert 'data-action="pin"' not in b.get(undone.headers["location"]).text
    assert b.get(f"/v1/cohorts/{home}/all/decisions",
                 headers=COORDINATOR).json()["decisions"] == []


def test_bad_input_gets_a_page_not_a_crash(app, home):
    b = signed_in(app)
    csrf = token(b.get("/coordinator").text)
    assert b.get("/coordinator", params={"community": "NOPE", "band": "all"}).status_code == 404
    assert b.get("/coordinator", params={"community": home, "band": "teen"}).status_code == 404
    r = b.post("/coordinator/decisions", data={"csrf": csrf, "community": home, "band": "all",
                                               "course_id": "K-NOPE", "action": "pin"})
    assert r.status_code == 404 and "K-NOPE" in r.text
    r = b.post("/coordinator/decisions", data={"csrf": csrf, "community": home, "band": "all",
                                               "course_id": "K-NOPE", "action": "promote"})
    assert r.status_code == 422

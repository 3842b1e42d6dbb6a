"""The coordinators' read routes over HTTP, on the session's real trained artifact: cohorts,
suggestions (JSON and CSV), analytics, the suppression rule on each, roles, 404 / 422, and the
409 of a model without calibration."""

from __future__ import annotations

import copy
import csv
import io

import pytest

from recommender.serving.cohorts import CohortService
from tests.api.conftest import ADMIN, COORDINATOR, PLATFORM

SUPPRESSED = {"suppressed": True}


def _counts(value):
    """Every integer count in a JSON body (figures, not ranks or capacities)."""
    if isinstance(value, dict):
        for key, v in value.items():
            if key in ("rank", "capacity", "seats_left", "horizon_days", "weekday",
                       "households", "learning_across_generations"):  # households, not people
                continue
            yield from _counts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _counts(v)
    elif isinstance(value, int) and not isinstance(value, bool):
        yield value


@pytest.fixture(scope="module")
def cohorts(client):
    body = client.get("/v1/cohorts", headers=COORDINATOR).json()
    return {(c["community_id"], c["band"]): c for c in body["cohorts"]}


def _big(cohorts, community_wide: bool = False):
    return next(k for k, c in cohorts.items() if c["residents"] != SUPPRESSED
                and k[0] != "all" and (k[1] == "all") == community_wide)


def _small(cohorts):
    return next(k for k, c in cohorts.items() if c["residents"] == SUPPRESSED and k[0] != "all")


def test_cohorts_list_sizes_and_suppression(client, cohorts):
    assert ("all", "all") in cohorts and ("all", "elderly") in cohorts
    sizes = [c["residents"] for c in cohorts.values()]
    assert SUPPRESSED in sizes
    assert all(s == SUPPRESSED or s >= 10 for s in sizes)
    district = cohorts[("all", "all")]["residents"]
    bands = sum(cohorts[("all", b)]["residents"] for b in
                ("preschool", "school_age", "working_age", "elderly"))
    assert bands <= district
    assert client.get("/v1/cohorts", headers=ADMIN).status_code == 200


def test_suggestions_figures_and_flags(client, cohorts):
    community, band = _big(cohorts)
    r = client.get(f"/v1/cohorts/{community}/{band}/suggestions?horizon_days=30",
                   headers=COORDINATOR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["residents"] == cohorts[(community, band)]["residents"]
    assert body["items"], "an open course with demand"
    for item in body["items"]:
        assert 0 <= item["expected_demand"] <= item["expected_demand_district"] + 1e-6
        assert item["oversubscribed"] == (item["expected_demand_district"] > item["seats_left"])
        if item["capacity"]:
            forecast = (item["capacity"] - item["seats_left"]
                        + item["expected_demand_district"]) / item["capacity"]
            assert item["fill_forecast"] == pytest.approx(forecast, abs=1e-3)
            assert item["under_filled"] == (forecast < 0.3)
        assert item["decision"] is None
    demand = [i["expected_demand"] for i in body["items"]]
    assert demand == sorted(demand, reverse=True)
    for gap in body["unmet_demand"]:
        assert gap["residents_drawn"] == SUPPRESSED or gap["residents_drawn"] >= 10
    longer = client.get(f"/v1/cohorts/{community}/{band}/suggestions?horizon_days=90",
                        headers=COORDINATOR).json()
    total = {i["course_id"]: i["expected_demand_district"] for i in longer["items"]}
    for item in body["items"]:
        if item["course_id"] in total:  # a longer horizon never expects fewer enrolments
            assert total[item["course_id"]] >= item["expected_demand_district"] - 1e-6


def _csv_sections(text: str) -> tuple[list[dict], list[dict]]:
    """The CSV's two sections (suggested courses, unmet demand), split at the blank line."""
    courses, gaps = text.split("\r\n\r\n", 1)
    return (list(csv.DictReader(io.StringIO(courses))), list(csv.DictReader(io.StringIO(gaps))))


def test_suppressed_cohort_on_every_endpoint(client, cohorts):
    community, band = _small(cohorts)
    body = client.get(f"/v1/cohorts/{community}/{band}/suggestions",
                      headers=COORDINATOR).json()
    assert body["residents"] == SUPPRESSED and body["items"] == [] and body["suppressed"]
    text = client.get(f"/v1/cohorts/{community}/{band}/suggestions.csv",
                      headers=COORDINATOR).content.decode("utf-8-sig")
    rows, unmet = _csv_sections(text)
    assert rows[0]["cohort_residents"] == "suppressed" and unmet == []
    analytics = client.get(f"/v1/cohorts/{community}/{band}/analytics",
                           headers=COORDINATOR).json()
    assert analytics["residents"] == SUPPRESSED
    assert all(c >= 10 for c in _counts(analytics))


def test_no_small_figure_anywhere(client, cohorts):
    community, band = _big(cohorts, community_wide=True)
    for path in ("suggestions", "analytics"):
        body = client.get(f"/v1/cohorts/{community}/{band}/{path}", headers=COORDINATOR).json()
        small = [c for c in _counts(body) if c < 10 and c != 0]
        assert not small, (path, small)
    assert all(c >= 10 or c == 0 for c in _counts(client.get("/v1/cohorts",
                                                             headers=COORDINATOR).json()))


def test_csv_bom_and_chinese_titles(client, cohorts):
    community, band = _big(cohorts)
    r = client.get(f"/v1/cohorts/{community}/{band}/suggestions.csv", headers=COORDINATOR)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows, unmet = _csv_sections(r.content.decode("utf-8-sig"))
    body = client.get(f"/v1/cohorts/{community}/{band}/suggestions", headers=COORDINATOR).json()
    assert [row["course_id"] for row in rows] == [i["course_id"] for i in body["items"]]
    assert [(g["kind"], g["name"]) for g in unmet] == [
        (g["kind"], g["name"]) for g in body["unmet_demand"]]
    assert any("\u4e00" <= ch <= "\u9fff" for row in rows for ch in row["title"])


def test_analytics_shape(client, cohorts):
    community, band = _big(cohorts)
    body = client.get(f"/v1/cohorts/{community}/{band}/analytics", headers=COORDINATOR).json()
    assert body["residents"] == cohorts[(community, band)]["residents"]
    assert {"monthly", "by_category", "rates", "share_active",
            "multigenerational_households", "fill_rates"} <= set(body)
    months = [m["month"] for m in body["monthly"]]
    assert months == sorted(months)


def test_errors_and_roles(client, cohorts):
    community, _ = _big(cohorts)
    r = client.get("/v1/cohorts/NOPE/all/suggestions", headers=COORDINATOR)
    assert r.status_code == 404 and "NOPE" in r.json()["detail"][0]["reason"]
    r = client.get(f"/v1/cohorts/{community}/teen/analytics", headers=COORDINATOR)
    assert r.status_code == 404 and r.json()["detail"][0]["field"] == "path.band"
    for bad in ("horizon_days=0", "horizon_days=400", "horizon_days=x", "limit=0"):
        r = client.get(f"/v1/cohorts/{community}/all/suggestions?{bad}", headers=COORDINATOR)
        assert r.status_code == 422, bad
    assert client.get("/v1/cohorts", headers=PLATFORM).status_code == 403
    assert client.get("/v1/cohorts").status_code == 401


class _Uncalibrated:
    """The served snapshot with its model's calibration removed (an old artifact)."""

    def __init__(self, holder):
        snap = copy.copy(holder.snapshot())
        engine = copy.copy(snap.engine)
        engine.model = copy.copy(engine.model)
        engine.model.calibration_x_ = None
        engine.version = "old-version"
        snap.engine = engine
        self.snap = snap

    def snapshot(self):
        return self.snap


def test_uncalibrated_artifact_is_a_409(app, client, service, cohorts):
    community, band = _big(cohorts)
    saved = getattr(app.state, "cohorts", None)
    app.state.cohorts = CohortService(service.store, _Uncalibrated(service.holder),
                                      service.today)
    try:
        for path in ("/v1/cohorts", f"/v1/cohorts/{community}/{band}/suggestions",
                     f"/v1/cohorts/{community}/{band}/suggestions.csv"):
            r = client.get(path, headers=COORDINATOR)
            assert r.status_code == 409, path
            assert "recommender train" in r.json()["detail"][0]["reason"]
    finally:
        app.state.cohorts = saved

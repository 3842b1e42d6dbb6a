"""Cohort figures on a tiny district built by hand, with a fake model whose take-up
probabilities are fixed, so every sum can be checked against arithmetic.

Communities A and B lie on street S1, C on street S2. Residents (index: community, band):
0-11 A working_age (12), 12-16 A elderly (5), 17-26 B elderly (10), 27-28 C school_age (2).
Courses: k0 (A, working_age, capacity 20, 5 enrolled), k1 (B, elderly, capacity 10, 9
enrolled), k2 (C, elderly, capacity 40, closed), k3 (A, elderly|working_age, capacity 10,
open). The fake model gives every resident probability 0.1 for k0, 0.5 for k1 and 0.2 for k3.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommender.serving.cohorts import CohortService, ModelNotCalibrated, suggestions_csv
from recommender.serving.cohorts.analytics import cohort_analytics
from recommender.serving.cohorts.demand import CohortIndex
from recommender.serving.cohorts.export import UNMET_COLUMNS
from recommender.serving.cohorts.figures import figure
from recommender.serving.errors import InvalidInput, NotFound
from recommender.serving.holder import Catalogue, Snapshot

TODAY = dt.date(2026, 11, 1)
COMMUNITY = ["A"] * 17 + ["B"] * 10 + ["C"] * 2
BAND = ["working_age"] * 12 + ["elderly"] * 5 + ["elderly"] * 10 + ["school_age"] * 2
USERS = [f"R{k:02d}" for k in range(len(COMMUNITY))]
P = {"k0": 0.1, "k1": 0.5, "k2": 0.3, "k3": 0.2}


class FakeModel:
    """Take-up probabilities fixed per course; disallowed courses get 0."""

    def __init__(self, calibrated: bool = True):
        self.calibration = (SimpleNamespace(lead_days=float("inf"), lag_days=float("inf"))
                            if calibrated else None)

    def take_up(self, users, X, horizon_days, allowed=None):
        p = np.tile(np.array(list(P.values()), dtype=np.float32), (len(users), 1))
        return p * (np.ones(4, bool) if allowed is None else allowed)[None, :]


class FakeEngine:
    def __init__(self, items: pd.DataFrame, history: sp.csr_matrix, calibrated: bool = True):
        self.version = "v-test"
        self.model = FakeModel(calibrated)
        self.items = items
        self.mapping = SimpleNamespace(n_users=len(USERS), user_ids_=np.array(USERS),
                                       user_index=lambda ids: np.array(
                                           [USERS.index(i) if i in USERS else -1 for i in ids]))
        self.community_names = {"A": "甲社区", "B": "乙社区", "C": "丙社区"}
        self._history = history
        self._columns = {"community_id": np.array(COMMUNITY, object),
                         "age_band": np.array(BAND, object)}

    def user_column(self, column, indices):
        return self._columns[column][np.asarray(indices, dtype=np.int64)].tolist()

    def history_rows(self, indices):
        return self._history[np.asarray(indices, dtype=np.int64)]


def items_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "title": ["书法入门", "太极拳", "合唱团", "手机课"],
        "category": ["culture", "sports", "arts", "skills"],
        "target_bands": ["working_age", "elderly", "elderly", "elderly|working_age"],
        "tags": ["书法", "太极|健身", "合唱", "手机"],
        "community_id": ["A", "B", "C", "A"],
        "street": ["S1", "S1", "S2", "S1"],
        "capacity": [20, 10, 40, 10],
        "status": ["open", "open", "closed", "open"],
        "start_date": pd.to_datetime(["2026-10-01"] * 4),
        "end_date": pd.to_datetime(["2027-01-31"] * 4),
    }, index=pd.Index(["k0", "k1", "k2", "k3"]))


def history() -> sp.csr_matrix:
    """Residents 17-26 (B elderly) took k2 (arts, closed): an unmet demand near B."""
    rows = np.arange(17, 27)
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, np.full(rows.size, 2))),
                         shape=(len(USERS), 4))


def snapshot(calibrated: bool = True) -> Snapshot:
    items = items_frame()
    engine = FakeEngine(items, history(), calibrated)
    catalogue = Catalogue.from_items(items, engine.community_names)
    return Snapshot(engine, catalogue, np.array([5, 9, 0, 0]), {},
                    frozenset({"A", "B", "C"}))


class FakeHolder:
    def __init__(self, snap):
        self.snap = snap

    def snapshot(self):
        return self.snap


class FakeStore:
    def __init__(self, tables):
        self.tables = tables

    def read(self, table):
        return self.tables[table].copy()


def store_tables() -> dict[str, pd.DataFrame]:
    residents = pd.DataFrame({
        "resident_id": USERS, "birth_year": [1990] * 12 + [1950] * 15 + [2015] * 2,
        "gender": None, "community_id": COMMUNITY,
        "household_id": [f"H{k % 12:02d}" for k in range(len(USERS))],
        "registered_at": pd.Timestamp("2025-01-01")})
    events = []
    # All 12 A working-age residents enrol in k0 in March; 11 attend, 1 no-show; 3 complete,
    # 2 cancel. The 5 A elderly residents enrol in k3 in April (too few: suppressed).
    for k in range(12):
        events.append((USERS[k], "k0", "enroll", "2026-03-02"))
        events.append((USERS[k], "k0", "attend" if k else "no_show", "2026-03-09"))
        if k < 3:
            events.append((USERS[k], "k0", "complete", "2026-06-01"))
        elif k < 5:
            events.append((USERS[k], "k0", "cancel", "2026-03-20"))
    for k in range(12, 17):
        events.append((USERS[k], "k3", "enroll", "2026-04-02"))
    frame = pd.DataFrame(events, columns=["resident_id", "course_id", "event", "occurred_at"])
    frame.insert(0, "event_id", [f"E{k}" for k in range(len(frame))])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    frame["value"] = np.nan
    courses = items_frame().rename_axis("course_id").reset_index()
    communities = pd.DataFrame({"community_id": ["A", "B", "C"], "name": ["甲", "乙", "丙"],
                                "street": ["S1", "S1", "S2"], "kind": "urban"})
    return {"residents": residents, "participations": frame, "courses": courses,
            "communities": communities}


@pytest.fixture
def service() -> CohortService:
    return CohortService(FakeStore(store_tables()), FakeHolder(snapshot()), lambda: TODAY)


def test_cohort_index_groups_and_sizes():
    index = CohortIndex.build(snapshot())
    assert index.members("A", "working_age").tolist() == list(range(12))
    assert index.members("A", "all").size == 17
    assert index.members("all", "elderly").size == 15
    assert index.members("all", "all").size == len(USERS)


def test_expected_demand_matches_hand_sums(service):
    result = service.suggestions("A", "working_age", horizon_days=30)
    by_id = {item["course_id"]: item for item in result["items"]}
    assert result["residents"] == 12
    assert set(by_id) == {"k0", "k1", "k3"}  # k2 is closed
    assert by_id["k0"]["expected_demand"] == pytest.approx(12 * 0.1)
    assert by_id["k1"]["expected_demand"] == pytest.approx(12 * 0.5)
    assert by_id["k3"]["expected_demand"] == pytest.approx(12 * 0.2)
    # district demand over all 29 residents, fill forecast and flags
    k0 = by_id["k0"]
    assert k0["expected_demand_district"] == pytest.approx(29 * 0.1, abs=1e-3)
    assert k0["seats_left"] == 15
    assert k0["fill_forecast"] == pytest.approx((20 - 15 + 2.9) / 20, abs=1e-3)
    assert not k0["oversubscribed"] and not k0["under_filled"]
    k1 = by_id["k1"]  # 14.5 expected for one seat left
    assert k1["oversubscribed"] and k1["seats_left"] == 1
    assert [i["rank"] for i in result["items"]] == [1, 2, 3]
    assert result["items"][0]["course_id"] == "k1"  # most demand first
    assert all(item["decision"] is None for item in result["items"])


def test_coarse_cohorts_are_sums(service):
    whole = {i["course_id"]: i["expected_demand"]
             for i in service.suggestions("A", "all")["items"]}
    assert whole["k1"] == pytest.approx(17 * 0.5)
    band = {i["course_id"]: i["expected_demand"]
            for i in service.suggestions("all", "elderly")["items"]}
    assert band["k3"] == pytest.approx(15 * 0.2)


def test_decisions_hook_passes_through(service):
    result = service.suggestions("A", "working_age", decisions={"k0": {"status": "pinned"}})
    by_id = {item["course_id"]: item for item in result["items"]}
    assert by_id["k0"]["decision"] == {"status": "pinned"}
    assert by_id["k1"]["decision"] is None


def test_small_cohort_is_suppressed_everywhere(service):
    result = service.suggestions("A", "elderly")
    assert result["residents"] == {"suppressed": True}
    assert result["suppressed"] and result["items"] == [] and result["unmet_demand"] == []
    cohorts = {(c["community_id"], c["band"]): c for c in service.cohorts()["cohorts"]}
    assert cohorts[("A", "elderly")]["residents"] == {"suppressed": True}
    assert cohorts[("C", "school_age")]["share_active"] == {"suppressed": True}
    assert cohorts[("A", "working_age")]["residents"] == 12
    assert cohorts[("B", "elderly")]["active_residents"] == 10
    for cohort in cohorts.values():
        for key in ("residents", "active_residents"):
            value = cohort[key]
            assert value == {"suppressed": True} or value >= 10 or value == 0


def test_unmet_demand_near_the_community(service):
    # B's elderly took arts (k2, now closed); no open arts course on street S1
    gaps = service.suggestions("B", "elderly")["unmet_demand"]
    arts = [g for g in gaps if g["kind"] == "category" and g["name"] == "arts"]
    assert arts and arts[0]["residents_drawn"] == 10
    assert gaps[0]["name"] in ("arts", "合唱")
    # sports is covered on S1 by k1 (B, elderly): never listed
    assert not [g for g in gaps if g["name"] == "sports"]


def test_unknown_cohort_and_bad_parameters(service):
    with pytest.raises(NotFound, match="'Z'"):
        service.suggestions("Z", "all")
    with pytest.raises(NotFound, match="'teen'"):
        service.suggestions("A", "teen")
    with pytest.raises(InvalidInput, match="horizon_days"):
        service.suggestions("A", "all", horizon_days=0)


def test_uncalibrated_model_is_refused():
    svc = CohortService(None, FakeHolder(snapshot(calibrated=False)), lambda: TODAY)
    with pytest.raises(ModelNotCalibrated, match="recommender train") as err:
        svc.suggestions("A", "all")
    assert err.value.status == 409
    with pytest.raises(ModelNotCalibrated):
        svc.cohorts()


def test_demand_is_cached_per_version_and_horizon(service):
    snap = service.holder.snapshot()
    first = service.demand(snap, 30)
    assert service.demand(snap, 30) is first
    assert service.demand(snap, 60) is not first


def test_csv_has_bom_chinese_titles_and_suppressed_text(service):
    body = suggestions_csv(service.suggestions("A", "working_age"))
    assert body.startswith("\ufeff".encode())
    rows, _ = csv_sections(body)
    assert {r["title"] for r in rows} >= {"书法入门", "太极拳"}
    assert rows[0]["cohort_residents"] == "12"
    rows, unmet = csv_sections(suggestions_csv(service.suggestions("A", "elderly")))
    assert len(rows) == 1 and rows[0]["cohort_residents"] == "suppressed"
    assert unmet == []  # a suppressed cohort lists nothing, but the section is there


def csv_sections(body: bytes) -> tuple[list[dict], list[dict]]:
    """The CSV's two sections (suggested courses, unmet demand), split at the blank line."""
    text = body.decode("utf-8-sig")
    courses, gaps = text.split("\r\n\r\n", 1)
    assert gaps.startswith(",".join(UNMET_COLUMNS))
    return (list(csv.DictReader(io.StringIO(courses))), list(csv.DictReader(io.StringIO(gaps))))


def test_csv_carries_the_unmet_demand(service):
    """B's elderly are drawn to arts (10 residents took k2, now closed): the CSV's second
    section lists it as the JSON does, with the cohort's columns; a figure under ten residents
    reads ``suppressed``."""
    result = service.suggestions("B", "elderly")
    rows, unmet = csv_sections(suggestions_csv(result))
    assert [r["course_id"] for r in rows] == [i["course_id"] for i in result["items"]]
    assert [(g["kind"], g["name"]) for g in unmet] == [
        (g["kind"], g["name"]) for g in result["unmet_demand"]]
    arts = next(g for g in unmet if g["kind"] == "category" and g["name"] == "arts")
    assert arts["residents_drawn"] == "10" and arts["cohort_community_id"] == "B"
    assert arts["cohort_band"] == "elderly" and arts["horizon_days"] == "30"
    fake = {**result, "unmet_demand": [{"kind": "tag", "name": "书法", "residents_drawn":
                                        {"suppressed": True}, "expected_demand_elsewhere": 1.5}]}
    _, unmet = csv_sections(suggestions_csv(fake))
    assert unmet[0]["residents_drawn"] == "suppressed" and unmet[0]["name"] == "书法"


def test_analytics_hand_counts_and_suppression(service):
    out = service.analytics("A", "working_age")
    assert out["residents"] == 12
    march = [m for m in out["monthly"] if m["month"] == "2026-03"][0]
    assert march["enrolments"] == 12
    assert march["attendances"] == 11
    rates = out["rates"]
    assert rates["completion"] == {"suppressed": True} or rates["completion"] == pytest.approx(
        3 / 12, abs=1e-4)
    assert rates["cancellation"] == pytest.approx(2 / 12, abs=1e-4)
    assert rates["no_show"] == pytest.approx(1 / 12, abs=1e-4)
    culture = [c for c in out["by_category"] if c["category"] == "culture"][0]
    assert culture["enrolments"] == 12
    assert culture["completions"] == {"suppressed": True}  # 3 residents
    assert out["share_active"] == 1.0
    small = service.analytics("A", "elderly")
    assert small["residents"] == {"suppressed": True}
    assert all(m["enrolments"] == {"suppressed": True} for m in small["monthly"])
    fills = {f["course_id"]: f for f in out["fill_rates"]}
    assert fills["k0"]["enrolled"] == 10  # 12 enrolled, 2 cancelled
    assert fills["k0"]["fill_rate"] == pytest.approx(0.5)


def test_analytics_households_across_generations():
    tables = store_tables()
    snap = snapshot()
    out = cohort_analytics(tables, snap, CohortIndex.build(snap), "A", "all", TODAY)
    # households H00..H04 hold a working-age resident (k0) and an elderly one (k3) who both
    # took a course up: 5 households learn across generations
    households = out["multigenerational_households"]
    assert households["learning_across_generations"] == 5


def test_figure_rule():
    assert figure(3, 9) == {"suppressed": True}
    assert figure(3, 10) == 3


def test_sampled_residents_stand_for_their_stratum():
    from recommender.serving.cohorts.demand import scored_residents

    index = CohortIndex.build(snapshot())
    has = np.zeros(len(USERS), dtype=bool)
    has[17:27] = True
    users, weights = scored_residents(index, has, cap=4)
    assert np.all(np.diff(users) > 0)
    for k in range(len(index.keys)):
        in_k = index.group[users] == k
        assert weights[in_k].sum() == pytest.approx((index.group == k).sum())
    everyone, ones = scored_residents(index, has, cap=None)
    assert everyone.tolist() == list(range(len(USERS))) and np.all(ones == 1)


def test_sampled_demand_estimates_the_exact_sum(service):
    exact = CohortService(service.store, service.holder, lambda: TODAY, max_scored=1000)
    sampled = CohortService(service.store, service.holder, lambda: TODAY, max_scored=3)
    a = {i["course_id"]: i["expected_demand"] for i in exact.suggestions("all", "all")["items"]}
    b = {i["course_id"]: i["expected_demand"] for i in sampled.suggestions("all", "all")["items"]}
    # the fake model gives every resident the same probability: the estimate is exact
    assert b == pytest.approx(a)


def test_only_courses_taking_residents_within_the_horizon_count():
    snap = snapshot()
    # k0..k3 start 2026-10-01; with a lag of 10 days they stopped taking residents on Oct 11
    snap.engine.model.calibration = SimpleNamespace(lead_days=20.0, lag_days=10.0)
    svc = CohortService(None, FakeHolder(snap), lambda: TODAY)
    assert svc.suggestions("A", "working_age")["items"] == []
    # a course starting in 25 days takes residents from day 5 (lead 20) to day 35 (lag 10)
    from recommender.serving.cohorts.demand import course_exposure

    snap.engine.items = snap.engine.items.assign(
        start_date=pd.Timestamp(TODAY) + pd.Timedelta(days=25))
    assert course_exposure(snap, TODAY, 30).tolist() == pytest.approx([25.0] * 4)
    assert course_exposure(snap, TODAY, 10).tolist() == pytest.approx([5.0] * 4)

"""Online A/B tests through the real app on a real store (SQLite and PostgreSQL): the admin
routes, a simulation in which residents follow a known better model and the report finds it,
every served list in the impression log, and the log flushed at shutdown.

The module has its own database and artifacts folder (two versions: the session's artifact as
A, one more trained with another seed as B), so its experiments never reach the other tests.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from contextlib import ExitStack

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.data.store import open_store
from recommender.domain import TABLE_ORDER
from recommender.serving import ModelHolder, RecommendationService
from recommender.serving.experiments import assign
from recommender.serving.intake import district_now
from recommender.settings import Settings
from recommender.training import artifacts as artifact_files
from recommender.training import registry
from tests.api.conftest import ADMIN, API_KEYS, PLATFORM, SMALL_MODEL, new_ids, today
from tests.conftest import BACKENDS, postgres_schema


@pytest.fixture(scope="module")
def versions(artifacts, district, tmp_path_factory):
    """An artifacts folder holding A (the session's artifact, ``current``) and B."""
    from recommender.data.datasets import load_district
    from recommender.training.recipe import train_artifact

    root = tmp_path_factory.mktemp("ab_artifacts")
    a = artifact_files.resolve(artifacts)
    shutil.copytree(a, root / a.name)
    registry.promote(root, a.name)
    b = train_artifact(load_district(district), root, seed=1, promote=False,
                       params={**SMALL_MODEL, "n_candidates": 20})
    return root, a.name, b.name


@pytest.fixture(scope="module", params=BACKENDS)
def ab_db(request, tables, tmp_path_factory):
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('ab_db') / 'ab.db'}"
        else:
            url = stack.enter_context(postgres_schema("t_ab_"))
        store = open_store(url)
        for name in TABLE_ORDER:
            store.insert(name, tables[name])
        store.dispose()
        yield url


def _settings(ab_db, versions) -> Settings:
    return Settings(database_url=ab_db, artifacts_dir=versions[0], api_keys=API_KEYS)


@pytest.fixture(scope="module")
def ab_app(ab_db, versions):
    app = create_app(_settings(ab_db, versions), today=today)
    with TestClient(app) as client:
        yield app, client
        stopped = client.delete("/v1/admin/experiment", headers=ADMIN)
        assert stopped.status_code in (200, 404)


def test_experiment_routes_need_an_admin_and_name_what_is_wrong(ab_app, versions):
    _, client = ab_app
    _, a, b = versions
    body = {"version_a": a, "version_b": b, "share": 0.3}
    assert client.post("/v1/admin/experiment", json=body, headers=PLATFORM).status_code == 403
    assert client.get("/v1/admin/experiment").status_code == 401
    missing = client.post("/v1/admin/experiment", json={**body, "version_b": "v-none"},
                          headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "version_b"
    share = client.post("/v1/admin/experiment", json={**body, "share": 1.5}, headers=ADMIN)
    assert share.status_code == 422 and share.json()["detail"][0]["field"] == "body.share"
    same = client.post("/v1/admin/experiment", json={**body, "version_b": a}, headers=ADMIN)
    assert same.status_code == 422 and same.json()["detail"][0]["field"] == "version_b"
    assert client.delete("/v1/admin/experiment", headers=ADMIN).status_code == 404

    started = client.post("/v1/admin/experiment", json=body, headers=ADMIN)
    assert started.status_code == 201 and started.json()["started_by"].startswith("admin:")
    again = client.post("/v1/admin/experiment", json=body, headers=ADMIN)
    assert again.status_code == 409 and again.json()["detail"][0]["field"] == "experiment"
    status = client.get("/v1/admin/experiment", headers=ADMIN).json()
    assert status["live"] and status["running"]["version_b"] == b
    stopped = client.delete("/v1/admin/experiment", headers=ADMIN)
    assert stopped.status_code == 200 and stopped.json()["stopped_at"]
    status = client.get("/v1/admin/experiment", headers=ADMIN).json()
    assert status["running"] is None and status["latest"]["experiment_id"] == (
        started.json()["experiment_id"])
    report = client.get("/v1/admin/experiment/report", headers=ADMIN,
                        params={"experiment_id": 999})
    assert report.status_code == 404 and report.json()["detail"][0]["field"] == "experiment_id"


def test_current_is_started_as_the_version_it_names(ab_app, versions):
    """An experiment keeps the version ``current`` names when it starts: its variants are
    matched by version name, and a later promote must not change what B is tested against."""
    _, client = ab_app
    _, a, b = versions
    started = client.post("/v1/admin/experiment", headers=ADMIN,
                          json={"version_a": "current", "version_b": b, "share": 0.3})
    try:
        assert started.status_code == 201, started.text
        assert started.json()["version_a"] == a
        assert client.get("/v1/admin/experiment", headers=ADMIN).json()["live"]
    finally:
        assert client.delete("/v1/admin/experiment", headers=ADMIN).status_code == 200


def _truth(ab_db, versions, residents: list[str], k: int = 3) -> dict[str, str]:
    """What each simulated resident wants: the first course of B's top ``k`` that A's top
    ``k`` does not hold (residents whose two lists hold the same courses want nothing).

    Only A's lists never show it, so B's advantage does not shrink with how often the two
    versions agree. Read through a service of its own per version, before the experiment
    starts."""
    root, a, b = versions
    from recommender.serving.engine import Engine

    store = open_store(ab_db)
    lists = {}
    for version in (a, b):
        holder = ModelHolder(root, store, loader=lambda d, v=version: Engine.load(d, v))
        holder.reload()
        service = RecommendationService(store, holder, today=today)
        lists[version] = {r: [item["course_id"] for item in
                              service.for_resident(r, k=k, explain=False)["items"]]
                          for r in residents}
        service.close()
    store.dispose()
    best = {}
    for resident in residents:
        only_b = [c for c in lists[b][resident] if c not in lists[a][resident]]
        if only_b:
            best[resident] = only_b[0]
    return best


def test_simulated_residents_who_follow_b_make_the_report_find_b(ab_app, ab_db, versions,
                                                                 tables):
    """Residents enrol with probability 0.6 in a course B lists for them and A does not, when
    their list shows it, else (5 %) in the first course listed. B's lists show it and A's never
    do, so B must win, with an interval above zero and no sample-ratio mismatch."""
    app, client = ab_app
    _, a, b = versions
    service = app.state.service
    residents = [r for r in tables["residents"]["resident_id"]
                 if service.holder.engine.context_for(r) is not None][:500]
    truth = _truth(ab_db, versions, residents)
    assert len(truth) >= 100, len(truth)  # enough residents whose two lists differ
    body = {"version_a": a, "version_b": b, "share": 0.5, "note": "simulation"}
    experiment = client.post("/v1/admin/experiment", json=body, headers=ADMIN).json()
    eid = experiment["experiment_id"]

    rng = np.random.default_rng(0)
    served, events = {}, []
    for resident in truth:
        answer = client.get(f"/v1/residents/{resident}/recommendations",
                            params={"k": 3, "explain": False}, headers=PLATFORM).json()
        variant = assign(eid, resident, 0.5)
        assert answer["model_version"] == (b if variant == "B" else a)
        listed = [item["course_id"] for item in answer["items"]]
        served[answer["request_id"]] = (resident, variant, listed)
        pick = (truth[resident] if truth[resident] in listed and rng.random() < 0.6
                else listed[0] if listed and rng.random() < 0.05 else None)
        if pick is not None:
            events.append({"resident_id": resident, "course_id": pick, "event": "enroll"})
    households = tables["residents"]["household_id"].dropna().unique()[:20].tolist()
    for household in households:
        answer = client.get(f"/v1/households/{household}/recommendations", headers=PLATFORM)
        if answer.status_code == 200:
            assert answer.json()["model_version"] == (
                b if assign(eid, household, 0.5) == "B" else a)
    profile = client.post("/v1/recommendations", json={"age_band": "elderly"},
                          headers=PLATFORM).json()
    assert profile["model_version"] == a  # a profile gets the control

    # A whole second after the last list: a conversion is an enrolment at or after its list,
    # and the time truncated to the second would fall before the lists of that same second.
    now = (district_now(app.state.settings.timezone) + dt.timedelta(seconds=1)).replace(
        microsecond=0).isoformat()
    ids = new_ids("E-ab", len(events))
    posted = client.post("/v1/events", headers=PLATFORM, json={"events": [
        {**e, "event_id": i, "occurred_at": now} for e, i in zip(events, ids)]}).json()
    assert posted["accepted"] == len(events) > 20
    assert service.impressions.flush()

    logged = service.store.impressions(eid).set_index("request_id")
    for request_id, (resident, variant, listed) in served.items():
        row = logged.loc[request_id]
        assert (row["resident_id"], row["variant"], row["kind"]) == (resident, variant,
                                                                     "resident")
        assert row["courses"] == "|".join(listed)
    assert set(logged["kind"]) == {"resident", "household", "profile"}

    report = client.get("/v1/admin/experiment/report", headers=ADMIN,
                        params={"days": 7}).json()
    rates = report["variants"]
    assert rates["A"]["impressions"] + rates["B"]["impressions"] == len(served) + len(
        logged[logged["kind"] == "household"])
    assert rates["B"]["rate"] > rates["A"]["rate"]
    assert report["difference"]["ci95"][0] > 0, report["difference"]
    assert not report["sample_ratio"]["mismatch"], report["sample_ratio"]
    assert {band["band"] for band in report["by_band"]} <= {
        "preschool", "school_age", "working_age", "elderly", "unknown"}
    assert sum(band["variants"]["B"]["impressions"] for band in report["by_band"]) == (
        rates["B"]["impressions"])
    assert report["profile_impressions"] == 1
    assert client.delete("/v1/admin/experiment", headers=ADMIN).status_code == 200


def test_a_running_experiment_survives_a_restart(ab_db, versions):
    _, a, b = versions
    store = open_store(ab_db)
    store.stop_experiment(by="test")
    eid = store.start_experiment(version_a=a, version_b=b, share=0.5,
                                 started_by="test")["experiment_id"]
    store.dispose()
    with TestClient(create_app(_settings(ab_db, versions), today=today)) as client:
        status = client.get("/v1/admin/experiment", headers=ADMIN).json()
        assert status["live"] and status["running"]["experiment_id"] == eid
        client.delete("/v1/admin/experiment", headers=ADMIN)


def _hold_impressions(url: str, stack: ExitStack) -> None:
    """A transaction that keeps every other writer out of the impressions table until
    ``stack`` closes (from another thread)."""
    sqlite = url.startswith("sqlite")
    engine = sa.create_engine(url, **({"connect_args": {"check_same_thread": False}}
                                      if sqlite else {}))
    stack.callback(engine.dispose)
    conn = stack.enter_context(engine.connect())
    if sqlite:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the database's one write lock
    else:
        conn.execute(sa.text("LOCK TABLE impressions IN SHARE MODE"))


def test_lists_queued_at_shutdown_are_written_before_the_store_closes(ab_db, versions,
                                                                     tables):
    app = create_app(_settings(ab_db, versions), today=today)
    residents = tables["residents"]["resident_id"].iloc[:30].tolist()
    client = TestClient(app)
    client.__enter__()
    lock = ExitStack()
    _hold_impressions(ab_db, lock)
    served = [client.get(f"/v1/residents/{r}/recommendations",
                         headers=PLATFORM).json()["request_id"] for r in residents]
    log = app.state.service.impressions
    assert log.pending == len(served)  # the writer cannot get in: every row waits in the log
    release = threading.Timer(0.5, lock.close)  # let the writer in once the shutdown began
    release.start()
    client.__exit__(None, None, None)  # the app's shutdown
    release.join()
    assert log.pending == 0 and log.dropped == 0 and log.written == len(served)
    store = open_store(ab_db)
    stored = set(store.impressions()["request_id"])
    store.dispose()
    assert set(served) <= stored

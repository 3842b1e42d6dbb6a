"""/metrics through prometheus_client: scraped and parsed with its own parser, counted per route
template, per event outcome and per reload; one registry per app; several worker processes
aggregated through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from api.metrics import Metrics
from recommender.settings import Settings
from tests.api.conftest import ADMIN, KEYS, PLATFORM, new_ids
from tests.conftest import ROOT

RESIDENT_ROUTE = "/v1/residents/{resident_id}/recommendations"


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, labels): value}`` for every sample of an exposition text."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples, name: str, **labels) -> float:
    """A sample's value; a series that is not there yet counts as 0."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_the_lists_ranked_per_call_are_recorded(client):
    """Sequential requests are ranked one per call: each adds one batch of size 1."""
    before = scrape(client)
    for rid in ["R000006", "R000007"]:
        assert client.get(f"/v1/residents/{rid}/recommendations", headers=PLATFORM).status_code \
            == 200
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("recommender_list_batch_size_count") == 2
    assert delta("recommender_list_batch_size_sum") == 2
    assert delta("recommender_list_batch_size_bucket", le="1.0") == 2


def test_requests_are_counted_by_route_template_and_status(client):
    before = scrape(client)
    residents = ["R000002", "R000003", "R000004"]
    for rid in residents:
        assert client.get(f"/v1/residents/{rid}/recommendations", headers=PLATFORM).status_code \
            == 200
    bad = client.get("/v1/residents/R000005/recommendations?k=0", headers=PLATFORM)
    assert bad.status_code == 422
    response = client.get("/metrics")
    after = parse(response.text)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": RESIDENT_ROUTE}
    assert delta("recommender_http_requests_total", status="200", **ok) == 3
    assert delta("recommender_http_requests_total", status="422", **ok) == 1
    assert delta("recommender_http_request_duration_seconds_count", **ok) == 4
    assert delta("recommender_http_request_duration_seconds_bucket", le="+Inf", **ok) == 4
    assert delta("recommender_http_request_duration_seconds_sum", **ok) > 0
    buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                     if name == "recommender_http_request_duration_seconds_bucket"
                     and dict(labels)["route"] == RESIDENT_ROUTE)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)  # cumulative
    for rid in [*residents, "R000005"]:
        assert rid not in response.text
    assert KEYS["platform"] not in response.text


def test_unmatched_paths_share_one_label(client):
    before = scrape(client)
    junk = [f"/no-such-{uuid.uuid4().hex}" for _ in range(3)]
    for path in junk:
        assert client.get(path).status_code == 404
    response = client.get("/metrics")
    labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
    after = parse(response.text)
    assert (value(after, "recommender_http_requests_total", **labels)
            - value(before, "recommender_http_requests_total", **labels)) == 3
    assert not any(path in response.text for path in junk)


def test_events_are_counted_by_outcome(client, tables):
    resident = tables["residents"]["resident_id"].iloc[20]
    course = tables["courses"]["course_id"].iloc[20]
    ids = new_ids("E-metrics", 3)
    now = dt.datetime.now().replace(microsecond=0).isoformat()
    good = [{"event_id": i, "resident_id": resident, "course_id": course, "event": "view",
             "occurred_at": now} for i in ids]
    batch = [*good, good[0], {**good[1], "event_id": "E-metrics-bad", "event": "teleport"}]
    before = scrape(client)
    report = client.post("/v1/events", json={"events": batch}, headers=PLATFORM).json()
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (3, 1, 1)
    after = scrape(client)
    for outcome, expected in (("accepted", 3), ("duplicate", 1), ("rejected", 1)):
        assert (value(after, "recommender_events_total", outcome=outcome)
                - value(before, "recommender_events_total", outcome=outcome)) == expected


def test_reloads_and_the_model_version(client):
    before = scrape(client)
    response = client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status_code == 200
    version = response.json()["version"]
    after = scrape(client)
    assert (value(after, "recommender_model_reloads_total", outcome="ok")
            - value(before, "recommender_model_reloads_total", outcome="ok")) == 1
    assert (value(after, "recommender_model_reloads_total", outcome="refused")
            == value(before, "recommender_model_reloads_total", outcome="refused"))
    assert value(after, "recommender_model_info", version=version) == 1
    assert [labels for (name, labels) in after if name == "recommender_model_info"] == [
        frozenset({("version", version)})]
    assert value(after, "recommender_model_loaded") == 1


def test_apps_have_registries_of_their_own(tmp_path):
    """Two apps in one process: neither collides with nor counts the other's requests."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}",
                        artifacts_dir=tmp_path, api_keys="admin:a")
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as one, TestClient(second) as two:
        for _ in range(3):
            one.get("/healthz")
        two.get("/healthz")
        healthz = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(scrape(one), "recommender_http_requests_total", **healthz) == 3
        assert value(scrape(two), "recommender_http_requests_total", **healthz) == 1
        samples = scrape(two)
        assert value(samples, "recommender_model_loaded") == 0  # no artifact in tmp_path
        assert not [k for k in samples if k[0] == "recommender_model_info"]


def test_a_multiprocess_folder_needs_the_variable_exported_first(tmp_path):
    # This test process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR, so its
    # values stay in memory: a folder would aggregate nothing, and is refused.
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        Metrics(tmp_path)


# One worker of a multi-worker server: its own process, its own registry, the shared folder.
WORKER = textwrap.dedent("""
    import sys
    from fastapi.testclient import TestClient
    from api.main import create_app

    healthz = int(sys.argv[1])
    with TestClient(create_app()) as client:
        for _ in range(healthz):
            assert client.get("/healthz").status_code == 200
        if sys.argv[2] == "reload":
            assert client.post("/v1/admin/reload", headers={"X-API-Key": "a"}).status_code == 200
        print(client.get("/metrics").text)
""")


def _worker(folder, artifacts, db, healthz: int, reload: bool) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder),
           "RECOMMENDER_ARTIFACTS_DIR": str(artifacts), "RECOMMENDER_DATABASE_URL": db,
           "RECOMMENDER_API_KEYS": "admin:a",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", WORKER, str(healthz),
                           "reload" if reload else "-"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_several_workers_are_aggregated_through_the_multiprocess_folder(artifacts, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    db = f"sqlite:///{tmp_path / 'store.db'}"
    version = artifacts.joinpath("current").resolve().name
    _worker(folder, artifacts, db, healthz=3, reload=True)  # exits before the second starts
    seen_by_second = parse(_worker(folder, artifacts, db, healthz=2, reload=False))

    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    # Counters and histograms: summed over both workers, the one that exited included.
    assert value(seen_by_second, "recommender_http_requests_total", **healthz) == 5
    assert value(seen_by_second, "recommender_http_request_duration_seconds_count",
                 method="GET", route="/healthz") == 5
    assert value(seen_by_second, "recommender_model_reloads_total", outcome="ok") == 1
    assert value(seen_by_second, "recommender_http_requests_total", method="GET",
                 route="/metrics", status="200") == 1  # the first worker's own scrape
    # Gauges: only live workers; the first one's were dropped when it shut down.
    assert value(seen_by_second, "recommender_model_loaded") == 1
    assert value(seen_by_second, "recommender_model_info", version=version) == 1

    # The same folder, aggregated by a registry of this process once both workers are gone.
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    final = {(s.name, frozenset(s.labels.items())): s.value
             for family in registry.collect() for s in family.samples}
    assert value(final, "recommender_http_requests_total", **healthz) == 5
    assert value(final, "recommender_http_requests_total", method="GET", route="/metrics",
                 status="200") == 2
    assert not [k for k in final if k[0] in ("recommender_model_loaded",
                                             "recommender_model_info")]
    assert len(list(folder.glob("counter_*.db"))) == 2  # one file per worker process

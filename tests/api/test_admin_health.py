"""Auth roles, model info, atomic reload (a corrupt artifact keeps the old model), health,
readiness, metrics, settings and `recommender serve`'s refusal without keys."""

from __future__ import annotations

import gc
import os
import shutil
import weakref

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from recommender.serving import StoreError, open_store
from recommender.settings import Settings, parse_api_keys
from recommender.training.artifacts import resolve
from tests.api.conftest import ADMIN, COORDINATOR, KEYS, PLATFORM
from tests.api.test_metrics import parse


@pytest.mark.parametrize("method, url", [
    ("get", "/v1/residents/R000001/recommendations"),
    ("post", "/v1/events"),
    ("get", "/v1/model"),
    ("post", "/v1/admin/reload"),
    ("get", "/v1/households/H00001/recommendations"),
])
def test_missing_or_unknown_key_is_401(client, method, url):
    for headers in ({}, {"X-API-Key": "not-a-key"}, {"X-API-Key": ""}):
        r = getattr(client, method)(url, headers=headers)
        assert r.status_code == 401, (url, headers)
        assert r.json()["detail"][0]["field"] == "header.X-API-Key"


@pytest.mark.parametrize("method, url, headers", [
    ("get", "/v1/residents/R000001/recommendations", ADMIN),
    ("get", "/v1/residents/R000001/recommendations", COORDINATOR),
    ("post", "/v1/recommendations", COORDINATOR),
    ("post", "/v1/admin/reload", PLATFORM),
    ("post", "/v1/admin/reload", COORDINATOR),
])
def test_wrong_role_is_403(client, method, url, headers):
    r = getattr(client, method)(url, headers=headers, **({"json": {}} if method == "post" else {}))
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert KEYS["platform"] not in r.text and KEYS["admin"] not in r.text


def test_model_info(client, artifacts):
    r = client.get("/v1/model", headers=PLATFORM)
    assert r.status_code == 200
    body = r.json()
    assert body["version"] == resolve(artifacts).name
    assert body["trained_at"] and body["courses"] > 0 and body["residents"] > 0
    assert isinstance(body["metrics"], dict)


def test_reload_swaps_and_in_flight_requests_keep_their_model(client, service):
    in_flight = service.holder.snapshot()
    r = client.post("/v1/admin/reload", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == r.json()["previous_version"] == in_flight.engine.version
    assert service.holder.snapshot() is not in_flight  # a new Engine object now serves
    ctx = in_flight.engine.context_for(in_flight.engine.users.index[0])
    assert in_flight.engine.recommend(ctx, n=5)  # the old one still answers


def test_a_loaded_model_is_frozen_out_of_the_collector_and_freed_after_a_reload(client, service):
    # the model's objects are not walked by full collections (their pauses were the p99 under
    # load), yet a reload still lets the previous model go
    engine = weakref.ref(service.holder.snapshot().engine)
    assert gc.get_freeze_count() > 0
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200
    assert engine() is None
    assert gc.get_freeze_count() > 0


def test_corrupt_artifact_is_refused_and_the_old_model_keeps_serving(client, artifacts):
    good = resolve(artifacts)
    bad = artifacts / "v-corrupt"
    shutil.copytree(good, bad)
    victim = next(p for p in sorted(bad.iterdir()) if p.name != "manifest.json" and p.is_file())
    victim.write_bytes(victim.read_bytes()[:-7] + b"garbage")
    try:
        os.replace(artifacts / "current", artifacts / "current.bak")
        (artifacts / "current").symlink_to(bad.name)
        r = client.post("/v1/admin/reload", headers=ADMIN)
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "reload_refused" and "checksum" in r.text
        assert client.get("/v1/model", headers=PLATFORM).json()["version"] == good.name
        recs = client.get("/v1/residents/R000001/recommendations", headers=PLATFORM)
        assert recs.status_code == 200 and recs.json()["model_version"] == good.name
        assert client.get("/readyz").status_code == 200
        assert 'recommender_model_reloads_total{outcome="refused"}' in client.get("/metrics").text
    finally:
        os.replace(artifacts / "current.bak", artifacts / "current")
        shutil.rmtree(bad)


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"model": "ok", "store": "ok"}
    client.get("/v1/residents/R000002/recommendations", headers=PLATFORM)
    response = client.get("/metrics")
    samples = parse(response.text)
    version = ready.json()["model_version"]
    assert samples[("recommender_model_info", frozenset({("version", version)}))] == 1
    route = {("method", "GET"), ("route", "/v1/residents/{resident_id}/recommendations")}
    assert samples[("recommender_http_requests_total", frozenset(route | {("status", "200")}))] \
        >= 1
    assert samples[("recommender_http_request_duration_seconds_bucket",
                    frozenset(route | {("le", "+Inf")}))] >= 1
    assert "R000002" not in response.text and KEYS["platform"] not in response.text


def test_readiness_names_an_unavailable_store(db_url, artifacts, tmp_path, monkeypatch):
    app = create_app(Settings(database_url=db_url, artifacts_dir=artifacts, api_keys="admin:a"))
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        store = app.state.service.store
        # The same store object, now on a database that cannot be opened (a folder).
        broken = open_store(f"sqlite:///{tmp_path}", create=False)
        monkeypatch.setattr(store, "engine", broken.engine)
        with pytest.raises(StoreError):
            store.ping()
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"] == {"model": "ok", "store": "unavailable (OperationalError)"}
        assert r.json()["model_version"] == resolve(artifacts).name
        monkeypatch.undo()  # the lifespan disposes the store's own engine on the way out
        broken.dispose()


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/residents/{resident_id}/recommendations", "/v1/recommendations",
            "/v1/households/{household_id}/recommendations", "/v1/courses/{course_id}/similar",
            "/v1/events", "/v1/model", "/v1/admin/reload", "/healthz", "/readyz",
            "/metrics"} <= set(paths)


def test_app_without_a_model_is_up_but_not_ready(db_url, tmp_path):
    app = create_app(Settings(database_url=db_url, artifacts_dir=tmp_path,
                              api_keys="platform:p,admin:a"))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503
        r = c.get("/v1/residents/R000001/recommendations", headers={"X-API-Key": "p"})
        assert r.status_code == 503 and r.json()["error"] == "not_ready"
        assert c.post("/v1/admin/reload", headers={"X-API-Key": "a"}).status_code == 409


def test_settings_keys():
    assert parse_api_keys("platform:abc, admin:ghi") == {"abc": "platform", "ghi": "admin"}
    for bad in ("platform", "root:abc", "platform:", "platform:a,admin:a"):
        with pytest.raises(ValueError) as err:
            parse_api_keys(bad)
        assert "RECOMMENDER_API_KEYS" in str(err.value)
    settings = Settings(api_keys="platform:supersecret")
    assert "supersecret" not in repr(settings) and "supersecret" not in str(settings.model_dump())
    with pytest.raises(RuntimeError, match="RECOMMENDER_API_KEYS"):
        create_app(Settings(api_keys=""))
    assert create_app(Settings(api_keys="", insecure_dev=True))


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RECOMMENDER_API_KEYS", "platform:k1,coordinator:k2")
    monkeypatch.setenv("RECOMMENDER_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("RECOMMENDER_DATABASE_URL", "sqlite:///x.db")
    s = Settings()
    assert s.key_roles() == {"k1": "platform", "k2": "coordinator"}
    assert s.artifacts_dir == tmp_path and s.database_url == "sqlite:///x.db"


def test_serve_refuses_to_start_without_keys(monkeypatch):
    from recommender.cli import app as cli

    monkeypatch.delenv("RECOMMENDER_API_KEYS", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "8999"])
    assert result.exit_code == 2
    assert "RECOMMENDER_API_KEYS" in result.output and "--insecure-dev" in result.output

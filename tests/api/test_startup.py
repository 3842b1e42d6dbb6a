"""A server start: bad settings and an unreachable database stop it with one line (never a key,
never a traceback), in the app factory and under real uvicorn workers; /readyz keeps the
server's paths to admins; /docs works without a network."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from api.main import STARTUP_FAILURE, create_app, settings_for_a_start
from recommender.settings import Settings
from tests.conftest import ROOT

SECRET = "k-very-secret-9"


@pytest.mark.parametrize(("variables", "expected"), [
    ({"RECOMMENDER_API_KEYS": f"platform:{SECRET},root:{SECRET}x"},
     "error: RECOMMENDER_API_KEYS: pair 2: unknown role 'root'"),
    ({"RECOMMENDER_API_KEYS": ""}, "error: RECOMMENDER_API_KEYS is empty"),
    ({"RECOMMENDER_API_KEYS": f"admin:{SECRET}", "RECOMMENDER_TIMEZONE": "Mars/Olympus"},
     "error: RECOMMENDER_TIMEZONE: 'Mars/Olympus' is not an IANA time zone"),
    ({"RECOMMENDER_API_KEYS": f"admin:{SECRET}",
      "RECOMMENDER_DATABASE_URL": "postgresql+psycopg://postgres:pw@127.0.0.1:9/x"},
     "error: database postgresql+psycopg://postgres:***@127.0.0.1:9/x is unavailable"),
])
def test_the_factory_stops_with_one_line(monkeypatch, capsys, variables, expected):
    for name in ("RECOMMENDER_DATABASE_URL", "RECOMMENDER_TIMEZONE", "RECOMMENDER_INSECURE_DEV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        settings_for_a_start()
    assert info.value.code == STARTUP_FAILURE
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert SECRET not in err and ":pw@" not in err


def test_uvicorn_workers_stop_with_one_line_and_no_key(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "RECOMMENDER_API_KEYS": f"platform:{SECRET},coordinator@C 1:{SECRET}2",
           "RECOMMENDER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    run = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--port", "18311",
         "--workers", "2"], env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = run.stdout + run.stderr
    # Each worker exits with STARTUP_FAILURE, so uvicorn stops instead of restarting them.
    assert "failed to start, stopping the parent process" in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors and set(errors) == {
        "error: RECOMMENDER_API_KEYS: pair 2: bad community id 'C 1' in the scope "
        "(expected coordinator@C01+C02:key)"}, output
    assert "Traceback" not in output and SECRET not in output


def test_readiness_shows_the_model_error_to_admins_only(tmp_path):
    missing = tmp_path / "no-artifacts-here"
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}",
                              artifacts_dir=missing, api_keys="platform:p,admin:a"))
    with TestClient(app) as client:
        for headers in ({}, {"X-API-Key": "p"}, {"X-API-Key": "wrong"}):
            r = client.get("/readyz", headers=headers)
            assert r.status_code == 503
            assert r.json()["checks"] == {"model": "not loaded", "store": "ok"}
            assert str(tmp_path) not in r.text and "/" not in r.json()["checks"]["model"]
        r = client.get("/readyz", headers={"X-API-Key": "a"})
        assert r.status_code == 503 and str(missing) in r.json()["checks"]["model"]


def test_docs_pages_load_nothing_from_the_network(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}",
                              artifacts_dir=tmp_path, api_keys="admin:a"))
    client = TestClient(app)
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        assert not re.search(r"https?://", html.text), page  # no CDN, no web fonts
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assert any(a.endswith(".js") for a in assets), assets
        for asset in assets:
            r = client.get(asset)
            assert r.status_code == 200 and len(r.content) > 100, asset
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"]

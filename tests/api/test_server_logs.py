"""The logs of a whole server run hold no personal attributes and no key.

A real ``recommender serve`` process (uvicorn, access log on) serves the session's model from a
store holding the district; every route is called with every caller of the access matrix, plus
events and profiles that carry birth years; then the server is stopped and everything it wrote
is scanned: no configured key, no birth year beside a resident, no household id beside a
resident id, no personal column name.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from api.schemas import PATH_EXAMPLES
from recommender.data.store import open_store
from recommender.domain import TABLE_ORDER
from tests.api.test_access import API_KEYS, BODIES, CALLER_KEYS, KEYS, MATRIX
from tests.conftest import ROOT

PORT = 18321
BASE = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def server_log(tables, artifacts, tmp_path_factory):
    """Run the server, call every route, stop it; its whole output (stdout and stderr)."""
    folder = tmp_path_factory.mktemp("logged")
    url = f"sqlite:///{folder / 'logged.db'}"
    store = open_store(url)
    for name in TABLE_ORDER:
        store.insert(name, tables[name])
    store.dispose()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RECOMMENDER_API_KEYS": API_KEYS}
    log_file = folder / "server.log"
    with open(log_file, "w") as out:
        # One worker: what is scanned is what a process writes (several workers have their
        # own tests in test_workers.py); `serve` would otherwise start one per core.
        server = subprocess.Popen(
            [sys.executable, "-m", "recommender.cli", "serve", "--db", url, "--artifacts",
             str(artifacts), "--port", str(PORT), "--log-level", "debug", "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
        try:
            _wait_ready(server)
            _exercise(tables)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return log_file.read_text(encoding="utf-8", errors="replace")


def _wait_ready(server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server stopped while starting"
        try:
            if httpx.get(f"{BASE}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the server did not become ready in 180 s")


def _exercise(tables) -> None:
    """Every API route with every caller; events and profiles with birth years; errors."""
    admin = {"X-API-Key": KEYS["admin"]}
    platform = {"X-API-Key": KEYS["platform"]}
    with httpx.Client(base_url=BASE, timeout=120) as client:
        decision = client.post("/v1/cohorts/C01/elderly/decisions", headers=admin,
                               json={"course_id": "K0001", "action": "pin"}).json()
        values = {**PATH_EXAMPLES, "decision_id": decision["decision_id"]}
        served = client.get("/v1/model", headers=admin).json()["version"]
        for (method, route), _ in MATRIX.items():
            path = re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), route)
            for key in CALLER_KEYS.values():
                body = BODIES.get((method, route))
                client.request(method, path, headers={} if key is None else {"X-API-Key": key},
                               json=None if body is None else body(served))
        residents = tables["residents"].head(20)
        for row in residents.itertuples():
            client.get(f"/v1/residents/{row.resident_id}/recommendations", headers=platform)
            client.get(f"/v1/households/{row.household_id}/recommendations", headers=platform)
            client.post("/v1/recommendations", headers=platform,
                        json={"birth_year": int(row.birth_year), "community_id": "C01"})
            client.post("/v1/recommendations", headers=platform,  # refused: year and band
                        json={"birth_year": int(row.birth_year), "age_band": "preschool"})
        events = [{"event_id": f"E-log-{uuid.uuid4().hex[:8]}-{i}", "resident_id": rid,
                   "course_id": "K0001", "event": "view", "occurred_at": "2026-01-05T10:00"}
                  for i, rid in enumerate(residents["resident_id"])]
        events.append({"event_id": "E-log-bad", "resident_id": "R999999", "course_id": "K0001",
                       "event": "rate", "value": 9, "occurred_at": "1900-01-01"})
        client.post("/v1/events", headers=platform, json={"events": events})
        client.post("/v1/admin/reload", headers=admin)


def test_the_log_is_a_real_run(server_log):
    assert "Application startup complete" in server_log
    assert re.search(r'"GET /v1/residents/R\d+/recommendations HTTP/1.1" 200', server_log)
    assert '"POST /v1/admin/reload HTTP/1.1" 200' in server_log
    assert "database sqlite:///" in server_log  # where the data are, said at the start


def test_no_key_in_the_logs(server_log):
    for key in KEYS.values():
        assert key not in server_log


def test_no_personal_attribute_in_the_logs(server_log, tables):
    residents = tables["residents"]
    for name in ("birth_year", "household_id", "gender"):
        assert name not in server_log
    resident_id = re.compile(r"\bR\d{6}\b")
    household_id = re.compile(r"\bH\d{5}\b")
    years = set(residents["birth_year"].astype(str))
    for line in server_log.splitlines():
        if resident_id.search(line):
            assert not household_id.search(line), line
            assert not years & set(re.findall(r"\b(?:19|20)\d\d\b", line)), line

"""Every status the OpenAPI schema documents for a route is one the route really answers: for
each documented (route, status) a request here gets exactly that status. (That every status a
route answers is documented is checked by schemathesis, ``test_schema_fuzz.py``, and by the
access matrix, ``test_access.py``.)"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.schemas import PATH_EXAMPLES
from recommender.serving import open_store
from recommender.serving.cohorts import CohortService
from recommender.settings import Settings
from tests.api.test_access import (  # noqa: F401  (matrix_app: the fixture, used below)
    API_KEYS,
    BODIES,
    CALLER_KEYS,
    CALLERS,
    MATRIX,
    _decision,
    matrix_app,
)
from tests.api.test_coordinator import _Uncalibrated

TOO_BIG = b"x" * (1_048_576 + 1)  # one byte over the default RECOMMENDER_MAX_BODY_BYTES


@pytest.fixture(scope="module")
def apps(matrix_app, tmp_path_factory):  # noqa: F811
    """The served app, and one over the same store with no model at all."""
    empty = tmp_path_factory.mktemp("no-model")
    no_model = create_app(Settings(database_url=matrix_app.state.settings.database_url,
                                   artifacts_dir=empty, api_keys=API_KEYS))
    with TestClient(no_model):
        yield matrix_app, no_model


def _caller(route_key, allowed: bool) -> str:
    """A caller the matrix says gets through (2xx), or one it refuses with 403."""
    for caller, status in zip(CALLERS, MATRIX[route_key], strict=True):
        if (status < 300) if allowed else status == 403:
            return caller
    raise AssertionError(f"no caller for {route_key}")


def _send(app, method: str, route: str, caller: str, values: dict | None = None,
          body=None, content: bytes | None = None, headers: dict | None = None):
    filled = {**PATH_EXAMPLES, **(values or {})}
    if "{decision_id}" in route and "decision_id" not in (values or {}):
        filled["decision_id"] = _decision(app)
    path = re.sub(r"{(\w+)}", lambda m: str(filled[m.group(1)]), route)
    key = CALLER_KEYS[caller]
    headers = {**(headers or {}), **({} if key is None else {"X-API-Key": key})}
    if body is None and content is None and (method, route) in BODIES:
        body = BODIES[(method, route)]()
    return TestClient(app).request(method, path, headers=headers, json=body, content=content)


def _first_path_parameter(route: str) -> str | None:
    found = re.search(r"{(\w+)}", route)
    return found.group(1) if found else None


def _store_down(app, monkeypatch, tmp_path):
    """The app's own store object pointed at a database that cannot be opened (a folder)."""
    broken = open_store(f"sqlite:///{tmp_path}", create=False)
    monkeypatch.setattr(app.state.service.store, "engine", broken.engine)
    return broken


def produce(status: int, method: str, route: str, apps, monkeypatch, tmp_path):
    """A request to ``route`` that should get ``status``."""
    served, no_model = apps
    key = (method, route)
    ok = _caller(key, allowed=True)
    first = _first_path_parameter(route)
    if status in (200, 201):
        return _send(served, method, route, ok)
    if status == 400:
        return _send(served, method, route, ok, content=b'{"\xff\xfe": 1}',
                     headers={"Content-Type": "application/json"})
    if status == 401:
        return _send(served, method, route, "none")
    if status == 403:
        return _send(served, method, route, _caller(key, allowed=False))
    if status == 413:
        return _send(served, method, route, ok, content=TOO_BIG)
    if status == 422:
        if first is not None:  # an id the path pattern (or an int) refuses
            return _send(served, method, route, ok, values={first: "bad id!"})
        return _send(served, method, route, ok, body={"not_a_field": 1})
    if status == 404:
        unknown = 999_999_999 if first == "decision_id" else "NOTHING-HERE"
        return _send(served, method, route, ok, values={first: unknown})
    if status == 409:
        if route == "/v1/admin/reload":
            return _send(no_model, method, route, ok)
        service = served.state.service
        monkeypatch.setattr(served.state, "cohorts", CohortService(
            service.store, _Uncalibrated(service.holder), service.today), raising=False)
        return _send(served, method, route, ok)
    if status == 503:
        answer = _send(no_model, method, route, ok)
        if answer.status_code == 503:
            return answer
        values = {"decision_id": _decision(served)} if first == "decision_id" else None
        broken = _store_down(served, monkeypatch, tmp_path)
        try:
            return _send(served, method, route, ok, values=values)
        finally:
            monkeypatch.undo()
            broken.dispose()
    raise AssertionError(f"no way to produce {status} on {method} {route}")


def documented(app) -> list[tuple[str, str, int]]:
    schema = app.openapi()
    return [(method.upper(), path, int(status))
            for path, item in schema["paths"].items() for method, op in item.items()
            for status in op["responses"]]


def test_every_documented_status_is_answered(apps, monkeypatch, tmp_path):
    served, _ = apps
    cases = documented(served)
    assert len(cases) > 60
    wrong = []
    for method, route, status in cases:
        if (method, route) in (("GET", "/readyz"),) and status == 503:
            answer = TestClient(apps[1]).get("/readyz")
        else:
            answer = produce(status, method, route, apps, monkeypatch, tmp_path)
        monkeypatch.undo()
        served.state.cohorts = None
        if answer.status_code != status:
            wrong.append(f"{method} {route}: documented {status}, got {answer.status_code} "
                         f"{answer.text[:150]}")
    assert not wrong, "\n".join(wrong)

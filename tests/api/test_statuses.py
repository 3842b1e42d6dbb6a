"""Every status the OpenAPI schema documents for a route is one the route really answers: for
each documented (route, status) a request here gets exactly that status. (That every status a
route answers is documented is checked by schemathesis, ``test_schema_fuzz.py``, and by the
access matrix, ``test_access.py``.)"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.schemas import MAX_NUMBER_ID
from recommender.serving import open_store
from recommender.serving.cohorts import CohortService
from recommender.settings import Settings
from recommender.training import registry
from tests.api.conftest import ADMIN
from tests.api.test_access import (  # noqa: F401  (matrix_app: the fixture, used below)
    API_KEYS,
    BODIES,
    CALLER_KEYS,
    CALLERS,
    MATRIX,
    _decision,
    _unique,
    admitted_caller,
    fill_path,
    matrix_app,
    served_version,
)
from tests.api.test_coordinator import _Uncalibrated

TOO_BIG = b"x" * (1_048_576 + 1)  # one byte over the default RECOMMENDER_MAX_BODY_BYTES
EXPERIMENT = "/v1/admin/experiment"
RESIDENT = "/v1/residents/{resident_id}"


def _two_versions(app) -> dict:
    """A start of an experiment the app accepts: the served version against the other one of
    its artifacts folder (the matrix's own body names the served one twice, to be refused)."""
    served = served_version(app)
    other = next(v["version"] for v in registry.list_versions(app.state.settings.artifacts_dir)
                 if v["version"] != served)
    return {"version_a": served, "version_b": other, "share": 0.5}


# The bodies of answered requests where the matrix's body is one the handler refuses.
ACCEPTED_BODIES = {("POST", EXPERIMENT): _two_versions}


@pytest.fixture(scope="module")
def apps(matrix_app, tmp_path_factory):  # noqa: F811
    """The served app, and one over the same store with no model at all."""
    empty = tmp_path_factory.mktemp("no-model")
    no_model = create_app(Settings(database_url=matrix_app.state.settings.database_url,
                                   artifacts_dir=empty, api_keys=API_KEYS))
    with TestClient(no_model):
        yield matrix_app, no_model


def _refused_caller(route_key) -> str:
    """A caller the matrix refuses with 403."""
    return next(caller for caller, status in zip(CALLERS, MATRIX[route_key], strict=True)
                if status == 403)


def _body(app, method: str, route: str):
    """The JSON body a request to ``route`` of ``app`` sends unless told otherwise."""
    if (method, route) in ACCEPTED_BODIES:
        return ACCEPTED_BODIES[(method, route)](app)
    make = BODIES.get((method, route))
    return None if make is None else make(served_version(app))


def _send(app, method: str, route: str, caller: str, values: dict | None = None,
          body=None, content: bytes | None = None, headers: dict | None = None,
          params: dict | None = None):
    path = fill_path(app, method, route, values)
    key = CALLER_KEYS[caller]
    headers = {**(headers or {}), **({} if key is None else {"X-API-Key": key})}
    if body is None and content is None:
        body = _body(app, method, route)
    return TestClient(app).request(method, path, headers=headers, json=body, content=content,
                                   params=params)


def _first_path_parameter(route: str) -> str | None:
    found = re.search(r"{(\w+)}", route)
    return found.group(1) if found else None


def _store_down(app, monkeypatch, tmp_path):
    """The app's own store object pointed at a database that cannot be opened (a folder)."""
    broken = open_store(f"sqlite:///{tmp_path}", create=False)
    monkeypatch.setattr(app.state.service.store, "engine", broken.engine)
    return broken


def _admin(app, method: str, route: str, **kwargs):
    return _send(app, method, route, admitted_caller((method, route)), **kwargs)


def experiment_or_resident(status: int, method: str, route: str, app):
    """The requests for an experiment route's or the resident route's status that the generic
    ones below do not make, or None. Every experiment started here is stopped again."""
    if route == RESIDENT and status == 200:  # an update: the same profile, sent again
        new = {"resident_id": f"R-statuses-{_unique()}"}
        assert _send(app, method, route, "platform", values=new).status_code == 201
        return _send(app, method, route, "platform", values=new)
    if route == f"{EXPERIMENT}/report" and status in (404, 422):
        params = {"experiment_id": 999_999} if status == 404 else {"days": 0}
        return _admin(app, method, route, params=params)
    if route != EXPERIMENT or (method, status) not in (
            ("POST", 201), ("POST", 404), ("POST", 409), ("DELETE", 200), ("DELETE", 404)):
        return None
    if method == "POST" and status == 404:
        return _admin(app, method, route, body={**_two_versions(app), "version_b": "v-none"})
    if status == 404:  # stopping when none runs
        return _admin(app, method, route)
    try:
        started = _admin(app, "POST", route)
        if status == 201:
            return started
        assert started.status_code == 201, started.text
        return _admin(app, method, route)  # a second start (409), or the stop (200)
    finally:
        _admin(app, "DELETE", route)


def produce(status: int, method: str, route: str, apps, monkeypatch, tmp_path):
    """A request to ``route`` that should get ``status``."""
    served, no_model = apps
    key = (method, route)
    ok = admitted_caller(key)
    first = _first_path_parameter(route)
    special = experiment_or_resident(status, method, route, served)
    if special is not None:
        return special
    if status in (200, 201):
        return _send(served, method, route, ok)
    if status == 400:
        return _send(served, method, route, ok, content=b'{"\xff\xfe": 1}',
                     headers={"Content-Type": "application/json"})
    if status == 401:
        return _send(served, method, route, "none")
    if status == 403:
        return _send(served, method, route, _refused_caller(key))
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
        # The body the served app accepts (an experiment's versions are the served app's).
        answer = _send(no_model, method, route, ok, body=_body(served, method, route))
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


@pytest.mark.parametrize("route", ["/v1/decisions/{n}", "/v1/admin/experiment/report"
                                                          "?experiment_id={n}"])
def test_a_number_id_past_the_stores_range_is_refused_not_a_database_error(client, route):
    """The store keeps decision and experiment ids as INTEGER: PostgreSQL refuses a larger
    number in a comparison, which was a 503; the API refuses it (422), on both backends."""
    largest = client.request("DELETE" if "decisions" in route else "GET",
                             route.format(n=MAX_NUMBER_ID), headers=ADMIN)
    assert largest.status_code == 404, largest.text
    past = client.request("DELETE" if "decisions" in route else "GET",
                          route.format(n=MAX_NUMBER_ID + 1), headers=ADMIN)
    assert past.status_code == 422, past.text
    assert past.json()["detail"][0]["field"] in ("path.decision_id", "query.experiment_id")

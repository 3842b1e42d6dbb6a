"""Who may call what: every route of the app, called with no key, a wrong key and the key of
every role (platform, coordinator, a coordinator limited to another community, admin).

The expected answers are written once, as data (``MATRIX``); the test first checks that the
matrix lists exactly the app's routes, so a new route without an entry fails here.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from api.main import create_app
from api.routes.coordinator_page import KEY_COOKIE
from api.schemas import PATH_EXAMPLES
from recommender.data.store import open_store
from recommender.domain import TABLE_ORDER
from recommender.settings import Settings

KEYS = {"platform": "m-plat-key-1", "coordinator": "m-coord-key-2",
        "scoped": "m-scoped-key-3", "admin": "m-admin-key-4"}
CALLERS = ("none", "wrong", "platform", "coordinator", "scoped", "admin")
CALLER_KEYS = {"none": None, "wrong": "not-a-configured-key", **KEYS}
# The scoped coordinator's community is not the one in the example paths (PATH_EXAMPLES).
SCOPE = "C02"
API_KEYS = (f"platform:{KEYS['platform']},coordinator:{KEYS['coordinator']},"
            f"coordinator@{SCOPE}:{KEYS['scoped']},admin:{KEYS['admin']}")

EVERYONE = (200,) * 6
PLATFORM_ONLY = (401, 401, 200, 403, 403, 403)
ADMIN_ONLY = (401, 401, 403, 403, 403, 200)
IN_COHORT = (401, 401, 403, 200, 403, 200)  # a coordinator's route about community C01
PAGE = (303, 303, 403, 303, 403, 303)  # a form of the page: signed-in coordinators go back

# (method, route) -> the status for each caller, in CALLERS order.
MATRIX = {
    ("GET", "/openapi.json"): EVERYONE,
    ("GET", "/docs"): EVERYONE,
    ("GET", "/docs/oauth2-redirect"): EVERYONE,
    ("GET", "/redoc"): EVERYONE,
    ("GET", "/static-offline-docs"): EVERYONE,
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/metrics"): EVERYONE,
    ("GET", "/v1/residents/{resident_id}/recommendations"): PLATFORM_ONLY,
    ("POST", "/v1/recommendations"): PLATFORM_ONLY,
    ("GET", "/v1/households/{household_id}/recommendations"): PLATFORM_ONLY,
    ("GET", "/v1/courses/{course_id}/similar"): PLATFORM_ONLY,
    ("POST", "/v1/events"): PLATFORM_ONLY,
    ("GET", "/v1/model"): (401, 401, 200, 200, 200, 200),
    ("PUT", "/v1/residents/{resident_id}"): (401, 401, 201, 403, 403, 403),  # a new id each
    ("POST", "/v1/admin/reload"): ADMIN_ONLY,
    # An admin reaches the handlers; the calls change nothing: the start names the served
    # version twice (refused, 422), the stop finds nothing running (404), and the report is
    # the one of the finished experiment the store holds (matrix_app).
    ("POST", "/v1/admin/experiment"): (401, 401, 403, 403, 403, 422),
    ("GET", "/v1/admin/experiment"): ADMIN_ONLY,
    ("DELETE", "/v1/admin/experiment"): (401, 401, 403, 403, 403, 404),
    ("GET", "/v1/admin/experiment/report"): ADMIN_ONLY,
    ("GET", "/v1/cohorts"): (401, 401, 403, 200, 200, 200),
    ("GET", "/v1/cohorts/{community_id}/{band}/suggestions"): IN_COHORT,
    ("GET", "/v1/cohorts/{community_id}/{band}/suggestions.csv"): IN_COHORT,
    ("GET", "/v1/cohorts/{community_id}/{band}/analytics"): IN_COHORT,
    ("POST", "/v1/cohorts/{community_id}/{band}/decisions"): (401, 401, 403, 201, 403, 201),
    ("GET", "/v1/cohorts/{community_id}/{band}/decisions"): IN_COHORT,
    ("DELETE", "/v1/decisions/{decision_id}"): IN_COHORT,
    # The page: the key is the one in the sign-in cookie (or, to sign in, in the form).
    ("GET", "/coordinator/login"): (200, 200, 200, 303, 303, 303),
    ("POST", "/coordinator/login"): (401, 401, 403, 303, 303, 303),
    ("POST", "/coordinator/logout"): (303,) * 6,
    ("GET", "/coordinator"): (303, 303, 403, 200, 403, 200),
    ("POST", "/coordinator/decisions"): PAGE,
    ("POST", "/coordinator/decisions/{decision_id}/undo"): PAGE,
}


def admitted(status: int) -> bool:
    """Whether a status of the matrix means the caller got past the key check (the handler
    answered, possibly with a refusal of its own)."""
    return status not in (401, 403)


def admitted_caller(route_key) -> str:
    """The first caller the matrix lets through to ``route_key``'s handler."""
    return next(caller for caller, status in zip(CALLERS, MATRIX[route_key], strict=True)
                if admitted(status))


def _unique() -> str:
    return uuid.uuid4().hex[:10]


def served_version(app) -> str:
    return app.state.service.holder.version


# What each call sends besides its key: JSON bodies (built for the version the server serves),
# query strings, forms.
BODIES = {
    ("POST", "/v1/recommendations"): lambda served: {"birth_year": 1956, "community_id": "C01"},
    ("POST", "/v1/events"): lambda served: {"events": [{
        "event_id": f"E-matrix-{_unique()}", "resident_id": "R000001", "course_id": "K0001",
        "event": "view", "occurred_at": "2026-01-05T10:00:00"}]},
    ("POST", "/v1/cohorts/{community_id}/{band}/decisions"): lambda served: {
        "course_id": "K0001", "action": "approve", "note": "access matrix"},
    ("PUT", "/v1/residents/{resident_id}"): lambda served: {"birth_year": 1956,
                                                            "community_id": "C01"},
    ("POST", "/v1/admin/experiment"): lambda served: {
        "version_a": served, "version_b": served, "share": 0.5},
}
QUERIES = {("GET", "/coordinator"): {"community": "C01", "band": "elderly"}}
FORMS = {
    ("POST", "/coordinator/decisions"): {"community": "C01", "band": "elderly",
                                         "course_id": "K0001", "action": "approve"},
}


def app_routes(app) -> set[tuple[str, str]]:
    """Every (method, path) the app answers (a mounted folder as GET of its prefix)."""
    found = set()
    for context in iter_route_contexts(app.router.routes):
        if isinstance(context.route, Mount):
            found.add(("GET", context.path))
            continue
        found.update((method, context.path) for method in context.methods - {"HEAD"})
    return found


@pytest.fixture(scope="module")
def matrix_app(tables, two_versions, tmp_path_factory):
    """The app over a store of its own holding the district and one finished A/B experiment,
    with two model versions in its artifacts folder (the first one served)."""
    root, first, second = two_versions
    url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}"
    store = open_store(url)
    for name in TABLE_ORDER:
        store.insert(name, tables[name])
    store.start_experiment(version_a=first, version_b=second, share=0.5, started_by="matrix")
    store.stop_experiment(by="matrix")
    store.dispose()
    app = create_app(Settings(database_url=url, artifacts_dir=root, api_keys=API_KEYS))
    with TestClient(app):
        yield app


def _decision(app) -> int:
    """A fresh decision about C01 (the one a DELETE or an undo acts on)."""
    r = TestClient(app).post("/v1/cohorts/C01/elderly/decisions",
                             json={"course_id": "K0001", "action": "approve"},
                             headers={"X-API-Key": KEYS["admin"]})
    assert r.status_code == 201, r.text
    return r.json()["decision_id"]


def fill_path(app, method: str, route: str, values: dict | None = None) -> str:
    """``route`` with its parameters from ``values``, else from the examples; a decision to
    act on is a fresh one, and a resident to register a new one."""
    filled = {**PATH_EXAMPLES, **(values or {})}
    if "{decision_id}" in route and "decision_id" not in (values or {}):
        filled["decision_id"] = _decision(app)
    if method == "PUT" and "resident_id" not in (values or {}):
        filled["resident_id"] = f"R-matrix-{_unique()}"
    return re.sub(r"{(\w+)}", lambda m: str(filled[m.group(1)]), route)


def call(app, method: str, route: str, caller: str):
    """One request of ``caller`` to ``route``, with the path filled from the examples."""
    path = fill_path(app, method, route)
    if route == "/static-offline-docs":
        path += "/swagger-ui.css"
    key = CALLER_KEYS[caller]
    client = TestClient(app, follow_redirects=False)
    if not route.startswith("/coordinator"):
        headers = {} if key is None else {"X-API-Key": key}
        body = BODIES.get((method, route))
        return client.request(method, path, headers=headers,
                              json=None if body is None else body(served_version(app)))
    # The page: a browser that holds a nonce (and its token), then the key's cookie.
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"',
                      client.get("/coordinator/login").text).group(1)
    form = {"csrf": token, **FORMS.get((method, route), {})}
    if route == "/coordinator/login" and method == "POST":
        form["key"] = key or ""
    elif key is not None:
        client.cookies.set(KEY_COOKIE, key)
    if method == "GET":
        return client.get(path, params=QUERIES.get((method, route)))
    return client.post(path, data=form)


def test_the_matrix_lists_every_route_of_the_app(matrix_app):
    routes = app_routes(matrix_app)
    assert routes - set(MATRIX) == set(), "routes without an entry in MATRIX"
    assert set(MATRIX) - routes == set(), "entries of MATRIX for routes that do not exist"


def test_every_caller_gets_the_expected_answer_on_every_route(matrix_app):
    wrong = []
    for (method, route), expected in MATRIX.items():
        for caller, status in zip(CALLERS, expected, strict=True):
            response = call(matrix_app, method, route, caller)
            if response.status_code != status:
                wrong.append(f"{method} {route} as {caller}: {response.status_code} "
                             f"(expected {status}) {response.text[:120]}")
            for key in KEYS.values():
                assert key not in response.text, (method, route, caller)
    assert not wrong, "\n".join(wrong)

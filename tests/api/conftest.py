"""Fixtures for the API tests: one small generated district, one REAL trained artifact (trained
once per session), and one running app per store backend (SQLite and PostgreSQL), driven over
HTTP with the FastAPI TestClient.

The app fixtures are session-scoped, so tests share the store: every test that posts events
uses its own event-id prefix and its own residents.
"""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import ExitStack
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.data.store import open_store
from recommender.domain import DISTRICT_TIMEZONE, TABLE_ORDER
from recommender.settings import Settings
from tests.conftest import BACKENDS, postgres_schema

KEYS = {"platform": "plat-key-123", "coordinator": "coord-key-456", "admin": "admin-key-789"}
API_KEYS = ",".join(f"{role}:{key}" for role, key in KEYS.items())
PLATFORM = {"X-API-Key": KEYS["platform"]}
ADMIN = {"X-API-Key": KEYS["admin"]}
COORDINATOR = {"X-API-Key": KEYS["coordinator"]}
SMALL_MODEL = {"als_factors": 16, "als_iterations": 4, "max_iter": 20, "knn_neighbours": 30,
               "n_candidates": 30, "max_train_users": 2000}


@pytest.fixture(scope="session")
def district(tmp_path_factory) -> Path:
    """A small generated district whose data ends today (so some courses are still open)."""
    from recommender.demo.generator import generate_district

    out = tmp_path_factory.mktemp("district")
    generate_district(out, residents=800, courses=90, seed=7, fmt="csv")
    return out


@pytest.fixture(scope="session")
def tables(district) -> dict[str, pd.DataFrame]:
    """The four district tables as text, the way the platform exported them."""
    return {t: pd.read_csv(district / f"{t}.csv", dtype=str, keep_default_na=False,
                           na_values=[""]) for t in TABLE_ORDER}


@pytest.fixture(scope="session")
def artifacts(district, tmp_path_factory) -> Path:
    """A real artifact trained on the district (once per session); `current` points at it."""
    from recommender.data.datasets import load_district
    from recommender.training.recipe import train_artifact

    root = tmp_path_factory.mktemp("artifacts")
    # The real training code, with small hyper-parameters so the session trains in seconds.
    train_artifact(load_district(district), root, seed=0, params=SMALL_MODEL)
    return root


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request, tables, tmp_path_factory):
    """A database of each backend holding the district (imported once per backend)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'api.db'}"
        else:
            url = stack.enter_context(postgres_schema("t_api_"))
        store = open_store(url)
        for name in TABLE_ORDER:
            store.insert(name, tables[name])
        store.dispose()
        yield url


@pytest.fixture(scope="session")
def app(db_url, artifacts):
    return create_app(Settings(database_url=db_url, artifacts_dir=artifacts, api_keys=API_KEYS))


@pytest.fixture(scope="session")
def client(app):
    """The running app (lifespan entered: store open, model loaded)."""
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def service(client, app):
    return app.state.service


@pytest.fixture
def store(service):
    return service.store


def today() -> dt.date:
    """The district's date: the service's "today", whatever the machine's time zone."""
    return dt.datetime.now(ZoneInfo(DISTRICT_TIMEZONE)).date()


def new_ids(prefix: str, n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{prefix}-{tag}-{i}" for i in range(n)]


@pytest.fixture(scope="session")
def two_versions(artifacts, district, tmp_path_factory) -> tuple[Path, str, str]:
    """An artifacts folder of its own holding two complete versions: the session's artifact
    (``current``) and one more trained with another seed; the folder and the two names.

    For the tests that start A/B experiments through the API, so their experiments have two
    real versions to serve and never reach the session's folder."""
    import shutil

    from recommender.data.datasets import load_district
    from recommender.training import artifacts as artifact_files
    from recommender.training import registry
    from recommender.training.recipe import train_artifact

    root = tmp_path_factory.mktemp("two_versions")
    first = artifact_files.resolve(artifacts)
    shutil.copytree(first, root / first.name)
    registry.promote(root, first.name)
    second = train_artifact(load_district(district), root, seed=1, promote=False,
                            params=SMALL_MODEL)
    return root, first.name, second.name

"""Train -> promote -> reload -> rollback through the API: the reload answer names the version
served before and now, and the registry's move (who, how, from which version) that made it
current; a running service serves what `current` points at only after a reload."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from recommender.settings import Settings
from recommender.training import registry
from tests.api.conftest import ADMIN, API_KEYS, PLATFORM, SMALL_MODEL


@pytest.fixture(scope="module")
def two_versions(artifacts, district, tmp_path_factory) -> tuple[Path, str, str]:
    """The session's artifact (A, current) and a second training (B, not promoted yet)."""
    from recommender.data.datasets import load_district
    from recommender.training.recipe import train_artifact

    root = tmp_path_factory.mktemp("registry-artifacts")
    shutil.copytree(artifacts, root, symlinks=True, dirs_exist_ok=True)
    a = registry.current_version(root)
    b = train_artifact(load_district(district), root, seed=1,
                       params={**SMALL_MODEL, "n_candidates": 25}, promote=False)
    return root, a, b.name


@pytest.fixture
def folder(two_versions, tmp_path) -> tuple[Path, str, str]:
    root, a, b = two_versions
    copy = tmp_path / "artifacts"
    shutil.copytree(root, copy, symlinks=True)
    return copy, a, b


def _reload(client) -> dict:
    r = client.post("/v1/admin/reload", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def _served(client) -> str:
    r = client.get("/v1/residents/R000001/recommendations", headers=PLATFORM)
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


def test_train_promote_reload_rollback(folder, db_url):
    root, a, b = folder
    app = create_app(Settings(database_url=db_url, artifacts_dir=root, api_keys=API_KEYS))
    with TestClient(app) as client:
        assert _served(client) == a
        registry.promote(root, b, by="ana")
        assert _served(client) == a  # a promotion alone does not change what runs
        body = _reload(client)
        assert (body["previous_version"], body["version"], body["changed"]) == (a, b, True)
        moved = body["moved"]
        assert (moved["by"], moved["action"], moved["from_version"], moved["to_version"]) == (
            "ana", "promote", a, b)
        assert moved["at"]
        assert _served(client) == b
        assert client.get("/v1/model", headers=PLATFORM).json()["version"] == b

        registry.rollback(root, by="bo")
        body = _reload(client)
        assert (body["previous_version"], body["version"], body["changed"]) == (b, a, True)
        assert (body["moved"]["action"], body["moved"]["by"], body["moved"]["from_version"]) == (
            "rollback", "bo", b)
        assert _served(client) == a
        again = _reload(client)  # nothing moved since: same version, same move
        assert (again["version"], again["changed"], again["moved"]) == (a, False, body["moved"])


def test_current_moved_outside_the_registry_reloads_without_a_move(folder, db_url):
    root, a, b = folder
    app = create_app(Settings(database_url=db_url, artifacts_dir=root, api_keys=API_KEYS))
    with TestClient(app) as client:
        os.replace(root / "current", root / "current.old")
        (root / "current").symlink_to(b)
        body = _reload(client)
        assert (body["previous_version"], body["version"], body["moved"]) == (a, b, None)
        (root / "history.jsonl").write_text("not json\n", "utf-8")
        assert _reload(client)["moved"] is None  # an unreadable history does not fail a reload

"""A model swap under load: promote and reload a new artifact, then a corrupt one, while
requests flow to a real server. No request fails, the corrupt artifact is refused, and
``/v1/model`` names the model that answers, before, during and after."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from recommender.data.store import open_store
from recommender.domain import TABLE_ORDER
from recommender.training.artifacts import MANIFEST, resolve
from recommender.training.registry import promote
from tests.api.conftest import ADMIN, PLATFORM
from tests.api.server import serving

CLIENTS = 4


@pytest.fixture
def own_db(tables, tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'swap.db'}"
    store = open_store(url)
    for name in TABLE_ORDER:
        store.insert(name, tables[name])
    store.dispose()
    return url


def _copy_version(root: Path, source: Path, name: str) -> Path:
    """``source`` copied to ``root/name`` with its manifest naming the new version."""
    target = root / name
    shutil.copytree(source, target)
    manifest = json.loads((target / MANIFEST).read_text("utf-8"))
    manifest["version"] = name
    (target / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    return target


def test_swap_under_load_fails_no_request(own_db, artifacts, tables, tmp_path):
    root = tmp_path / "artifacts"
    first = _copy_version(root, resolve(artifacts), "v-first")
    promote(root, first.name)
    second = _copy_version(root, first, "v-second")
    corrupt = _copy_version(root, first, "v-corrupt")
    victim = next(p for p in sorted(corrupt.rglob("*")) if p.is_file() and p.name != MANIFEST)
    victim.write_bytes(victim.read_bytes() + b"\0")
    residents = tables["residents"]["resident_id"].tolist()
    seen: list[tuple[float, float, str, int, str | None]] = []
    errors: list[str] = []
    stop = threading.Event()

    with serving(own_db, root, tmp_path) as server:
        def load(k: int) -> None:
            conn = server.connect()
            n = 0
            while not stop.is_set():
                n += 1
                path = ("/v1/model" if n % 2 else
                        f"/v1/residents/{residents[(k * 97 + n) % len(residents)]}/"
                        "recommendations?k=5")
                sent = time.monotonic()
                try:
                    status, body = conn.request("GET", path, key=PLATFORM["X-API-Key"])
                except OSError as exc:
                    errors.append(f"{path}: {exc!r}")
                    return
                version = body.get("version", body.get("model_version")) if isinstance(
                    body, dict) else None
                seen.append((sent, time.monotonic(), path, status, version))

        clients = [threading.Thread(target=load, args=(k,)) for k in range(CLIENTS)]
        for c in clients:
            c.start()
        admin = server.connect()
        try:
            time.sleep(1.5)
            promote(root, second.name)
            reload_sent = time.monotonic()
            status, body = admin.request("POST", "/v1/admin/reload", key=ADMIN["X-API-Key"])
            reloaded = time.monotonic()
            assert status == 200, body
            assert (body["previous_version"], body["version"], body["changed"]) == (
                "v-first", "v-second", True), body
            assert (body["moved"]["from_version"], body["moved"]["to_version"]) == (
                "v-first", "v-second"), body
            time.sleep(1.5)
            # promote() verifies, so the corrupt artifact is pointed at by hand, as a broken
            # copy or a bad deploy would.
            os.replace(root / "current", root / "current.bak")
            (root / "current").symlink_to(corrupt.name)
            status, body = admin.request("POST", "/v1/admin/reload", key=ADMIN["X-API-Key"])
            assert status == 409 and body["error"] == "reload_refused", body
            assert "checksum" in json.dumps(body)
            time.sleep(1.5)
            assert admin.request("GET", "/readyz")[0] == 200
        finally:
            stop.set()
            for c in clients:
                c.join(timeout=60)

    assert not errors, errors[:5]
    assert len(seen) > 50
    assert all(status == 200 for _, _, _, status, _ in seen), [s for s in seen if s[3] != 200][:5]
    assert {version for *_, version in seen} == {"v-first", "v-second"}
    for sent, received, path, _, version in seen:
        if received < reload_sent:
            assert version == "v-first", (path, version)
        elif sent > reloaded:  # after the swap, and after the refused corrupt one
            assert version == "v-second", (path, version)
    after = [s for s in seen if s[0] > reloaded]
    assert any(p == "/v1/model" for _, _, p, _, _ in after)
    assert any("recommendations" in p for _, _, p, _, _ in after)

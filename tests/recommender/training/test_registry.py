"""The registry over an artifacts folder: versions never overwritten, runs that do not finish leave
nothing, promotions and rollbacks move ``current`` atomically and are recorded, errors are clear.

These use small hand-made artifacts (one array file each); real trained models are in
``test_registry_training.py``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from recommender.training import registry
from recommender.training.artifacts import ArtifactError, ArtifactWriter, code_version
from recommender.training.registry import RegistryError


def _version(artifacts, value: float = 1.0, **fields) -> str:
    writer = ArtifactWriter.create(artifacts)
    np.savez(writer.path / "arrays.npz", x=np.full(3, value))
    writer.seal(params={"value": value}, **fields)
    return writer.path.name


def _current(artifacts) -> str | None:
    return registry.current_version(artifacts)


def test_versions_are_listed_oldest_first_and_never_overwritten(tmp_path):
    names = [_version(tmp_path, v) for v in (1.0, 2.0, 3.0)]  # within one second: -1, -2
    assert len(set(names)) == 3
    assert [v["version"] for v in registry.list_versions(tmp_path)] == sorted(names)
    for name, value in zip(names, (1.0, 2.0, 3.0)):
        assert registry.load_manifest(tmp_path, name, check=True)["params"] == {"value": value}
    # a fresh seal never takes an existing name, even one that a run is writing into
    assert _version(tmp_path, 4.0) not in names
    assert not [v for v in registry.list_versions(tmp_path) if v["current"]]


def test_a_run_that_does_not_seal_leaves_nothing(tmp_path):
    keep = _version(tmp_path)
    registry.promote(tmp_path, keep, by="tests")
    writer = ArtifactWriter.create(tmp_path)
    np.savez(writer.path / "arrays.npz", x=np.zeros(3))
    # while it writes, the run's folder is hidden and not a version
    assert writer.path.name.startswith(".")
    assert [v["version"] for v in registry.list_versions(tmp_path)] == [keep]
    writer.discard()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".registry")) == [
        "current", "history.jsonl", keep]
    assert _current(tmp_path) == keep and len(registry.history(tmp_path)) == 1


def test_promote_moves_current_and_records_who_when_from_to(tmp_path):
    first, second = _version(tmp_path, 1.0), _version(tmp_path, 2.0)
    entry = registry.promote(tmp_path, first, by="ana")
    assert entry["from"] is None and entry["to"] == first and entry["by"] == "ana"
    assert os.readlink(tmp_path / "current") == first  # a relative link inside the folder
    entry = registry.promote(tmp_path, second)  # who: the OS user
    assert entry["by"] == registry.operator_name() and entry["by"]
    assert (entry["from"], entry["to"], entry["action"]) == (first, second, "promote")
    assert _current(tmp_path) == second
    lines = (tmp_path / "history.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["to"] for line in lines] == [first, second]
    assert all(json.loads(line)["at"].endswith("+00:00") for line in lines)
    listed = {v["version"]: v["current"] for v in registry.list_versions(tmp_path)}
    assert listed == {first: False, second: True}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".current", ".history"))]


def test_rollback_undoes_moves_one_at_a_time(tmp_path):
    a, b, c = (_version(tmp_path, v) for v in (1.0, 2.0, 3.0))
    for version in (a, b, c):
        registry.promote(tmp_path, version, by="ana")
    assert registry.rollback_target(tmp_path) == b
    entry = registry.rollback(tmp_path, by="bo")
    assert (entry["from"], entry["to"], entry["action"], entry["by"]) == (c, b, "rollback", "bo")
    assert registry.rollback(tmp_path)["to"] == a and _current(tmp_path) == a
    with pytest.raises(RegistryError, match=f"nothing to roll back to: {a} was the first"):
        registry.rollback(tmp_path)
    assert _current(tmp_path) == a and len(registry.history(tmp_path)) == 5
    # a promotion after rollbacks is undone by the next rollback
    registry.promote(tmp_path, c)
    assert registry.rollback(tmp_path)["to"] == a


def test_rollback_with_no_history_or_a_current_moved_by_hand_is_refused(tmp_path):
    a, b = _version(tmp_path, 1.0), _version(tmp_path, 2.0)
    with pytest.raises(RegistryError, match="nothing to roll back to: no move of current"):
        registry.rollback(tmp_path)
    registry.promote(tmp_path, a)
    registry.promote(tmp_path, b)
    os.replace(tmp_path / "current", tmp_path / "old")
    (tmp_path / "current").symlink_to(a)  # outside the registry
    with pytest.raises(RegistryError, match=f"current is {a} but the last recorded move was to "
                                            f"{b}"):
        registry.rollback(tmp_path)


def test_unknown_already_current_and_corrupt_versions_are_refused(tmp_path):
    a, b = _version(tmp_path, 1.0), _version(tmp_path, 2.0)
    with pytest.raises(RegistryError, match=f"no current version .* promote one of: {a}, {b}"):
        registry.load_manifest(tmp_path)
    with pytest.raises(RegistryError, match=f"unknown version 'v0' .*known: {a}, {b}"):
        registry.promote(tmp_path, "v0")
    for bad in ("../x", ".tmp-x", "a/b", ""):
        with pytest.raises(RegistryError, match="unknown version"):
            registry.promote(tmp_path, bad)
    registry.promote(tmp_path, a)
    with pytest.raises(RegistryError, match=f"{a} is already current"):
        registry.promote(tmp_path, a)
    np.savez(tmp_path / b / "arrays.npz", x=np.zeros(3))  # tampered after sealing
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        registry.promote(tmp_path, b)
    assert _current(tmp_path) == a and len(registry.history(tmp_path)) == 1


def test_a_folder_with_a_broken_manifest_is_listed_with_the_reason(tmp_path):
    good = _version(tmp_path)
    (tmp_path / "v-broken").mkdir()
    (tmp_path / "v-broken" / "manifest.json").write_text("{", "utf-8")
    listed = {v["version"]: v for v in registry.list_versions(tmp_path)}
    assert listed[good]["error"] is None
    assert "unreadable manifest" in listed["v-broken"]["error"]
    with pytest.raises(RegistryError, match="unknown version 'v-broken'"):
        registry.promote(tmp_path, "v-broken")


def test_an_unreadable_history_line_is_named(tmp_path):
    a = _version(tmp_path)
    registry.promote(tmp_path, a)
    with open(tmp_path / "history.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"at": "2026-01-01", "to": \n')
    with pytest.raises(RegistryError, match="history.jsonl line 2: unreadable"):
        registry.rollback(tmp_path)


def test_code_version_names_the_commit_of_a_checkout(tmp_path):
    here = code_version()
    assert here["package"]
    if here["git_commit"] is not None:  # the tests run from a git checkout or worktree
        assert len(here["git_commit"]) == 40 and isinstance(here["dirty"], bool)
    # outside a checkout: the package version only
    assert code_version(tmp_path) == {"package": here["package"], "git_commit": None,
                                      "dirty": None}


def test_compare_manifests_pairs_every_figure(tmp_path):
    def metrics(ndcg, bands):
        return {"users": 10, "served_by": "reranker",
                "hybrid": {"ndcg@10": ndcg, "recall@10": 0.5},
                "popularity_by_band": {"ndcg@10": 0.1},
                "by_band": {band: {"users": 5, "hybrid": {"ndcg@10": ndcg}} for band in bands}}

    a = _version(tmp_path, 1.0, seed=0, validation_metrics=metrics(0.2, ["elderly", "youth"]),
                 data={"sha256": "aa", "interactions": 10})
    b = _version(tmp_path, 2.0, seed=1, validation_metrics=metrics(0.3, ["elderly"]),
                 data={"sha256": "bb", "interactions": 12})
    table = registry.compare_manifests(registry.load_manifest(tmp_path, a),
                                       registry.load_manifest(tmp_path, b))
    assert table["versions"] == (a, b)
    assert table["overall"]["ndcg@10"] == (0.2, 0.3)
    assert table["overall"]["coverage"] == (None, None)
    assert table["baseline"]["ndcg@10"] == (0.1, 0.1)
    assert table["by_band"]["elderly"]["ndcg@10"] == (0.2, 0.3)
    assert table["by_band"]["youth"]["users"] == (5, None)
    assert table["data"]["sha256"] == ("aa", "bb") and table["seed"] == (0, 1)
    assert table["params"] == {"value": (1.0, 2.0)}

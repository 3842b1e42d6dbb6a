"""Artifacts: checksums are enforced, ``current`` moves atomically and stays inside the dir."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.training.artifacts import ArtifactError, ArtifactWriter, resolve, verify
from recommender.training.registry import list_versions, promote


def _write(artifacts, value=1.0, make_current=True):
    writer = ArtifactWriter.create(artifacts)
    np.savez(writer.path / "arrays.npz", x=np.full(3, value))
    manifest = writer.seal(params={"value": value})
    if make_current:
        promote(artifacts, writer.path.name, by="tests")
    return writer.path, manifest


def test_seal_lists_checksums_and_promotes(tmp_path):
    path, manifest = _write(tmp_path)
    assert set(manifest["files"]) == {"arrays.npz"}
    assert len(manifest["files"]["arrays.npz"]) == 64
    assert resolve(tmp_path) == path.resolve()
    assert verify(path)["params"] == {"value": 1.0}


def test_second_artifact_takes_over_current(tmp_path):
    first, _ = _write(tmp_path, 1.0)
    second, _ = _write(tmp_path, 2.0)
    assert first != second
    assert resolve(tmp_path) == second.resolve()
    versions = list_versions(tmp_path)
    assert [v["current"] for v in versions] == [False, True]


def test_tampered_file_is_refused(tmp_path):
    path, _ = _write(tmp_path)
    np.savez(path / "arrays.npz", x=np.zeros(3))
    with pytest.raises(ArtifactError, match="checksum mismatch for arrays.npz"):
        verify(path)


def test_missing_file_and_missing_manifest_are_refused(tmp_path):
    path, _ = _write(tmp_path)
    (path / "arrays.npz").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verify(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        verify(path)


def test_unreadable_manifest_is_refused(tmp_path):
    path, _ = _write(tmp_path)
    (path / "manifest.json").write_text("{not json", "utf-8")
    with pytest.raises(ArtifactError, match="unreadable manifest"):
        verify(path)
    (path / "manifest.json").write_text(json.dumps({"format": 99}), "utf-8")
    with pytest.raises(ArtifactError, match="format 99"):
        verify(path)
    # a model saved before the recent-popularity component, or before the placed scores
    # (its trees learned on raw scores): a clear "retrain", not a crash or a worse ranking
    for older in (1, 2):
        (path / "manifest.json").write_text(json.dumps({"format": older}), "utf-8")
        with pytest.raises(ArtifactError,
                           match=f"format {older}, expected 3 .*train the model again"):
            verify(path)


def test_current_pointing_outside_is_refused(tmp_path):
    artifacts = tmp_path / "artifacts"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    artifacts.mkdir()
    (artifacts / "current").symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside"):
        resolve(artifacts)


def test_no_artifact_yet_says_train_first(tmp_path):
    with pytest.raises(ArtifactError, match="train one first"):
        resolve(tmp_path)

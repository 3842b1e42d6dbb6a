"""The registry with real trainings: identical inputs give identical results, a training that fails
or is interrupted leaves ``current`` and the versions alone, and the manifest records what a run
can be repeated from.

One small district per module, trained with small hyper-parameters (the real training code).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from recommender.data.datasets import load_district
from recommender.demo.generator import generate_district
from recommender.serving.engine import Engine
from recommender.serving.overlap import top_k_overlap
from recommender.training import recipe, registry
from recommender.training.recipe import train_artifact

SMALL = {"als_factors": 8, "als_iterations": 3, "max_iter": 20, "knn_neighbours": 20,
         "n_candidates": 20, "max_train_users": 1000}


@pytest.fixture(scope="module")
def district(tmp_path_factory, one_thread) -> Path:
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, residents=400, courses=40, seed=3, as_of=dt.date(2025, 6, 1))
    return folder


@pytest.fixture(scope="module")
def bundle(district):
    return load_district(district)


@pytest.fixture(scope="module")
def twins(bundle, tmp_path_factory) -> tuple[Path, Path]:
    """Two trainings on the same data with the same seed, in two artifacts folders."""
    first = train_artifact(bundle, tmp_path_factory.mktemp("first"), seed=5, params=SMALL)
    second = train_artifact(load_district_again(bundle), tmp_path_factory.mktemp("second"),
                            seed=5, params=SMALL)
    return first, second


def load_district_again(bundle):
    """The same data, loaded into new objects (nothing shared with the first run)."""
    return bundle.with_interactions(bundle.interactions.copy(deep=True))


def test_identical_inputs_give_identical_metrics_and_lists(twins):
    first, second = (registry.load_manifest(p.parent, p.name, check=True) for p in twins)
    for field in ("validation_metrics", "guard", "validation", "params", "seed", "data", "code",
                  "libraries"):
        assert first[field] == second[field], field
    assert first["validation_metrics"]["users"] > 0
    a, b = (Engine.load(p.parent, p.name) for p in twins)
    for user in a.users.index[:60]:
        ranked_a = a.recommend(a.context_for(user), n=10, explain=False)
        ranked_b = b.recommend(b.context_for(user), n=10, explain=False)
        assert [(r.item_id, r.score) for r in ranked_a] == [(r.item_id, r.score)
                                                            for r in ranked_b]
    overlap = top_k_overlap(a, b, sample=100, seed=1)
    assert overlap["residents"] == 100
    assert overlap["mean"] == overlap["identical"] == overlap["same_first"] == 1.0


def test_the_manifest_records_what_a_run_repeats_from(twins, bundle):
    manifest = registry.load_manifest(twins[0].parent)
    assert manifest["version"] == twins[0].name
    assert manifest["data"]["sha256"] == recipe._bundle_hash(bundle)
    assert len(manifest["data"]["sha256"]) == 64
    assert manifest["code"]["package"] and "git_commit" in manifest["code"]
    assert {"numpy", "scipy", "pandas", "scikit-learn", "implicit", "python"} <= set(
        manifest["libraries"])
    assert manifest["seed"] == 5 and manifest["params"]["seed"] == 5
    assert manifest["params"]["n_candidates"] == SMALL["n_candidates"]
    by_band = manifest["validation_metrics"]["by_band"]
    assert by_band and sum(f["users"] for f in by_band.values()) == manifest[
        "validation_metrics"]["users"]
    assert all(0.0 <= f["hybrid"]["ndcg@10"] <= 1.0 for f in by_band.values())
    # the one training move is in the history, by the OS user
    (move,) = registry.history(twins[0].parent)
    assert move["action"] == "train" and move["from"] is None and move["to"] == twins[0].name


def test_the_data_hash_covers_users_and_courses(bundle):
    users = bundle.users.copy()
    users.loc[users.index[0], "community_id"] = "C-elsewhere"
    moved = dataclasses.replace(bundle, users=users)
    assert recipe._bundle_hash(moved) != recipe._bundle_hash(bundle)
    assert recipe._bundle_hash(load_district_again(bundle)) == recipe._bundle_hash(bundle)


def test_the_data_hash_is_a_function_of_the_text_not_its_storage(bundle):
    inter = bundle.interactions
    ids = inter["event_id"].astype(object).tolist()
    half = len(ids) // 2
    as_chunks = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([ids[:half], ids[half:]])))
    stored = [inter.assign(event_id=inter["event_id"].astype(object)),
              inter.assign(event_id=inter["event_id"].astype("category")),
              inter.assign(event_id=as_chunks)]
    for other in stored:
        assert recipe._bundle_hash(bundle.with_interactions(other)) == recipe._bundle_hash(bundle)
    # the values' boundaries and their absence count, not only their characters
    glued = ids[:]
    glued[0], glued[1] = glued[0] + glued[1][:1], glued[1][1:]
    missing = [None, *ids[1:]]
    emptied = ["", *ids[1:]]
    hashes = {recipe._bundle_hash(bundle.with_interactions(inter.assign(event_id=v)))
              for v in (glued, missing, emptied)}
    assert len(hashes) == 3 and recipe._bundle_hash(bundle) not in hashes


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError, MemoryError])
def test_a_training_that_fails_while_writing_leaves_everything_alone(
        twins, bundle, tmp_path, monkeypatch, failure):
    import shutil

    artifacts = tmp_path / "artifacts"
    shutil.copytree(twins[0].parent, artifacts, symlinks=True)
    before = _state(artifacts)
    real = recipe.write_model_files

    def half_written(path, *args):
        real(path, *args)  # every model file written, then the run stops before the manifest
        raise failure("stopped")

    monkeypatch.setattr(recipe, "write_model_files", half_written)
    with pytest.raises(failure):
        train_artifact(bundle, artifacts, seed=5, params=SMALL)
    assert _state(artifacts) == before


def test_a_training_that_fails_while_fitting_leaves_everything_alone(twins, bundle, tmp_path,
                                                                      monkeypatch):
    import shutil

    artifacts = tmp_path / "artifacts"
    shutil.copytree(twins[0].parent, artifacts, symlinks=True)
    before = _state(artifacts)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(recipe, "fit_hybrid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_artifact(bundle, artifacts, seed=5, params=SMALL)
    assert _state(artifacts) == before


def test_training_without_promotion_adds_a_version_and_leaves_current(twins, bundle, tmp_path):
    import shutil

    artifacts = tmp_path / "artifacts"
    shutil.copytree(twins[0].parent, artifacts, symlinks=True)
    path = train_artifact(bundle, artifacts, seed=6, params=SMALL, promote=False)
    assert registry.current_version(artifacts) == twins[0].name
    assert [v["version"] for v in registry.list_versions(artifacts)] == [twins[0].name, path.name]
    assert len(registry.history(artifacts)) == 1


def _state(artifacts: Path) -> dict:
    """Everything a reader of the folder can see: its entries, current, versions and history."""
    return {"entries": sorted(p.name for p in artifacts.iterdir()),
            "current": registry.current_version(artifacts),
            "versions": registry.list_versions(artifacts),
            "history": registry.history(artifacts)}

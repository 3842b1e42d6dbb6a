"""``recommender models list | show | diff | promote | rollback | history`` on two real versions."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from recommender.cli import app
from recommender.data.datasets import load_district
from recommender.demo.generator import generate_district
from recommender.training import registry
from recommender.training.recipe import train_artifact

SMALL = {"als_factors": 8, "als_iterations": 3, "max_iter": 20, "knn_neighbours": 20,
         "n_candidates": 20, "max_train_users": 1000}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str, str]:
    """An artifacts folder with version A (current, by training) and version B (not promoted,
    another seed and fewer candidates)."""
    with threadpool_limits(1):
        folder = tmp_path_factory.mktemp("district")
        generate_district(folder, residents=300, courses=36, seed=4, as_of=dt.date(2025, 6, 1))
        bundle = load_district(folder)
        root = tmp_path_factory.mktemp("artifacts")
        a = train_artifact(bundle, root, seed=1, params=SMALL, by="trainer")
        b = train_artifact(bundle, root, seed=2, params={**SMALL, "n_candidates": 15},
                           promote=False)
    return root, a.name, b.name


@pytest.fixture
def artifacts(trained, tmp_path) -> tuple[Path, str, str]:
    """A copy of the trained folder each test may move ``current`` in."""
    root, a, b = trained
    copy = tmp_path / "artifacts"
    shutil.copytree(root, copy, symlinks=True)
    return copy, a, b


def run(*args: str):
    return CliRunner().invoke(app, ["models", *args])


def test_list_marks_current_and_shows_data_and_metrics(artifacts):
    root, a, b = artifacts
    result = run("list", "--artifacts", str(root))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "ndcg@10" in lines[0] and "data" in lines[0] and "created" in lines[0]
    line_a, line_b = (next(line for line in lines if v in line) for v in (a, b))
    assert line_a.startswith("*") and line_b.startswith(" ")
    sha = registry.load_manifest(root, a)["data"]["sha256"][:8]
    assert "district" in line_a and sha in line_a and sha in line_b
    listed = json.loads(run("list", "--artifacts", str(root), "--json").output)
    assert [(v["version"], v["current"]) for v in listed] == [(a, True), (b, False)]


def test_show_prints_the_manifest(artifacts):
    root, a, b = artifacts
    shown = json.loads(run("show", b, "--artifacts", str(root), "--verify").output)
    assert shown["version"] == b and shown["current"] is False and shown["seed"] == 2
    assert {"data", "code", "libraries", "params", "validation_metrics"} <= set(shown)
    assert json.loads(run("show", "--artifacts", str(root)).output)["version"] == a


def test_diff_prints_metrics_side_by_side_and_the_lists_overlap(artifacts):
    root, a, b = artifacts
    result = run("diff", a, b, "--artifacts", str(root), "--sample", "50")
    assert result.exit_code == 0, result.output
    out = result.output
    header = out.splitlines()[0]
    assert a in header and b in header and "B - A" in header
    ma, mb = (registry.load_manifest(root, v)["validation_metrics"] for v in (a, b))
    ndcg = next(line for line in out.splitlines() if line.strip().startswith("ndcg@10"))
    assert f"{ma['hybrid']['ndcg@10']:.4f}" in ndcg and f"{mb['hybrid']['ndcg@10']:.4f}" in ndcg
    for band in ma["by_band"]:
        assert f"band {band}" in out
    assert "parameters that differ" in out and "n_candidates" in out
    assert "top-10 lists on 50 residents both versions know" in out
    table = json.loads(run("diff", a, "current", "--artifacts", str(root), "--sample", "20",
                           "--json").output)
    assert table["overlap"]["mean"] == 1.0 and table["params"] == {}
    assert table["versions"] == [a, a]


def test_promote_rollback_and_history(artifacts):
    root, a, b = artifacts
    result = run("promote", b, "--artifacts", str(root), "--by", "ana")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"current: {a} -> {b} (by ana)"
    assert registry.current_version(root) == b
    result = run("rollback", "--artifacts", str(root))
    assert result.exit_code == 0, result.output
    assert registry.current_version(root) == a
    assert result.output.startswith(f"current: {b} -> {a} (rolled back by ")
    lines = run("history", "--artifacts", str(root)).output.splitlines()
    assert [line.split()[1:3] for line in lines] == [["trainer", "train"], ["ana", "promote"],
                                                     [registry.operator_name(), "rollback"]]


@pytest.mark.parametrize("args, message", [
    (["promote", "v-nope"], "version: unknown version 'v-nope'"),
    (["show", "v-nope"], "version: unknown version 'v-nope'"),
    (["diff", "v-nope", "current"], "version: unknown version 'v-nope'"),
    (["rollback"], "rollback: nothing to roll back to:"),
    (["promote", "current"], "is already current"),
])
def test_errors_are_one_line_and_exit_2(artifacts, args, message):
    root, _, _ = artifacts
    result = run(*args, "--artifacts", str(root))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_an_empty_folder_lists_nothing_and_has_no_current(tmp_path):
    assert "no versions" in run("list", "--artifacts", str(tmp_path)).output
    result = run("show", "--artifacts", str(tmp_path))
    assert result.exit_code == 2 and "no current version" in result.output

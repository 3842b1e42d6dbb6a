"""Any dataset in the generic format runs every protocol, or stops with one clear line.

Each shape of :mod:`tests.recommender.training.shapes` (coarse and numeric timestamps, a single
timestamp, missing side files and columns, tiny and large catalogues, single-interaction users,
duplicate rows, arbitrary weights) is written as a small CSV folder and benchmarked on every
protocol with a few baselines and the hybrid; ``recommender train`` runs on some of them. What
cannot work (a time cut of one timestamp, a folder that is not a dataset) must end with exit
code 2 and a one-line reason, never a traceback.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.bands import BAND_NAMES
from recommender.cli import app
from recommender.data.datasets import load_dataset
from recommender.evaluation.protocols import PROTOCOLS, SplitError, make_split, random_split
from recommender.training.benchmark import METRICS, run_benchmark
from tests.recommender.training.shapes import SHAPES, write_shape

ROOT = Path(__file__).resolve().parents[3]
MODELS = ["popularity", "popularity-by-band", "ease", "item-knn"]
TIME_PROTOCOLS = ("temporal", "cold-user")


@pytest.fixture(scope="module")
def folder_of(tmp_path_factory):
    """``folder_of(shape)``: the shape's folder, written once per module."""
    made: dict[str, Path] = {}

    def get(shape: str) -> Path:
        if shape not in made:
            made[shape] = write_shape(tmp_path_factory.mktemp(shape), shape, seed=0)
        return made[shape]

    return get


def _cases():
    for shape in SHAPES:
        for protocol in PROTOCOLS:
            if shape == "single-time" and protocol in TIME_PROTOCOLS:
                continue  # a clear error instead: test_one_timestamp_stops_the_time_protocols
            yield pytest.param(shape, protocol, id=f"{shape}-{protocol}")


def _check_document(doc: dict, protocol: str, dataset: str) -> None:
    """The benchmark's JSON document, with finite metrics in [0, 1] for every model."""
    assert doc["protocol"] == protocol and doc["dataset"] == dataset and doc["seed"] == 0
    split = doc["split"]
    assert {"test_users", "validation_users", "items", "train_interactions"} <= set(split)
    assert split["test_users"] > 0 and split["validation_users"] > 0
    assert set(doc["models"]) == {*MODELS, "hybrid"}
    for name, row in doc["models"].items():
        for metric in METRICS:
            value = row[metric]
            assert isinstance(value, float) and math.isfinite(value), (name, metric, value)
            assert 0.0 <= value <= 1.0, (name, metric, value)
        assert row["users"] == split["test_users"], name
        assert row["fit_s"] >= 0.0 and isinstance(row["params"], dict)
        assert sum(cell["users"] for cell in row["by_band"].values()) == split["test_users"]
        for band, cell in row["by_band"].items():
            assert band in (*BAND_NAMES, "unknown"), band
            assert all(0.0 <= cell[m] <= 1.0 for m in ("ndcg@10", "recall@10", "map@10"))
        if name != "hybrid":
            assert row["tuning"] and all(0.0 <= t["val_ndcg@10"] <= 1.0 for t in row["tuning"])
    assert doc["models"]["hybrid"]["guard"]["served_by"]
    # a JSON document: strict JSON (no NaN) round-trips it
    json.loads(json.dumps(doc, allow_nan=False))


@pytest.mark.parametrize(("shape", "protocol"), list(_cases()))
def test_every_protocol_runs_on_every_shape(folder_of, shape, protocol):
    folder = folder_of(shape)
    bundle = load_dataset(folder)
    logs: list[str] = []
    result = run_benchmark(bundle, protocol, seed=0, budget_s=0.0, log=logs.append,
                           models=MODELS)
    _check_document(result, protocol, folder.name)
    if shape in ("20-items", "3000-items"):
        assert result["split"]["items"] == int(shape.split("-")[0])


def test_coarse_timestamps_cut_before_the_last_one(folder_of):
    """The shape's 80th percentile is its last timestamp; the cuts fall before it."""
    bundle = load_dataset(folder_of("coarse"))
    times = bundle.interactions["timestamp"]
    assert times.nunique() == 4
    assert np.quantile(times, 0.8, method="lower") == times.max()
    for protocol in TIME_PROTOCOLS:
        result = run_benchmark(bundle, protocol, budget_s=0.0, log=lambda m: None,
                               models=["popularity"])
        assert result["split"]["test_users"] > 0
        assert result["split"]["train_interactions"] < len(times)


@pytest.mark.parametrize("protocol", TIME_PROTOCOLS)
def test_a_training_part_with_one_timestamp_validates_on_a_random_split(folder_of, protocol,
                                                                         caplog):
    bundle = load_dataset(folder_of("two-times"))
    split = make_split(bundle, protocol)
    assert split.train.interactions["timestamp"].nunique() == 1
    with caplog.at_level(logging.WARNING, logger="recommender.training.inputs"):
        result = run_benchmark(bundle, protocol, seed=0, budget_s=0.0, log=lambda m: None,
                               models=["popularity"])
    assert any("share one timestamp" in r.message and "using a random split" in r.message
               for r in caplog.records)
    assert result["split"]["validation_users"] == len(random_split(split.train, seed=1).users)


@pytest.mark.parametrize("protocol", TIME_PROTOCOLS)
def test_one_timestamp_stops_the_time_protocols(folder_of, protocol):
    bundle = load_dataset(folder_of("single-time"))
    with pytest.raises(SplitError, match=f"^{protocol}: all {len(bundle.interactions):,} "
                       "interactions share one timestamp .*: a .* split needs at least two "
                       "distinct times; use --protocol random or cold-item$"):
        run_benchmark(bundle, protocol, budget_s=0.0, log=lambda m: None, models=MODELS)


# -- recommender train --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["coarse", "single-time", "no-users-file", "weights"])
def test_train_runs_on_the_shape_and_records_its_validation_split(folder_of, tmp_path, shape):
    out = tmp_path / "artifacts"
    result = CliRunner().invoke(app, ["train", "--data", str(folder_of(shape)),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "current" / "manifest.json").read_text("utf-8"))
    validation = manifest["validation"]
    assert validation["users"] > 0
    if shape == "single-time":  # no time cut exists: the served model learned on a random one
        assert validation["protocol"] == "random"
        assert "share one timestamp" in validation["fallback_reason"]
    else:
        assert validation == {"protocol": "temporal", "fallback_reason": None,
                              "users": validation["users"]}


# -- unusable input: exit code 2, one line, no traceback -----------------------------------------


def _unusable(kind: str, folder: Path) -> Path:
    """A folder that ``benchmark --protocol temporal`` and ``train`` must refuse."""
    if kind == "missing-folder":
        return folder / "nowhere"
    folder.mkdir(parents=True)
    if kind == "no-interactions":
        pd.DataFrame({"user_id": ["u1"]}).to_csv(folder / "users.csv", index=False)
    elif kind == "bad-columns":
        pd.DataFrame({"user": ["u1"], "item": ["i1"], "time": ["2024-01-01"]}).to_csv(
            folder / "interactions.csv", index=False)
    elif kind == "empty-file":
        (folder / "interactions.csv").write_text("", "utf-8")
    elif kind == "header-only":
        (folder / "interactions.csv").write_text("user_id,item_id,timestamp\n", "utf-8")
    elif kind == "no-valid-split":
        # One timestamp and one item per user: no time cut, and nothing a random split could
        # hold out for a user with training history.
        pd.DataFrame({"user_id": [f"u{u}" for u in range(20)],
                      "item_id": [f"i{u % 4}" for u in range(20)],
                      "timestamp": "2024-01-01"}).to_csv(folder / "interactions.csv",
                                                         index=False)
    return folder


UNUSABLE = {
    "missing-folder": "not a folder",
    "no-interactions": "interactions.csv",
    "bad-columns": "missing required column",
    "empty-file": "file is empty",
    "header-only": "no interaction rows",
    "no-valid-split": "share one timestamp",
}


def _args(command: str, folder: Path, tmp_path: Path) -> list[str]:
    if command == "benchmark":
        return ["benchmark", "--dataset", str(folder), "--protocol", "temporal", "--budget", "0"]
    return ["train", "--data", str(folder), "--out", str(tmp_path / "artifacts")]


@pytest.mark.parametrize("kind", list(UNUSABLE))
@pytest.mark.parametrize("command", ["benchmark", "train"])
def test_unusable_input_is_one_line_and_exit_code_2(tmp_path, command, kind):
    folder = _unusable(kind, tmp_path / "data")
    result = CliRunner().invoke(app, _args(command, folder, tmp_path))
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not an escaped error
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and UNUSABLE[kind] in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_a_real_process_prints_no_traceback(folder_of):
    """The same in a subprocess, as a user runs it: one line on stderr, exit code 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "recommender.cli", "benchmark", "--dataset",
         str(folder_of("single-time")), "--protocol", "cold-user", "--budget", "0"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cold-user: all "), lines

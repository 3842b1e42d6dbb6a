"""Tuning and the parameters file: ``recommender tune`` writes what ``train --params`` reads.

One small district for the module; the search runs two trials (the defaults, then one TPE
draw) under a tiny budget.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.hybrid import HybridRanker
from recommender.cli import app
from recommender.demo.generator import generate_district
from recommender.training.artifacts import verify
from recommender.training.params import (
    ParamsError,
    artifact_params,
    check_params,
    read_params,
    write_params,
)
from recommender.training.tuning import SEARCH_SPACE, trials_path

AS_OF = dt.date(2025, 6, 1)


@pytest.fixture(scope="module")
def district(tmp_path_factory, one_thread) -> Path:
    folder = tmp_path_factory.mktemp("tune_district")
    generate_district(folder, residents=300, courses=30, seed=7, as_of=AS_OF)
    return folder


@pytest.fixture(scope="module")
def tuned(district, tmp_path_factory):
    out = tmp_path_factory.mktemp("tune_out") / "best.json"
    res = CliRunner().invoke(app, ["tune", "--data", str(district), "--budget", "2",
                                   "--trials", "2", "--seed", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return res, out


def test_tune_writes_the_best_params_and_records_every_trial(tuned):
    res, out = tuned
    doc = json.loads(out.read_text("utf-8"))
    assert set(doc) == {"params", "tuning"}
    assert set(doc["params"]) == set(SEARCH_SPACE)
    assert doc["tuning"]["trials"] == 2 and doc["tuning"]["seed"] == 1
    rows = list(csv.DictReader(trials_path(out).open(encoding="utf-8")))
    assert [r["trial"] for r in rows] == ["1", "2"]
    defaults = HybridRanker().get_params()
    # the first trial is the defaults, so the best is never worse than them
    # (the CSV writes None, the recent window's default, as an empty cell)
    def cell(text: str, default):
        if text == "":
            return None
        return text if isinstance(default, str) else float(text)

    assert all(cell(rows[0][k], defaults[k]) == defaults[k] for k in SEARCH_SPACE)
    values = [float(r["validation_ndcg@10"]) for r in rows]
    assert doc["tuning"]["value"] == max(values)
    assert doc["tuning"]["defaults_value"] == values[0]
    assert doc["tuning"]["value"] >= doc["tuning"]["defaults_value"]
    assert "trial 2 of 2" in res.stderr  # progress
    assert str(out) in res.stdout


def test_train_reads_the_tuned_params_and_the_manifest_records_them(tuned, district, tmp_path):
    _, out = tuned
    art = tmp_path / "art"
    res = CliRunner().invoke(app, ["train", "--data", str(district), "--out", str(art),
                                   "--params", str(out), "--seed", "1"])
    assert res.exit_code == 0, res.output
    manifest = verify((art / "current").resolve())
    doc = json.loads(out.read_text("utf-8"))
    for name, value in doc["params"].items():
        assert manifest["params"][name] == value, name
    assert manifest["params"]["seed"] == 1
    assert manifest["params_file"] == {"path": str(out.resolve()), "params": doc["params"]}
    # the same cut, parameters and seed: the artifact scores what the search scored
    assert manifest["validation_metrics"]["hybrid"]["ndcg@10"] == pytest.approx(
        doc["tuning"]["value"])
    assert artifact_params(manifest) == ({k: v for k, v in manifest["params"].items()
                                          if k not in ("seed", "random_state")}, 1)


@pytest.mark.parametrize(("content", "reason"), [
    ('{"params": {"ease_l2": -1}}', "params.ease_l2=-1: must be a finite float > 0"),
    ('{"params": {"knn_neighbours": 10.5}}', "params.knn_neighbours=10.5: must be a finite int"),
    ('{"params": {"max_iter": true}}', "params.max_iter=True"),
    ('{"params": {"depth": 3}}', "params.depth: unknown parameter of the hybrid"),
    ('{"params": {"random_state": 3}}', "give it with --seed"),
    ('{"params": [1, 2]}', "params: must be an object"),
    ('{"params": {}, "extra": 1}', "unknown key 'extra'"),
    ('{"ease_l2": 10}', 'must be a JSON object with a "params" object'),
    ('{"params": {', "not JSON"),
])
def test_train_refuses_a_bad_params_file_in_one_line(tmp_path, content, reason):
    bad = tmp_path / "params.json"
    bad.write_text(content, "utf-8")
    art = tmp_path / "art"
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "never-read"), "--out",
                                   str(art), "--params", str(bad)])
    assert res.exit_code == 2
    assert reason in res.output and "--params" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not art.exists()  # refused before any data is read or any folder made


def test_train_refuses_a_missing_params_file(tmp_path):
    res = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "art"), "--params",
                                   str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "no such parameters file" in res.output


def test_params_files_round_trip_and_are_checked_before_writing(tmp_path):
    path = write_params(tmp_path / "p.json", {"ease_l2": 50, "max_leaf_nodes": 31},
                        {"note": "by hand"})
    assert read_params(path) == {"ease_l2": 50, "max_leaf_nodes": 31}
    assert read_params(write_params(tmp_path / "empty.json", {})) == {}
    with pytest.raises(ParamsError, match="learning_rate=0"):
        write_params(tmp_path / "bad.json", {"learning_rate": 0})
    assert not (tmp_path / "bad.json").exists()
    assert check_params({"holdout_fraction": 0.5}) == {"holdout_fraction": 0.5}


def test_tune_refuses_a_budget_that_is_not_positive(district, tmp_path):
    res = CliRunner().invoke(app, ["tune", "--data", str(district), "--budget", "0", "--out",
                                   str(tmp_path / "p.json")])
    assert res.exit_code == 2 and "--budget" in res.output
    assert not (tmp_path / "p.json").exists()


def test_train_with_a_recent_window_in_days_counts_the_pairs_in_it(district, tmp_path):
    """A window taken from the benchmark's popularity-recent tuning trains as it was measured:
    the pipeline then builds the pairs' ages, which that window counts."""
    from recommender.serving.engine import Engine

    params = tmp_path / "recent.json"
    write_params(params, {"recent_window_days": 14.0})
    art = tmp_path / "art"
    res = CliRunner().invoke(app, ["train", "--data", str(district), "--out", str(art),
                                   "--params", str(params)])
    assert res.exit_code == 0, res.output
    manifest = verify((art / "current").resolve())
    assert manifest["params"]["recent_window_days"] == 14.0
    model = Engine.load(art).model
    assert model._components["pop_recent"].window == 14.0

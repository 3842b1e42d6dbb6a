"""The benchmark harness and the ``train`` / ``benchmark`` commands.

Small data and a zero tuning budget (one grid point per baseline) keep the module fast; what is
checked is the harness: the benchmark's JSON document, metric ranges, honest tuning on the
validation cut, the table, and the command line on a district and on a generic folder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from features.availability import AVAILABLE_AT_CUT, FULL_CATALOGUE
from features.bands import BAND_NAMES
from features.pipeline import FeaturePipeline
from models.weighting import WEIGHTINGS
from recommender.cli import app
from recommender.data.datasets import load_dataset, load_district
from recommender.evaluation.protocols import make_split
from recommender.training import benchmark
from recommender.training.benchmark import (
    BASELINES,
    METRICS,
    Evaluator,
    check_repeats,
    distinct_settings,
    fit_baseline,
    format_table,
    grid_settings,
    hybrid_params_from,
    run_benchmark,
    tune,
)
from recommender.training.inputs import prepare_fit
from recommender.training.report import band_comparison, format_gap, summarize

# The standard baselines; every BASELINES entry must run too, LightFM where it is installed
# (always in CI: the test command's install step builds it there).
REQUIRED = {"hybrid", "popularity", "popularity-recent", "popularity-by-band", "als", "bpr",
            "item-knn", "ease"}
MODEL_NAMES = REQUIRED | {b.name for b in BASELINES if not (b.missing and b.missing())}


@pytest.fixture(scope="module")
def bundle(district):
    return load_district(district)


@pytest.fixture(scope="module")
def result(bundle) -> dict:
    logs: list[str] = []
    out = run_benchmark(bundle, "temporal", seed=0, budget_s=0.0, log=logs.append)
    out["_logs"] = logs
    return out


@pytest.fixture(scope="module")
def generic(tmp_path_factory) -> Path:
    """A generic benchmark folder: two age bands with different tastes, 120 days of events."""
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("generic")
    n_users, n_items = 150, 24
    band = np.where(np.arange(n_users) % 2 == 0, "elderly", "school_age")
    rows = []
    start = pd.Timestamp("2024-01-01")
    for u in range(n_users):
        own = np.arange(n_items // 2) + (0 if band[u] == "elderly" else n_items // 2)
        for item in rng.choice(own, size=rng.integers(3, 8), replace=False):
            when = start + pd.Timedelta(days=float(rng.uniform(0, 120)))
            rows.append((f"u{u}", f"i{item}", when.isoformat()))
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        folder / "interactions.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "age_band": band}).to_csv(
        folder / "users.csv", index=False)
    pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                  "category": [f"c{i % 4}" for i in range(n_items)]}).to_csv(
        folder / "items.csv", index=False)
    return folder


def _check_document(doc: dict, protocol: str, dataset: str) -> None:
    assert doc["protocol"] == protocol
    assert doc["dataset"] == dataset
    assert set(doc["models"]) >= MODEL_NAMES
    assert set(doc["tuning"]) == {"budget_s", "settings"}
    for name, row in doc["models"].items():
        for metric in METRICS:
            value = row[metric]
            assert isinstance(value, float) and 0.0 <= value <= 1.0, (name, metric, value)
        assert row["fit_s"] >= 0.0
        assert isinstance(row["by_band"], dict) and row["by_band"], name
        for band, cell in row["by_band"].items():
            assert band in (*BAND_NAMES, "unknown"), band
            assert cell["users"] > 0
            assert cell["users"] == doc["split"]["users_by_band"][band], (name, band)
            for metric in ("ndcg@10", "precision@10", "recall@10", "map@10"):
                assert 0.0 <= cell[metric] <= 1.0, (name, band, metric)
    assert sum(doc["split"]["users_by_band"].values()) == doc["split"]["test_users"]
    for part in ("test", "validation"):
        cand = doc["candidates"][part]
        assert set(cand) == {"rule", "items", "cut", "positives", "positives_outside"}
        assert 0 < cand["items"] <= doc["split"]["items"]
        assert 0 <= cand["positives_outside"] <= cand["positives"]


# -- run_benchmark ------------------------------------------------------------------------------


def test_result_has_the_documented_json_shape(result, district):
    _check_document(result, "temporal", district.name)
    assert result["split"]["test_users"] > 0 and result["split"]["items"] == 40
    # it is a JSON document: round-trips without custom encoders for the documented fields
    doc = json.loads(json.dumps({k: v for k, v in result.items() if k != "_logs"}))
    assert doc["models"]["hybrid"]["ndcg@10"] == result["models"]["hybrid"]["ndcg@10"]


def test_metrics_per_band_add_up_to_the_test_users(result):
    test_users = result["split"]["test_users"]
    for name, row in result["models"].items():
        assert sum(cell["users"] for cell in row["by_band"].values()) == test_users, name
        if "users" in row:
            assert row["users"] == test_users


def test_every_age_band_is_reported_by_name(result, bundle):
    """Residents of every band are in the test set, so no band may be reported as unknown."""
    by_band = result["models"]["hybrid"]["by_band"]
    assert "unknown" not in by_band, by_band.keys()
    assert set(by_band) == set(BAND_NAMES)


def test_metrics_are_consistent(result):
    for name, row in result["models"].items():
        # every metric but coverage is 0 exactly when no list holds a relevant item
        hit = row["precision@10"] > 0
        assert (row["recall@10"] > 0) == hit, name
        assert (row["ndcg@10"] > 0) == hit, name
        assert (row["map@10"] > 0) == hit, name
        assert row["coverage"] > 0, name


def test_tuning_uses_the_validation_cut_within_the_budget(result):
    for baseline in BASELINES:
        row = result["models"][baseline.name]
        trials = row["tuning"]
        # budget 0: only the first grid point is tried
        assert len(trials) == 1, (baseline.name, trials)
        first = dict(zip(baseline.grid, (v[0] for v in baseline.grid.values())))
        assert trials[0]["params"] == first == row["params"]
        assert 0.0 <= trials[0]["val_ndcg@10"] <= 1.0
    assert any("time budget" in line for line in result["_logs"])
    assert result["models"]["hybrid"]["params"] == hybrid_params_from(
        {b.name: result["models"][b.name]["params"] for b in BASELINES})


def test_tune_picks_the_best_validation_point(bundle):
    split = make_split(bundle, "temporal", seed=0)
    data = prepare_fit(split.train, FeaturePipeline().fit(bundle), "temporal", seed=1,
                       warm_only=True)
    val, val_inputs = data.split, data.validation
    val_eval = Evaluator(val, data.mapping, val_inputs)
    ease = next(b for b in BASELINES if b.name == "ease")
    logs: list[str] = []
    params, trials = tune(ease, val_inputs, val_eval, budget_s=1e9, log=logs.append)
    # The district's cells sum weighted events, so every weighting reads them differently:
    # the whole grid, one departure from the first values at a time.
    first_l2, *other_l2 = ease.grid["l2"]
    raw, *others = WEIGHTINGS
    assert [t["params"] for t in trials] == (
        [{"l2": first_l2, "weighting": w} for w in WEIGHTINGS]
        + [{"l2": v, "weighting": raw} for v in other_l2]
        + [{"l2": v, "weighting": w} for v in other_l2 for w in others])
    best = max(t["val_ndcg@10"] for t in trials)
    assert params == next(t["params"] for t in trials if t["val_ndcg@10"] == best)
    assert logs == []
    # the validation cut is taken from the training part only: its targets are training pairs
    train_pairs = set(zip(split.train.interactions["user_id"], split.train.interactions["item_id"]))
    val_pairs = set(zip(val.test_relevant["user_id"], val.test_relevant["item_id"]))
    assert val_pairs and val_pairs <= train_pairs


def test_a_settings_count_tries_that_many_grid_points_whatever_the_budget(bundle):
    split = make_split(bundle, "temporal", seed=0)
    data = prepare_fit(split.train, FeaturePipeline().fit(bundle), "temporal", seed=1,
                       warm_only=True)
    val_eval = Evaluator(data.split, data.mapping, data.validation)
    ease = next(b for b in BASELINES if b.name == "ease")
    logs: list[str] = []
    _, by_time = tune(ease, data.validation, val_eval, budget_s=1e9, log=logs.append)
    _, counted = tune(ease, data.validation, val_eval, budget_s=0.0, log=logs.append,
                      settings=2)
    assert [t["params"] for t in counted] == [t["params"] for t in by_time[:2]]
    _, all_of_them = tune(ease, data.validation, val_eval, budget_s=0.0, log=logs.append,
                          settings=10_000)
    assert len(all_of_them) == len(by_time) > 2  # a count beyond the grid tries the grid
    assert logs == []


def test_format_table_names_every_model(result):
    table = format_table(result)
    for name in result["models"]:
        assert name in table
    for metric in METRICS:
        assert metric in table
    assert "temporal" in table and "hybrid / best baseline" in table
    for band in BAND_NAMES:
        assert band in table
    best = max(result["models"], key=lambda m: result["models"][m]["ndcg@10"])
    first_row = table.splitlines()[3]
    assert math.isclose(float(first_row.split()[1]), result["models"][best]["ndcg@10"],
                        abs_tol=1e-4)


# -- candidates: what the service would offer at the cut --------------------------------------


@pytest.fixture(scope="module")
def ended(tmp_path_factory) -> Path:
    """A generic folder whose most popular course ("old") ended long before any cut.

    Two users in three took "old" in the first month; the other six courses run all season and
    every user takes two or three of them later on. A fifth of the users have no age band.
    """
    rng = np.random.default_rng(8)
    folder = tmp_path_factory.mktemp("ended")
    start = pd.Timestamp("2024-01-01")
    rows = []
    for u in range(90):
        if u % 3:
            rows.append((f"u{u}", "old", start + pd.Timedelta(days=float(rng.uniform(0, 25)))))
        for item in rng.choice(6, size=rng.integers(2, 4), replace=False):
            rows.append((f"u{u}", f"c{item}", start + pd.Timedelta(
                days=float(rng.uniform(40, 120)))))
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        folder / "interactions.csv", index=False)
    bands = np.array(["elderly", "working_age", "school_age", "preschool", ""])
    pd.DataFrame({"user_id": [f"u{u}" for u in range(90)],
                  "age_band": bands[np.arange(90) % 5]}).to_csv(folder / "users.csv", index=False)
    pd.DataFrame({"item_id": ["old", *(f"c{i}" for i in range(6))],
                  "category": ["a", *("ab"[i % 2] for i in range(6))],
                  "end_date": ["2024-01-31", *["2024-06-30"] * 6]}).to_csv(
        folder / "items.csv", index=False)
    return folder


def _listed(monkeypatch) -> list[np.ndarray]:
    """Every list any model makes in the benchmark (tuning, test and the hybrid)."""
    lists: list[np.ndarray] = []
    original = benchmark.Evaluator.rank  # every list, with or without its scores

    def spy(self, model, groups=None):
        out = original(self, model, groups)
        lists.append(out[0])
        return out

    monkeypatch.setattr(benchmark.Evaluator, "rank", spy)
    return lists


def test_no_model_lists_a_course_that_ended_before_the_cut(ended, monkeypatch):
    bundle = load_dataset(ended)
    lists = _listed(monkeypatch)
    doc = run_benchmark(bundle, "temporal", budget_s=0.0, log=lambda m: None)
    old = FeaturePipeline().fit(bundle).id_mapping_.item_index(["old"])[0]
    assert len(lists) == 2 * len(BASELINES) + 1  # one trial and one test list each, + hybrid
    for recommended in lists:
        assert recommended.size and old not in recommended
    for part in ("test", "validation"):
        cand = doc["candidates"][part]
        assert cand["rule"] == AVAILABLE_AT_CUT and cand["items"] == 6, cand
    # "old" ran in January: never relevant after the cut
    assert doc["candidates"]["test"]["positives_outside"] == 0
    assert pd.Timestamp(doc["candidates"]["test"]["cut"]) > pd.Timestamp("2024-01-31")


def test_protocols_without_a_time_cut_rank_the_full_catalogue(ended, monkeypatch):
    """A random split's test pairs come from the whole period, each at its own moment: the
    course that ended in January is a candidate (and relevant for pairs drawn from then)."""
    bundle = load_dataset(ended)
    lists = _listed(monkeypatch)
    doc = run_benchmark(bundle, "random", budget_s=0.0, log=lambda m: None,
                        models=["popularity"])
    old = FeaturePipeline().fit(bundle).id_mapping_.item_index(["old"])[0]
    assert any((recommended == old).any() for recommended in lists)
    for part in ("test", "validation"):
        cand = doc["candidates"][part]
        assert cand == {**cand, "rule": FULL_CATALOGUE, "items": 7, "cut": None,
                        "positives_outside": 0}


def test_without_dates_every_model_ranks_the_full_catalogue(ended, tmp_path, monkeypatch):
    bundle = load_dataset(ended)
    undated = bundle.__class__(bundle.interactions, bundle.users,
                               bundle.items.drop(columns="end_date"), bundle.name)
    lists = _listed(monkeypatch)
    doc = run_benchmark(undated, "temporal", budget_s=0.0, log=lambda m: None,
                        models=["popularity"])
    old = FeaturePipeline().fit(bundle).id_mapping_.item_index(["old"])[0]
    # the most popular course heads the list of everyone who has not taken it
    assert all((recommended[:, 0] == old).any() for recommended in lists[:2])
    assert doc["candidates"]["test"] == {"rule": FULL_CATALOGUE, "items": 7, "cut": None,
                                         "positives": doc["candidates"]["test"]["positives"],
                                         "positives_outside": 0}


def test_the_district_ranks_what_is_available_at_its_cut(result):
    for part in ("test", "validation"):
        assert result["candidates"][part]["rule"] == AVAILABLE_AT_CUT
    # the validation cut is earlier: at least as many courses had not ended yet
    assert result["candidates"]["test"]["cut"] > result["candidates"]["validation"]["cut"]


def test_cold_item_ranks_the_held_out_items(bundle):
    doc = run_benchmark(bundle, "cold-item", budget_s=0.0, log=lambda m: None,
                        models=["popularity"])
    split = make_split(bundle, "cold-item", seed=0)
    cand = doc["candidates"]["test"]
    assert cand["rule"] == "held-out items"
    assert cand["items"] == len(split.cold_items)


# -- age bands, the recent window, repeats -------------------------------------------------------


def test_unknown_band_is_reported_and_compared(ended):
    doc = run_benchmark(load_dataset(ended), "random", budget_s=0.0, log=lambda m: None,
                        models=["popularity", "popularity-by-band"])
    assert doc["split"]["users_by_band"]["unknown"] > 0
    for row in doc["models"].values():
        assert row["by_band"]["unknown"]["users"] == doc["split"]["users_by_band"]["unknown"]
    rows = band_comparison(doc["models"])
    assert [r["band"] for r in rows][-1] == "unknown"
    for r in rows:
        best = max((n for n in doc["models"] if n != "hybrid"),
                   key=lambda n: doc["models"][n]["by_band"][r["band"]]["ndcg@10"])
        assert r["baseline"] == doc["models"][best]["by_band"][r["band"]]["ndcg@10"]
    section = format_table(doc).split("hybrid vs the best baseline of each age band")[1]
    band_rows = section.strip().split("\n\n")[0].splitlines()[2:-1]  # title end, header, key
    assert [line.split()[0] for line in band_rows] == [r["band"] for r in rows]
    ratio, difference, _, se = band_rows[-1].split()[-4:]
    assert ratio == f"{rows[-1]['hybrid'] / rows[-1]['baseline']:.3f}x"
    for r in rows:
        # the per-user difference from the band's best baseline: the same users, so its mean
        # is the difference of the band means
        assert r["gap"]["difference"] == pytest.approx(r["hybrid"] - r["baseline"])
        assert r["gap"]["se"] > 0 or r["hybrid"] == r["baseline"]
    assert float(difference) == pytest.approx(rows[-1]["gap"]["difference"], abs=1e-4)
    assert float(se) == pytest.approx(rows[-1]["gap"]["se"], abs=1e-4)


def test_a_band_of_one_user_has_no_standard_error():
    def run(seed: int, se) -> dict:
        cell = {"ndcg@10": 0.5, "users": 1}
        row = {m: 0.5 for m in ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage",
                                "users", "fit_s")}
        return {"seed": seed, "models": {
            "hybrid": {**row, "by_band": {"elderly": dict(cell)}},
            "ease": {**row, "by_band": {"elderly": {**cell, "hybrid_gap": {
                "difference": 0.1 * seed, "se": se}}}}}}

    lone = summarize([run(1, None), run(2, None)])["models"]["ease"]["by_band"]["elderly"]
    assert lone["hybrid_gap"] == {"difference": {"mean": pytest.approx(0.15),
                                                 "std": pytest.approx(0.0707, abs=1e-4)},
                                  "se": None}
    assert format_gap(lone["hybrid_gap"]) == "+0.1500 ± n/a"
    # one run with an error, one without: the mean of those there are
    mixed = summarize([run(1, 0.02), run(2, None)])["models"]["ease"]["by_band"]["elderly"]
    assert mixed["hybrid_gap"]["se"] == pytest.approx(0.02)
    assert json.dumps(lone, allow_nan=False)


def test_the_recent_window_is_tuned_on_validation(bundle):
    doc = run_benchmark(bundle, "temporal", budget_s=1e9, log=lambda m: None,
                        models=["popularity-recent"])
    row = doc["models"]["popularity-recent"]
    windows = next(b for b in BASELINES if b.name == "popularity-recent").grid["window"]
    assert [t["params"] for t in row["tuning"]] == [{"window": w} for w in windows]
    best = max(row["tuning"], key=lambda t: t["val_ndcg@10"])
    assert row["params"] == best["params"]


def test_recent_popularity_by_band_ranks_what_the_band_takes_up_now():
    """The band's recent counts decide, not everyone's: fitted on a matrix where the elderly
    took item 0 lately and everyone else item 1, an elderly newcomer gets item 0 first, a
    working-age one item 1, and only pairs inside the window count."""
    baseline = next(b for b in BASELINES if b.name == "popularity-recent-by-band")
    X = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 1]],
                               dtype=np.float32))
    # the pairs' ages in days; item 2 was taken long ago by the elderly and by one other
    age = sp.csr_matrix(np.array([[2, 0, 400], [3, 0, 0], [0, 1, 0], [0, 5, 0], [0, 4, 500]],
                                 dtype=np.float32))
    band = np.array([3, 3, 2, 2, 2])  # elderly, elderly, working-age x3
    inputs = SimpleNamespace(X=X, user_band=band, pair_age=age, item_category=None)
    model = fit_baseline(baseline, {"window": 30.0, "shrinkage": 1.0}, inputs)
    newcomers = sp.csr_matrix((2, 3), dtype=np.float32)
    ranked = model.recommend(np.array([5, 6]), newcomers, n=3, user_groups=np.array([3, 2]))[0]
    assert ranked[:, 0].tolist() == [0, 1]
    assert ranked[:, 2].tolist() == [2, 2]  # nothing of item 2 lies inside the window


def test_repeats_give_mean_and_std_over_seeds(generic):
    bundle = load_dataset(generic)
    doc = run_benchmark(bundle, "random", seed=3, budget_s=0.0, log=lambda m: None,
                        models=["popularity", "bpr"], repeats=2)
    assert [run["seed"] for run in doc["repeats"]] == [3, 4]
    summary = doc["summary"]
    assert summary["runs"] == 2 and summary["seeds"] == [3, 4]
    for name in ("popularity", "bpr", "hybrid"):
        values = [run["models"][name]["ndcg@10"] for run in doc["repeats"]]
        cell = summary["models"][name]["ndcg@10"]
        assert cell["mean"] == pytest.approx(np.mean(values))
        assert cell["std"] == pytest.approx(np.std(values, ddof=1))
    assert "±" in format_table(doc) and "mean ± std over 2 seeds" in format_table(doc)
    band = next(iter(doc["repeats"][0]["models"]["bpr"]["by_band"]))
    gaps = [run["models"]["bpr"]["by_band"][band]["hybrid_gap"] for run in doc["repeats"]]
    cell = summary["models"]["bpr"]["by_band"][band]["hybrid_gap"]
    assert cell["difference"]["mean"] == pytest.approx(np.mean([g["difference"] for g in gaps]))
    assert cell["se"] == pytest.approx(np.mean([g["se"] for g in gaps]))
    json.dumps(doc)
    # the same seed gives the same figures, BPR included
    again = run_benchmark(bundle, "random", seed=4, budget_s=0.0, log=lambda m: None,
                          models=["popularity", "bpr"])
    for name in ("popularity", "bpr", "hybrid"):
        assert again["models"][name]["ndcg@10"] == doc["repeats"][1]["models"][name]["ndcg@10"]


@pytest.mark.parametrize("protocol", ["temporal", "cold-user", "cold_user"])
def test_repeats_are_refused_for_time_based_protocols(protocol):
    with pytest.raises(ValueError, match="repeats=2 .* does not depend on the seed"):
        check_repeats(protocol, 2)
    check_repeats(protocol, 1)
    check_repeats("cold-item", 5)
    with pytest.raises(ValueError, match="repeats=0"):
        check_repeats("random", 0)


# -- command line -------------------------------------------------------------------------------


def test_cli_benchmark_cold_user_writes_the_json(district, tmp_path):
    out = tmp_path / "out" / "cold.json"
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(district), "--protocol",
                                   "cold-user", "--budget", "0", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text("utf-8"))
    _check_document(doc, "cold-user", district.name)
    assert "hybrid" in res.stdout and str(out) in res.stdout


def test_cli_benchmark_on_a_generic_folder_tunes_a_count_of_settings(generic, tmp_path):
    out = tmp_path / "random.json"
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(generic), "--protocol",
                                   "random", "--settings", "2", "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text("utf-8"))
    _check_document(doc, "random", generic.name)
    assert set(doc["models"]["hybrid"]["by_band"]) <= {"elderly", "school_age"}
    assert doc["tuning"] == {"budget_s": None, "settings": 2}
    tried = {name: len(row["tuning"]) for name, row in doc["models"].items() if name != "hybrid"}
    assert set(tried.values()) <= {1, 2} and 2 in tried.values(), tried  # grids of 1 point too
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(generic), "--settings", "0"])
    assert res.exit_code == 2 and "--settings" in res.output


def test_cli_benchmark_refuses_an_unknown_protocol(district):
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(district), "--protocol",
                                   "nonsense"])
    assert res.exit_code == 2
    assert "--protocol" in res.output and "nonsense" in res.output


def test_cli_benchmark_refuses_a_missing_dataset(tmp_path):
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(tmp_path / "nowhere")])
    assert res.exit_code == 2
    assert "nowhere" in res.output


def test_cli_train_writes_an_artifact_and_points_current_at_it(district, tmp_path):
    from recommender.serving.engine import Engine

    art = tmp_path / "art"
    res = CliRunner().invoke(app, ["train", "--data", str(district), "--out", str(art),
                                   "--seed", "3"])
    assert res.exit_code == 0, res.output
    current = art / "current"
    assert current.is_symlink() and current.resolve().parent == art.resolve()
    assert (current / "manifest.json").is_file()
    engine = Engine.load(art)
    assert engine.manifest["params"]["seed"] == 3
    assert engine.version in res.output


def test_cli_benchmark_refuses_repeats_of_a_time_cut(district):
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(district), "--protocol",
                                   "temporal", "--repeats", "3"])
    assert res.exit_code == 2
    assert "--repeats" in res.output and "does not depend on the seed" in res.output


def test_cli_benchmark_repeats_a_random_protocol(generic, tmp_path):
    out = tmp_path / "rep.json"
    res = CliRunner().invoke(app, ["benchmark", "--dataset", str(generic), "--protocol",
                                   "cold-item", "--budget", "0", "--repeats", "2",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text("utf-8"))
    assert len(doc["repeats"]) == 2 and set(doc["summary"]["models"]) >= MODEL_NAMES
    for run in doc["repeats"]:
        _check_document(run, "cold-item", generic.name)
    assert "±" in res.stdout


def test_a_model_scoring_cold_items_alike_gets_the_random_order_figure(bundle):
    """Every baseline scores held-out courses alike: its lists are a random order of them per
    user (the expectation over orders), not the order their ids sort in."""
    from models.popularity import Popularity

    split = make_split(bundle, "cold-item", seed=0)
    data = prepare_fit(split.train, FeaturePipeline().fit(bundle), "cold-item", seed=0)
    evaluator = Evaluator(split, data.mapping, data.full)
    model = Popularity().fit(data.full.X)
    n = evaluator.candidates.indices.size
    assert n >= 3
    # the expected nDCG@10 of a uniformly random order of the n candidates, user by user
    discounts = 1.0 / np.log2(np.arange(2, 12))
    relevant = np.diff(evaluator.relevant.indptr)
    ideal = np.array([discounts[:min(r, 10)].sum() for r in relevant])
    expected = np.mean(relevant / n * discounts[:min(n, 10)].sum() / ideal)
    drawn = [Evaluator(split, data.mapping, data.full, tie_seed=s).score(model)["ndcg@10"]
             for s in range(5)]
    assert abs(np.mean(drawn) - expected) < 0.1 * expected, (drawn, expected)
    # the same seed, the same figure; the ids' own order gives another list
    assert evaluator.score(model)["ndcg@10"] == drawn[0]
    by_index = model.recommend(evaluator.users, data.full.X[evaluator.users], n=10,
                               candidates=evaluator.candidates.indices)[0]
    assert not np.array_equal(by_index, evaluator.recommend(model))


def test_the_hybrid_takes_the_baselines_tuned_values():
    tuned = {"ease": {"l2": 50.0, "weighting": "log"}, "item-knn": {"k": 20},
             "popularity-recent": {"window": 7.0}, "als": {"factors": 64}}
    assert hybrid_params_from(tuned) == {"ease_l2": 50.0, "ease_weighting": "log",
                                         "knn_neighbours": 20, "knn_weighting": "raw",
                                         "recent_window_days": 7.0}
    assert hybrid_params_from({"popularity-recent": {}}) == {}
    # the factor autoencoder is off in the hybrid by default, and on as tuned: every user
    # per pass, as the baseline was fitted
    assert hybrid_params_from({"factor-autoencoder": {"factors": 128, "epochs": 60,
                                                      "l2": 1e-5, "weighting": "binary"}}) == {
        "factor_ae_factors": 128, "factor_ae_epochs": 60, "factor_ae_l2": 1e-5,
        "factor_ae_weighting": "binary", "factor_ae_epoch_users": None}


def test_a_grid_is_tried_one_departure_from_its_first_values_at_a_time():
    grid = {"a": [1, 2, 3], "b": ["x", "y"], "c": [0.5, 0.1]}
    order = [tuple(s.values()) for s in grid_settings(grid)]
    assert len(order) == len(set(order)) == 12  # every setting, once
    departures = [sum(v != grid[k][0] for k, v in zip(grid, s)) for s in order]
    assert departures == sorted(departures)  # none before all with fewer departures
    # every single departure before any double one, the last key's first
    assert order[:5] == [(1, "x", 0.5), (1, "x", 0.1), (1, "y", 0.5), (2, "x", 0.5),
                         (3, "x", 0.5)]
    assert grid_settings({}) == [{}]


def test_a_budget_of_a_few_fits_tries_each_weighting_of_ease():
    """A catalogue large enough that EASE's budget allows three fits (ml-latest-small's 9,000
    movies in 60 s) reads the matrix all three ways, where product order tried one l2 after
    another on the raw values."""
    ease = next(b for b in BASELINES if b.name == "ease")
    varied = sp.csr_matrix(np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]], dtype=np.float32))
    first_three = distinct_settings(ease.grid, varied)[:3]
    assert [s["weighting"] for s in first_three] == list(WEIGHTINGS)
    assert {s["l2"] for s in first_three} == {ease.grid["l2"][0]}


def test_weightings_that_read_the_matrix_alike_are_tried_once():
    grid = next(b for b in BASELINES if b.name == "ease").grid
    varied = sp.csr_matrix(np.array([[1.0, 0.0, 3.0], [2.0, 5.0, 0.0]], dtype=np.float32))
    ones, twos = varied.copy(), varied.copy()
    ones.data[:] = 1.0
    twos.data[:] = 2.0

    def weightings(X) -> list[str]:
        return list(dict.fromkeys(s["weighting"] for s in distinct_settings(grid, X)))

    assert weightings(varied) == ["raw", "binary", "log"]
    assert weightings(ones) == ["raw"]  # no weights: the grid of l2 alone, as before
    assert weightings(twos) == ["raw", "binary"]  # log reads equal values as 1, as binary
    assert len(distinct_settings(grid, ones)) == len(grid["l2"])


def test_the_hybrid_knowing_nothing_of_held_out_items_gets_the_random_order_figure(tmp_path):
    """Without items.csv nothing tells held-out courses apart: the hybrid's equal scores are
    ordered at random per user, as every baseline's are, not by the courses' ids."""
    from recommender.training.inputs import fit_hybrid
    from tests.recommender.training.shapes import write_shape

    bundle = load_dataset(write_shape(tmp_path / "d", "no-items-file", seed=0))
    split = make_split(bundle, "cold-item", seed=0)
    data = prepare_fit(split.train, FeaturePipeline().fit(bundle), "cold-item", seed=1,
                       warm_only=True)
    hybrid, _ = fit_hybrid(data, {"max_iter": 20}, seed=0)
    baseline = fit_baseline(next(b for b in BASELINES if b.name == "popularity"), {},
                            data.full)
    figures = {"hybrid": [], "popularity": []}
    lists = []
    for seed in range(6):
        evaluator = Evaluator(split, data.mapping, data.full, tie_seed=seed)
        lists.append(evaluator.recommend(hybrid))
        figures["hybrid"].append(evaluator.metrics(lists[-1])["ndcg@10"])
        figures["popularity"].append(evaluator.score(baseline)["ndcg@10"])
    assert not all(np.array_equal(lists[0], other) for other in lists[1:])
    assert len({tuple(row) for row in lists[0]}) > 1  # users get different orders
    # the same random keys order every model's equal scores: knowing nothing more than
    # popularity does about these courses, the hybrid lists them as it does
    assert figures["hybrid"] == figures["popularity"], figures


def test_lightfm_gives_the_same_figures_for_a_seed(generic):
    if os.environ.get("CI") != "true":  # in CI the install step has built it: never skip
        pytest.importorskip("lightfm", reason="LightFM is not installed: pip install -e "
                            "'.[compare]'")
    bundle = load_dataset(generic)
    docs = [run_benchmark(bundle, "cold-item", seed=1, budget_s=0.0, log=lambda m: None,
                          models=["lightfm", "popularity"]) for _ in range(2)]
    first, second = (doc["models"]["lightfm"] for doc in docs)
    assert first["ndcg@10"] == second["ndcg@10"]
    assert first["params"] == {"factors": 64, "epochs": 60, "side_features": True}
    assert docs[0]["left_out"] == {}


def test_a_baseline_whose_library_is_missing_is_left_out_with_its_reason(generic, monkeypatch):
    lightfm = next(b for b in BASELINES if b.name == "lightfm")
    monkeypatch.setattr(lightfm, "missing", lambda: "LightFM is not installed: pip install x")
    logs: list[str] = []
    doc = run_benchmark(load_dataset(generic), "random", seed=0, budget_s=0.0, log=logs.append,
                        models=["lightfm", "popularity"], repeats=2)
    assert doc["left_out"] == {"lightfm": "LightFM is not installed: pip install x"}
    assert all("lightfm" not in run["models"] for run in doc["repeats"])
    assert all(run["left_out"] == doc["left_out"] for run in doc["repeats"])
    assert any("lightfm" in line and "left out of this run" in line for line in logs)
    assert "lightfm" not in format_table(doc)

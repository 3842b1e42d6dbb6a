"""The evaluation report: ``recommender evaluate`` on a trained artifact, and its figures.

One small district and one artifact for the module; the command runs once on the temporal
protocol (a zero tuning budget: one grid point per baseline). The figures' arithmetic is
checked on hand-made lists.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from recommender.cli import app
from recommender.data.datasets import load_district
from recommender.training import benchmark
from recommender.training.artifacts import verify
from recommender.training.recipe import train_artifact
from recommender.training.report_metrics import (
    coverage_by_category,
    novelty,
    reliability,
    score_summary,
)

# LightFM where it is installed (always in CI); elsewhere the report says it was left out.
LEFT_OUT = benchmark.left_out()
BASELINES = {"popularity", "popularity-recent", "popularity-by-band",
             "popularity-recent-by-band", "als", "bpr", "item-knn", "ease", "factor-autoencoder",
             "category-popularity",
             "lightfm"} - set(LEFT_OUT)
METRIC_KEYS = {"ndcg@10", "precision@10", "recall@10", "map@10", "coverage", "users"}


@pytest.fixture(scope="module")
def artifact(district, tmp_path_factory) -> Path:
    """An artifact trained with a non-default parameter, so the report must carry it over."""
    art = tmp_path_factory.mktemp("report_art")
    train_artifact(load_district(district), art, seed=2, params={"knn_neighbours": 30})
    return art


@pytest.fixture(scope="module")
def evaluated(district, artifact, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    res = CliRunner().invoke(app, ["evaluate", "--data", str(district), "--artifacts",
                                   str(artifact), "--out", str(out), "--budget", "0"])
    assert res.exit_code == 0, res.output
    return res, out


@pytest.fixture(scope="module")
def metrics(evaluated) -> dict:
    _, out = evaluated

    def refuse(constant):
        raise AssertionError(f"metrics.json holds {constant}: not strict JSON")

    return json.loads((out / "metrics.json").read_text("utf-8"), parse_constant=refuse)


def test_report_files_exist_and_the_html_is_self_contained(evaluated):
    res, out = evaluated
    html = (out / "report.html").read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # nothing is fetched: no remote or relative source, no style sheet or script file
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert "<link" not in html.lower() and "<script" not in html.lower()
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) >= 6  # accuracy, bands, categories, novelty, calibration, scores
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "report written to" in res.stdout and "hybrid" in res.stdout
    assert "refitting" in res.stderr  # progress goes to stderr


def test_metrics_have_overall_and_by_band_for_the_model_and_every_baseline(metrics):
    models = metrics["models"]
    assert set(models) == BASELINES | {"hybrid"}
    assert metrics["left_out"] == LEFT_OUT
    for name, row in models.items():
        assert METRIC_KEYS <= set(row), name
        assert 0.0 <= row["ndcg@10"] <= 1.0
        assert row["by_band"], name
        for band, figures in row["by_band"].items():
            assert band in {"preschool", "school_age", "working_age", "elderly", "unknown"}
            assert METRIC_KEYS <= set(figures)
        assert sum(f["users"] for f in row["by_band"].values()) == row["users"]


def test_every_baseline_has_the_models_per_user_gap_per_band(metrics, evaluated):
    models = metrics["models"]
    for name in BASELINES:
        for band, figures in models[name]["by_band"].items():
            gap = figures["hybrid_gap"]
            # the same users: the mean of the per-user differences is the difference of means
            assert gap["difference"] == pytest.approx(
                models["hybrid"]["by_band"][band]["ndcg@10"] - figures["ndcg@10"], abs=1e-9)
            assert gap["se"] is None if figures["users"] == 1 else gap["se"] >= 0
    assert "hybrid_gap" not in next(iter(models["hybrid"]["by_band"].values()))
    html = (evaluated[1] / "report.html").read_text("utf-8")
    assert "Against the best baseline of each band" in html
    assert "difference ± SE" in html


def test_the_report_names_the_artifact_and_how_it_was_evaluated(metrics, artifact, evaluated):
    manifest = verify((artifact / "current").resolve())
    assert metrics["artifact"]["version"] == manifest["version"]
    assert metrics["artifact"]["seed"] == 2
    # the recipe was refitted with the artifact's own parameters
    assert metrics["models"]["hybrid"]["params"]["knn_neighbours"] == 30
    assert metrics["artifact"]["params"]["knn_neighbours"] == 30
    assert metrics["evaluated_as"].startswith("refitted")
    html = (evaluated[1] / "report.html").read_text("utf-8")
    assert manifest["version"] in html and "How the model was evaluated" in html


def test_coverage_novelty_calibration_and_score_sections(metrics):
    names = BASELINES | {"hybrid"}
    coverage = metrics["coverage_by_category"]
    assert set(coverage["models"]) == names
    assert set(coverage["candidates"]) <= {"handicraft", "intangible_heritage", "skills",
                                           "interest"}
    for row in coverage["models"].values():
        assert abs(sum(c["share_of_slots"] for c in row.values()) - 1.0) < 1e-9
        assert all(0.0 <= c["coverage"] <= 1.0 for c in row.values())
    assert set(metrics["novelty"]["models"]) == names
    for row in metrics["novelty"]["models"].values():
        assert 0.0 <= row["long_tail_share"] <= 1.0 and row["novelty_bits"] >= 0.0
    cal = metrics["calibration"]
    assert cal["available"] is True, cal
    assert cal["pairs"] == sum(b["pairs"] for b in cal["bins"]) > 0
    assert cal["positives"] > 0 and 0.0 <= cal["brier"] <= 1.0 and 0.0 <= cal["ece"] <= 1.0
    assert cal["users"] == 400  # every resident of the small district (below the sample size)
    assert set(metrics["scores"]) == names
    assert metrics["scores"]["hybrid"]["hits"]["positions"] > 0


def test_evaluate_refuses_an_unknown_version_and_protocol(district, artifact, tmp_path):
    res = CliRunner().invoke(app, ["evaluate", "v-none", "--data", str(district), "--artifacts",
                                   str(artifact), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "v-none" in res.output and len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(app, ["evaluate", "--data", str(district), "--artifacts",
                                   str(artifact), "--out", str(tmp_path), "--protocol", "x"])
    assert res.exit_code == 2 and "--protocol" in res.output
    assert not (tmp_path / "report.html").exists()


# -- the figures' arithmetic --------------------------------------------------------------------


def test_coverage_by_category_counts_slots_and_distinct_items():
    categories = np.array(["a", "a", "b", "c"], dtype=object)
    lists = {"m": np.array([[0, 2, -1], [0, 1, -1]])}
    out = coverage_by_category(lists, categories, np.array([0, 1, 2]))
    assert out["candidates"] == {"a": {"items": 2, "share": 2 / 3},
                                 "b": {"items": 1, "share": 1 / 3}}
    assert out["models"]["m"]["a"] == {"share_of_slots": 0.75, "items_listed": 2,
                                       "coverage": 1.0}
    assert out["models"]["m"]["b"] == {"share_of_slots": 0.25, "items_listed": 1,
                                       "coverage": 1.0}


def test_novelty_measures_popularity_against_what_was_taken_up():
    # item 0: 4 of 4 users, item 1: 2, items 2..4: none
    X = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0],
                                [1, 0, 0, 0, 0]], dtype=np.float32))
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0, 0]]))
    out = novelty({"pop": np.array([[0, 1]]), "tail": np.array([[3, 4]])}, X, relevant)
    assert out["head_items"] == 1  # the most popular fifth of 5 items
    assert out["actual"]["mean_popularity"] == 0.5
    assert out["models"]["pop"]["mean_popularity"] == 0.75
    assert out["models"]["pop"]["long_tail_share"] == 0.5
    assert out["models"]["pop"]["popularity_ratio"] == 1.5
    assert out["models"]["tail"]["long_tail_share"] == 1.0
    assert out["models"]["tail"]["novelty_bits"] == pytest.approx(-np.log2(1 / 5))


def test_reliability_bins_have_equal_counts_and_a_perfect_model_has_no_error():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 20000)
    y = rng.uniform(size=p.size) < p
    out = reliability(p, y, bins=10)
    assert [b["pairs"] for b in out["bins"]] == [2000] * 10
    assert out["ece"] < 0.02
    assert all(abs(b["mean_predicted"] - b["observed"]) < 0.03 for b in out["bins"])
    biased = reliability(p / 4, y, bins=10)
    assert biased["ece"] > 0.05 and biased["predicted_total"] < biased["observed_total"]
    assert reliability(np.zeros(0), np.zeros(0, bool))["pairs"] == 0


def test_score_summary_splits_hits_from_misses_and_leaves_padding_out():
    recs = np.array([[2, 1, -1]])
    scores = np.array([[0.9, 0.1, -np.inf]])
    out = score_summary(recs, scores, sp.csr_matrix(np.array([[0, 0, 1]])))
    assert out["hits"]["positions"] == 1 and out["hits"]["quantiles"]["0.5"] == 0.9
    assert out["misses"]["positions"] == 1 and out["misses"]["quantiles"]["0.5"] == 0.1


def test_evaluate_refuses_a_damaged_artifact(district, artifact, tmp_path):
    copy = tmp_path / "art"
    version = (artifact / "current").resolve().name
    shutil.copytree(artifact / version, copy / version)
    (copy / version / "tables.npz").write_bytes(b"tampered")
    res = CliRunner().invoke(app, ["evaluate", version, "--data", str(district), "--artifacts",
                                   str(copy), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "checksum mismatch" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()

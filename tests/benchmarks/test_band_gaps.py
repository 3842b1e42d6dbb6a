"""benchmarks/band_gaps.py refits a benchmark run's baselines and compares them per band on the
validation users and on the test users; its test figures are the run's own."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender.data.datasets import load_dataset
from recommender.training.benchmark import run_benchmark

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("band_gaps", ROOT / "benchmarks" / "band_gaps.py")
band_gaps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(band_gaps)

MODELS = ["popularity", "popularity-by-band"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two age bands that take different halves of the catalogue, so that popularity by band
    beats global popularity in both."""
    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("bands")
    n_users, n_items = 200, 20
    band = np.where(np.arange(n_users) % 2 == 0, "elderly", "school_age")
    rows = []
    for u in range(n_users):
        own = np.arange(n_items // 2) + (0 if band[u] == "elderly" else n_items // 2)
        weights = np.linspace(2.0, 1.0, own.size)
        for item in rng.choice(own, size=rng.integers(4, 9), replace=False,
                               p=weights / weights.sum()):
            rows.append((f"u{u}", f"i{item}", int(rng.integers(1_700_000_000, 1_710_000_000))))
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        folder / "interactions.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "age_band": band}).to_csv(
        folder / "users.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def run_json(dataset, tmp_path_factory) -> Path:
    doc = run_benchmark(load_dataset(dataset), "random", seed=2, budget_s=0.0,
                        log=lambda m: None, models=MODELS)
    path = tmp_path_factory.mktemp("run") / "run.json"
    path.write_text(json.dumps(doc))
    return path


def _parse(out: str) -> dict:
    """``{part: {band: (users, {model: ndcg}, difference, se)}}`` from the printed lines."""
    parsed: dict = {}
    part = None
    for line in out.splitlines():
        if not line.startswith("  "):
            part = line.split()[0]
            parsed[part] = {}
            continue
        band, users = line.split()[:2]
        ndcg = {m: float(v) for m, v in re.findall(r"([a-z-]+) (0\.\d{4})", line)}
        diff, se = re.search(r"([+-]\d\.\d{4}) ± (\d\.\d{4}|nan)", line).groups()
        parsed[part][band] = (int(users), ndcg, float(diff), float(se))
    return parsed


def test_test_figures_are_the_runs_and_both_parts_agree(dataset, run_json, capsys):
    band_gaps.main([str(dataset), str(run_json), "--models", ",".join(MODELS)])
    parsed = _parse(capsys.readouterr().out)
    assert set(parsed) == {"validation", "test"}
    doc = json.loads(run_json.read_text())
    for band, (users, ndcg, diff, _) in parsed["test"].items():
        for model in MODELS:
            cell = doc["models"][model]["by_band"][band]
            assert users == cell["users"]
            assert ndcg[model] == pytest.approx(cell["ndcg@10"], abs=5e-5)
        assert diff == pytest.approx(ndcg["popularity-by-band"] - ndcg["popularity"], abs=2e-4)
    for part in parsed.values():
        assert set(part) == {"elderly", "school_age"}
        for _, _, diff, se in part.values():
            assert diff > 2 * se  # a real gap shows on both sets of users


def test_one_model_is_refused(dataset, run_json):
    with pytest.raises(SystemExit, match="at least two"):
        band_gaps.main([str(dataset), str(run_json), "--models", "popularity"])


def test_a_model_the_run_did_not_score_is_refused(dataset, run_json):
    with pytest.raises(SystemExit, match="not a baseline of this run"):
        band_gaps.main([str(dataset), str(run_json), "--models", "popularity,ease"])


def test_a_seed_the_run_does_not_hold_is_refused(dataset, run_json):
    with pytest.raises(SystemExit, match=r"holds seeds \[2\], not 0"):
        band_gaps.main([str(dataset), str(run_json), "--models", ",".join(MODELS),
                        "--seed", "0"])

"""The ablation script's variants reach inside the hybrid (its candidate rows); they must keep
fitting and ranking as the hybrid's private steps change, so each is fitted here on a small
dataset, and what it ablates is checked where it shows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from models.hybrid import SIGNALS
from recommender.data.datasets import load_dataset
from recommender.evaluation.candidates import split_candidates
from recommender.evaluation.protocols import make_split
from recommender.training import inputs
from recommender.training.benchmark import Evaluator
from recommender.training.recipe import pipeline_for
from tests.recommender.training.shapes import write_shape

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_ablation",
                                              ROOT / "benchmarks" / "bench_ablation.py")
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    bundle = load_dataset(write_shape(tmp_path_factory.mktemp("d") / "d", "epoch", seed=0))
    split = make_split(bundle, "random", seed=0)
    data = inputs.prepare_fit(split.train, pipeline_for({}).fit(bundle), "random", seed=1,
                              warm_only=True)
    evaluator = Evaluator(split, data.mapping, data.full,
                          split_candidates(split, data.mapping, bundle.items))
    return data, evaluator


@pytest.mark.parametrize("name", [v[0] for v in ablation.VARIANTS
                                  if v[1] is not ablation.HybridRanker])
def test_every_subclassed_variant_fits_and_ranks(prepared, name):
    data, evaluator = prepared
    _, cls, extra, guard_on = next(v for v in ablation.VARIANTS if v[0] == name)
    model, checked = ablation.fit_variant(cls, data, {"max_iter": 10, **extra}, 0, guard_on)
    assert 0.0 <= evaluator.score(model)["ndcg@10"] <= 1.0
    assert 0.0 < ablation.candidate_recall(model, evaluator) <= 1.0
    assert checked["users"] > 0


def test_a_blanked_signal_is_zero_in_every_row_the_trees_see(prepared):
    data, evaluator = prepared
    users = evaluator.users[:20]

    def history_column(cls) -> np.ndarray:
        model, _ = ablation.fit_variant(cls, data, {"max_iter": 10}, 0, False)
        _, _, rows = model._pair_rows(users, evaluator.inputs.X[users], model._context(users),
                                      evaluator.candidates.mask())
        assert rows.shape[0] > 0
        return rows[:, SIGNALS.index("history_size")]

    assert np.all(history_column(ablation.without("history_size")) == 0.0)
    assert np.any(history_column(ablation.HybridRanker) != 0.0)

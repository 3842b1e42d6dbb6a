"""The one fit: train and the benchmark prepare the hybrid's inputs with the feature pipeline and
fit it through the same two functions; the artifact holds what the pipeline built."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.availability import AVAILABLE_AT_CUT
from features.codes import band_codes
from features.frames import DataBundle, with_categorical_ids
from features.pipeline import FeaturePipeline
from models.hybrid import COMPONENTS, SIMPLEST_FIRST, HybridRanker
from recommender.data.datasets import load_district
from recommender.demo.generator import generate_district
from recommender.evaluation.candidates import split_candidates
from recommender.evaluation.metrics import ndcg_at_k
from recommender.evaluation.protocols import (
    SplitError,
    make_split,
    random_split,
    temporal_split,
    validation_split,
)
from recommender.training import benchmark, inputs, recipe
from recommender.training.inputs import (
    fit_hybrid,
    guard,
    prepare_fit,
    simplest_within_error,
    validation_cut,
)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("district")
    generate_district(folder, residents=200, courses=24, seed=11, as_of=dt.date(2025, 6, 1))
    return load_district(folder)


def test_prepare_fit_defaults_to_the_served_cut_with_newcomers(bundle):
    pipeline = FeaturePipeline().fit(bundle)
    data = prepare_fit(bundle, pipeline)
    cut = temporal_split(bundle, warm_only=False)
    assert data.split.test_relevant.equals(cut.test_relevant)
    assert data.split.cut == cut.cut
    # the re-ranker learns over the courses still running at the validation cut, as served
    available = split_candidates(cut, pipeline.id_mapping_, bundle.items)
    assert available.rule == AVAILABLE_AT_CUT and 0 < available.size < pipeline.id_mapping_.n_items
    np.testing.assert_array_equal(data.candidates, available.indices)
    # both inputs are the pipeline's, at the two cut-offs
    full, val = pipeline.transform(bundle), pipeline.transform(cut.train)
    assert (data.full.X != full.X).nnz == 0 and (data.validation.X != val.X).nnz == 0
    assert data.validation.cutoff == cut.cut < data.full.cutoff
    np.testing.assert_array_equal(data.validation.item_temporal, val.item_temporal)
    assert data.target.shape == full.X.shape
    assert data.target.sum() == len(cut.test_relevant)


def test_a_cold_item_cut_ranks_its_held_out_items(bundle):
    pipeline = FeaturePipeline().fit(bundle)
    split = make_split(bundle, "cold-item", seed=0)
    data = prepare_fit(split.train, pipeline, "cold-item", seed=1)
    inner = validation_split(split.train, "cold-item", seed=1)
    assert sorted(data.mapping.item_ids(data.candidates)) == sorted(inner.cold_items)


def test_fit_hybrid_is_seeded_and_reports_holdout_figures(bundle):
    data = prepare_fit(bundle, FeaturePipeline().fit(bundle))
    a, info = fit_hybrid(data, seed=4)
    b, _ = fit_hybrid(data, seed=4)
    users = np.arange(data.full.X.shape[0])
    side = {k: v[users] for k, v in data.full.side().items() if k.startswith("user_")}
    ids_a = a.recommend(users, data.full.X, n=5, **side)[0]
    np.testing.assert_array_equal(ids_a, b.recommend(users, data.full.X, n=5, **side)[0])
    assert set(info) == {"features_s", "fit_s", "guard", "validation_metrics", "validation"}
    assert info["validation"] == {"protocol": "temporal", "fallback_reason": None,
                                  "users": len(data.split.users)}
    metrics = info["validation_metrics"]
    assert metrics["users"] > 0 and 0.0 <= metrics["hybrid"]["ndcg@10"] <= 1.0


def test_train_and_benchmark_fit_through_the_same_function(bundle, tmp_path, monkeypatch):
    calls = []

    def spy(data, params=None, seed=0):
        calls.append((data.split.protocol, data.candidates is not None))
        return fit_hybrid(data, params, seed)

    monkeypatch.setattr(recipe, "fit_hybrid", spy)
    monkeypatch.setattr(benchmark, "fit_hybrid", spy)
    recipe.train_artifact(bundle, tmp_path / "art", seed=0)
    benchmark.run_benchmark(bundle, "cold-item", budget_s=0.0, log=lambda m: None,
                            models=["popularity"])
    # both restrict the re-ranker to candidates: the courses running at the served cut, the
    # held-out courses of the cold-item cut
    assert calls == [("temporal", True), ("cold-item", True)]
    assert recipe.prepare_fit is inputs.prepare_fit is benchmark.prepare_fit


def test_the_artifact_holds_the_pipelines_arrays(bundle, tmp_path):
    path = recipe.train_artifact(bundle, tmp_path / "art", seed=0)
    _, mapping, vocab, users, _, history, _ = recipe.read_model_files(path)
    pipeline = FeaturePipeline().fit(with_categorical_ids(bundle))
    expected = pipeline.transform(with_categorical_ids(bundle))
    assert mapping.user_ids_.tolist() == pipeline.id_mapping_.user_ids_.tolist()
    assert vocab.categories.tolist() == pipeline.vocabulary_.categories.tolist()
    assert (history != expected.X).nnz == 0
    bands = users["age_band"].reindex(mapping.user_ids_)
    np.testing.assert_array_equal(band_codes(bands.to_numpy()), expected.user_band)


def test_the_guard_serves_the_best_source_on_held_out_users(bundle):
    data = prepare_fit(bundle, FeaturePipeline().fit(bundle))
    model, info = fit_hybrid(data, seed=0)
    checked = info["guard"]
    assert checked["users"] == model.holdout_users_.size > 0
    scores = checked["ndcg@10"]
    best = max(model.components, key=scores.get)
    blend = f"reranker+{best}"
    assert set(scores) == {"reranker", *model.components, blend}
    # the one-standard-error rule along the chain best component -> trees -> their blend:
    # each replaces the choice before it only when it clearly beats that choice
    relevant = data.target[model.holdout_users_]
    per_user = {s: np.nan_to_num(ndcg_at_k(model.holdout_lists(s), relevant))
                for s in ("reranker", *model.components, blend)}
    served = best
    for source, step in zip(("reranker", blend), checked["steps"], strict=True):
        gain = per_user[source] - per_user[served]
        assert step == {"source": source, "against": served,
                        "margin": pytest.approx(gain.mean()),
                        "standard_error": pytest.approx(gain.std(ddof=1) / np.sqrt(gain.size))}
        if gain.mean() > gain.std(ddof=1) / np.sqrt(gain.size):
            served = source
    if served == best:  # then the simplest component within one standard error of the best
        served = next(c for c in SIMPLEST_FIRST if c == best or (
            (per_user[best] - per_user[c]).mean()
            <= (per_user[best] - per_user[c]).std(ddof=1) / np.sqrt(per_user[c].size)))
    assert checked["served_by"] == served and checked["best_component"] == best
    assert checked["margin"] == pytest.approx(scores["reranker"] - scores[best])
    assert model.served_by == checked["served_by"]
    assert info["validation_metrics"]["served_by"] == checked["served_by"]


def test_the_guard_falls_back_to_a_component_that_beat_the_trees(bundle, caplog):
    """Relevance made of EASE's own held-out top items: EASE is perfect on it, so unless the
    trees are perfect too, the model must rank by EASE alone and say so."""
    data = prepare_fit(bundle, FeaturePipeline().fit(bundle))
    model, _ = fit_hybrid(data, seed=0)
    ease = model.holdout_component_recs_[list(model.holdout_sources_).index("ease")]
    users = np.repeat(model.holdout_users_, 3)
    items = ease[:, :3].ravel()
    keep = items >= 0
    target = sp.csr_matrix((np.ones(keep.sum()), (users[keep], items[keep])),
                           shape=data.target.shape)
    with caplog.at_level(logging.WARNING, logger="recommender.training.inputs"):
        checked = guard(model, target)
    assert checked["ndcg@10"]["ease"] == pytest.approx(1.0)
    assert checked["ndcg@10"]["reranker"] < 1.0  # the trees do not reproduce EASE exactly
    assert checked["served_by"] == model.served_by == "ease"
    assert "did not beat the ease component" in caplog.text
    X = data.full.X
    users = np.arange(X.shape[0])
    ranked = model.recommend(users, X, n=5)[0]
    ease_model = model._components["ease"]
    np.testing.assert_array_equal(ranked[:, 0], ease_model.recommend(users, X, n=1)[0][:, 0])


def test_among_components_the_simplest_within_one_standard_error_is_served():
    rng = np.random.default_rng(0)
    noisy = rng.random(40)
    per_user = {"factor_ae": noisy + 0.02, "pop_recent": noisy + 0.3 * rng.standard_normal(40),
                "ease": noisy + 0.02 + 0.1 * rng.standard_normal(40), "pop_band": noisy - 0.2}
    # pop_band is clearly below; recent popularity's noise hides its 0.02 behind
    assert simplest_within_error(per_user, "factor_ae") == "pop_recent"
    per_user["pop_recent"] = noisy - 0.1  # now clearly below: EASE, as good within noise,
    # is the simpler
    assert simplest_within_error(per_user, "factor_ae") == "ease"
    per_user["ease"] = noisy - 0.1
    assert simplest_within_error(per_user, "factor_ae") == "factor_ae"
    assert simplest_within_error({"pop": noisy, "pop_band": noisy.copy()}, "pop") == "pop_band"
    assert set(SIMPLEST_FIRST) == set(COMPONENTS)


def test_the_guard_serves_the_blend_when_trees_and_component_each_find_half(bundle):
    """Relevance made of the trees' and EASE's first held-out items: each finds its own at the
    top and the other's lower down; their blend puts both near the top, so it is served."""
    data = prepare_fit(bundle, FeaturePipeline().fit(bundle))
    model, _ = fit_hybrid(data, seed=0)
    firsts = np.c_[model.holdout_lists("reranker")[:, 0], model.holdout_lists("ease")[:, 0]]
    users = np.repeat(model.holdout_users_, 2)
    keep = firsts.ravel() >= 0
    target = sp.csr_matrix((np.ones(keep.sum()), (users[keep], firsts.ravel()[keep])),
                           shape=data.target.shape)
    target.data[:] = 1.0  # where both firsts are one item
    checked = guard(model, target)
    blend = checked["steps"][-1]["source"]
    assert checked["served_by"] == model.served_by == blend == "reranker+ease"
    assert checked["ndcg@10"][blend] > max(checked["ndcg@10"]["reranker"],
                                           checked["ndcg@10"]["ease"])


def _one_time(items_per_user: int, n_users: int = 30) -> DataBundle:
    """Every interaction at one timestamp: no time cut exists."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}") for u in range(n_users)
            for i in rng.choice(6, items_per_user, replace=False)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(
        timestamp=pd.Timestamp("2024-05-01"), event="interact", weight=1.0, value=np.nan)
    return DataBundle(inter, pd.DataFrame({"user_id": sorted(inter["user_id"].unique())}),
                      pd.DataFrame({"item_id": sorted(inter["item_id"].unique())}), "one-time")


@pytest.mark.parametrize("protocol", ["temporal", "cold-user"])
def test_an_impossible_time_cut_falls_back_to_a_random_validation_split(protocol):
    train = _one_time(items_per_user=3)
    split, report = validation_cut(train, protocol, seed=1)
    assert report["protocol"] == "random" == split.protocol
    assert report["fallback_reason"].startswith(f"{protocol}: all 90 interactions share one")
    assert report["users"] == len(split.users) > 0
    assert split.test_relevant.equals(random_split(train, seed=1).test_relevant)
    data = prepare_fit(train, FeaturePipeline().fit(train), protocol, seed=1)
    assert data.validation_report == report and data.split.protocol == "random"
    _, info = fit_hybrid(data)
    assert info["validation"] == report


def test_a_validation_cut_that_works_reports_no_fallback(bundle):
    split, report = validation_cut(bundle, "temporal")
    assert report == {"protocol": "temporal", "fallback_reason": None, "users": len(split.users)}


def test_no_validation_split_at_all_names_the_shape_of_the_data():
    train = _one_time(items_per_user=1)  # every user has a single item
    with pytest.raises(SplitError, match=r"no validation split of the training part .*"
                       r"30 of 30 users have a single item.*temporal: all 30 interactions"
                       r".*random: nothing to evaluate"):
        validation_cut(train, "temporal")


@pytest.mark.parametrize("n_validation_users", [4, 12])
def test_trees_that_saw_no_positive_are_never_served(n_validation_users):
    """Each validation user's positive is an item nobody had before the cut, and one candidate
    per component never reaches it: the trees learn one label and score everything alike."""
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((40, 30)) < 0.2) * (np.arange(30) < 29), dtype=np.float32)
    target = sp.csr_matrix((np.ones(n_validation_users), (np.arange(n_validation_users),
                            np.full(n_validation_users, 29))), shape=X.shape, dtype=np.float32)
    model = HybridRanker(n_candidates=1).fit(X, validation=(X, target))
    assert not model.reranker_learned
    checked = guard(model, target)
    assert checked["served_by"] != "reranker" and model.served_by == checked["served_by"]
    if n_validation_users < 10:  # too few to hold any out: nothing to compare
        assert checked == {"users": 0, "ndcg@10": {}, "served_by": "pop_band"}


def test_trees_that_learned_stay_eligible(bundle):
    model, info = fit_hybrid(prepare_fit(bundle, FeaturePipeline().fit(bundle)))
    assert model.reranker_learned
    assert "reranker" in info["guard"]["ndcg@10"]

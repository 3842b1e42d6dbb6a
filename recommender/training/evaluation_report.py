"""The evaluation report of a saved model: ``metrics.json`` and a self-contained ``report.html``.

A saved artifact was trained on all the data it was given, test period included, so its own
files cannot be scored on a split of that data without scoring it on what it learned from.
The report therefore evaluates the artifact's *recipe*: the training recipe
(:func:`recommender.training.recipe.fit_recipe`) with the parameters and seed of the
artifact's manifest, refitted on the protocol's training part, then ranked over the test
candidates like every baseline (:mod:`recommender.training.benchmark`: the same split, the
same candidates, the baselines tuned on the same validation cut). The figures are what that
artifact's recipe would have scored had it been trained at the protocol's cut; the report says
so at the top.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.frames import DataBundle, with_categorical_ids
from features.pipeline import FeaturePipeline
from recommender.evaluation.metrics import hit_matrix
from recommender.training import artifacts, report_plots
from recommender.training.benchmark import prepare_run, record_band_gaps, run_baselines
from recommender.training.params import artifact_params
from recommender.training.recipe import fit_recipe
from recommender.training.report_calibration import (
    MAX_USERS,
    calibration_section,
    take_up_pairs,
)
from recommender.training.report_html import render
from recommender.training.report_metrics import (
    coverage_by_category,
    item_categories,
    novelty,
    score_summary,
)

__all__ = ["MODEL", "Report", "evaluate_artifact", "write_report"]

# The artifact's row in the tables (the benchmark's name for the hybrid, so the documents match).
MODEL = "hybrid"
EVALUATED_AS = (
    "refitted: the artifact's training recipe (temporal validation cut with newcomers, the "
    "re-ranker, the guard) with the parameters and seed of its manifest, fitted on the "
    "protocol's training part and scored on its test part. The artifact's own files are not "
    "scored: they were trained on data that includes the test period.")


@dataclass
class Report:
    """What :func:`evaluate_artifact` measured: the JSON document and the plots."""

    metrics: dict
    plots: dict[str, str]


def evaluate_artifact(bundle: DataBundle, artifact_dir: Path, protocol: str = "temporal",
                      budget_s: float = 30.0, log: Callable[[str], None] = print,
                      max_users: int = MAX_USERS) -> Report:
    """Evaluate the artifact in ``artifact_dir`` against the baselines on ``protocol``.

    Parameters
    ----------
    bundle : DataBundle
        The data to split (usually what the artifact was trained on).
    artifact_dir : Path
        A version folder (its checksums are verified).
    protocol : str
        One of the protocols of :mod:`recommender.evaluation.protocols`.
    budget_s : float
        Tuning seconds per baseline (the benchmark's budget).
    max_users : int
        Residents sampled for the calibration pairs.

    Returns
    -------
    Report
        ``metrics`` is the benchmark's document of the run (``models`` with the artifact as
        ``"hybrid"``) plus ``artifact``, ``evaluated_as``, ``coverage_by_category``,
        ``novelty``, ``calibration``, ``scores`` and ``timings``.
    """
    t0 = time.perf_counter()
    manifest = artifacts.verify(artifact_dir)
    params, seed = artifact_params(manifest)
    timings = {}
    bundle = with_categorical_ids(bundle)
    pipeline = FeaturePipeline(pair_ages=True).fit(bundle)
    run = prepare_run(bundle, pipeline, protocol, seed, log)
    timings["prepare_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    results, _, lists = run_baselines(run, seed, budget_s, log)
    timings["baselines_s"] = time.perf_counter() - t
    t = time.perf_counter()
    log(f"refitting {manifest['version']}'s recipe on the {protocol} training part")
    model, _, info = fit_recipe(run.split.train, pipeline, params, seed)
    lists[MODEL] = run.test_eval.rank(model)
    results[MODEL] = {**run.test_eval.metrics(lists[MODEL][0]), "fit_s": info["fit_s"],
                      "params": params, "guard": info["guard"],
                      "validation": info["validation"]}
    record_band_gaps(results, lists[MODEL][0], lists, run.test_eval)
    timings["model_s"] = time.perf_counter() - t
    log(f"  {manifest['version']:<20} nDCG@10 {results[MODEL]['ndcg@10']:.4f}  "
        f"fit {info['fit_s']:.1f}s  ranked by {info['guard']['served_by']}")
    doc = run.document(results, bundle, seed, 0.0)
    t = time.perf_counter()
    log(f"calibration: the take-up probabilities of up to {max_users} residents")
    candidates = run.test_eval.candidates
    offered = candidates.mask()
    if offered is None:
        offered = np.ones(candidates.n_items, dtype=bool)
    pairs = take_up_pairs(model, run.data.full.X, run.data.mapping, bundle, run.split, offered,
                          max_users=max_users, seed=seed)
    timings["calibration_s"] = time.perf_counter() - t
    ids = {name: recs for name, (recs, _) in lists.items()}
    doc.update(
        artifact={"version": manifest["version"], "created": manifest.get("created"),
                  "data": manifest.get("data"), "params": params, "seed": seed},
        evaluated_as=EVALUATED_AS,
        coverage_by_category=coverage_by_category(
            ids, item_categories(bundle.items, run.data.mapping.item_ids_), candidates.indices),
        novelty=novelty(ids, run.data.full.X, run.test_eval.relevant),
        calibration=calibration_section(pairs),
        scores={name: score_summary(recs, scores, run.test_eval.relevant)
                for name, (recs, scores) in lists.items()},
    )
    t = time.perf_counter()
    log("drawing the plots")
    plots = _plots(doc, lists, run.test_eval.relevant, pairs)
    timings["plots_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    doc["seconds"] = timings["total_s"]
    doc["timings"] = timings
    return Report(doc, plots)


def _plots(doc: dict, lists: dict, relevant, pairs) -> dict[str, str]:
    models = doc["models"]
    plots = {
        "accuracy": report_plots.accuracy_plot(models, MODEL),
        "bands": report_plots.band_plot(models, MODEL),
        "categories": report_plots.category_plot(doc["coverage_by_category"], MODEL),
        "novelty": report_plots.novelty_plot(doc["novelty"], models, MODEL),
        "scores": report_plots.score_plot(
            {name: (scores, hit_matrix(recs, relevant, k=recs.shape[1])[0])
             for name, (recs, scores) in lists.items()}, MODEL),
    }
    if doc["calibration"]["available"]:
        plots["calibration"] = report_plots.reliability_plot(doc["calibration"], pairs.predicted,
                                                             pairs.observed)
    return plots


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path, html_path = out_dir / "metrics.json", out_dir / "report.html"
    metrics_path.write_text(json.dumps(_plain(report.metrics), indent=2, ensure_ascii=False,
                                       allow_nan=False) + "\n", "utf-8")
    html_path.write_text(render(report.metrics, report.plots), "utf-8")
    return metrics_path, html_path


def _plain(value):
    """``value`` as strict JSON: numpy numbers as Python ones, NaN and infinities as null (an
    undefined figure, e.g. a band with no user), anything else unknown as its text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)

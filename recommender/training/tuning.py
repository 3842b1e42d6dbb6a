"""Tuning the hybrid: an optuna search of its hyper-parameters on the served validation cut.

Every trial fits the hybrid exactly as ``recommender train`` would (the served recipe's inputs,
:func:`recommender.training.recipe.served_inputs`, built once; then
:func:`recommender.training.inputs.fit_hybrid` with the trial's parameters) and is scored by
the nDCG@10 of the ranking the guard would serve, on the validation users the trees never saw
(``validation_metrics`` of the manifest). The sampler is optuna's TPE, seeded; the first trial
is the defaults, so the best found is never worse than them on this cut. Every trial is
written to a CSV next to the output file as soon as it ends; the best parameters go to the
output file (:func:`recommender.training.params.write_params`), which ``train --params`` reads.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path

from features.frames import DataBundle, with_categorical_ids
from features.pipeline import FeaturePipeline
from models.hybrid import HybridRanker
from models.weighting import WEIGHTINGS
from recommender.training.inputs import FitData, fit_hybrid
from recommender.training.params import write_params
from recommender.training.recipe import served_inputs

__all__ = ["OBJECTIVE", "SEARCH_SPACE", "TuningError", "trials_path", "tune_hybrid"]

OBJECTIVE = "ndcg@10"
# name -> (kind, low, high, options): what the search may try. Ranges bracket the defaults and
# the values the benchmark's grids tune the matching baselines over.
SEARCH_SPACE = {
    "ease_l2": ("float", 10.0, 2000.0, {"log": True}),
    "ease_weighting": ("categorical", list(WEIGHTINGS), None, None),
    "knn_neighbours": ("int", 10, 400, {"log": True}),
    "knn_weighting": ("categorical", list(WEIGHTINGS), None, None),
    "n_candidates": ("int", 20, 100, {"step": 10}),
    "negatives_per_user": ("int", 10, 60, {"step": 10}),
    "learning_rate": ("float", 0.03, 0.3, {"log": True}),
    "max_iter": ("int", 50, 300, {"step": 50}),
    "max_leaf_nodes": ("int", 7, 63, {"log": True}),
    "als_factors": ("categorical", [0, 32, 64], None, None),
    "factor_ae_factors": ("categorical", [0, 32, 64, 128], None, None),
    "factor_ae_epochs": ("categorical", [20, 60], None, None),
    # None: the recent window of the items' activity (5 % of the data's span); else days, the
    # popularity-recent baseline's grid
    "recent_window_days": ("categorical", [None, 7.0, 30.0, 90.0, 365.0], None, None),
}


class TuningError(RuntimeError):
    """The data leaves nothing to tune on (no held-out validation users)."""


def trials_path(out: Path) -> Path:
    """Where every trial is recorded: ``<out without suffix>.trials.csv``."""
    out = Path(out)
    return out.with_name(out.stem + ".trials.csv")


def _suggest(trial) -> dict:
    params = {}
    for name, (kind, low, high, options) in SEARCH_SPACE.items():
        if kind == "categorical":
            params[name] = trial.suggest_categorical(name, low)
        elif kind == "int":
            params[name] = trial.suggest_int(name, low, high, **options)
        else:
            params[name] = trial.suggest_float(name, low, high, **options)
    return params


def _defaults() -> dict:
    defaults = HybridRanker().get_params()
    return {name: defaults[name] for name in SEARCH_SPACE}


def _score(data: FitData, params: dict, seed: int) -> tuple[float, str, float]:
    """The trial's validation nDCG@10, what the guard serves, and the fit's seconds."""
    t0 = time.perf_counter()
    _, info = fit_hybrid(data, params, seed)
    figures = info["validation_metrics"]
    if not figures:
        raise TuningError("the validation cut has too few users to hold any out (fewer than "
                          "10), so no trial can be scored; tune on more data")
    return figures["hybrid"][OBJECTIVE], figures["served_by"], time.perf_counter() - t0


class _Record:
    """Every trial as a CSV row, rewritten after each trial so an interrupted run keeps it."""

    columns = ("trial", "state", f"validation_{OBJECTIVE}", "served_by", "seconds",
               *SEARCH_SPACE)

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)


def tune_hybrid(bundle: DataBundle, out: Path, budget_minutes: float, trials: int | None = None,
                seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """Search the hybrid's parameters on ``bundle``'s served validation cut; write the best.

    Parameters
    ----------
    bundle : DataBundle
        Everything ``train`` would learn from.
    out : Path
        The parameters file to write (``{"params", "tuning"}``); the trials go to
        :func:`trials_path` of it.
    budget_minutes : float
        No trial starts after this many minutes (the one running then finishes).
    trials : int, optional
        At most this many trials (the first is the defaults).
    seed : int
        Seed of the validation cut, the models and the sampler; train with the same ``--seed``
        to fit what was scored.

    Returns
    -------
    dict
        The ``tuning`` record written to ``out`` (best value and trial, the defaults' value,
        trials run, seconds, the trials file).
    """
    import optuna

    if not budget_minutes > 0 or not math.isfinite(budget_minutes):
        raise ValueError(f"budget_minutes={budget_minutes!r}: must be a positive number")
    if trials is not None and trials < 1:
        raise ValueError(f"trials={trials!r}: must be at least 1")
    t0 = time.perf_counter()
    bundle = with_categorical_ids(bundle)
    # the pairs' ages too: trials with a recent window in days count on them
    data = served_inputs(bundle, FeaturePipeline(pair_ages=True).fit(bundle), seed)
    log(f"validation cut: {data.validation_report['users']} validation users "
        f"({data.validation_report['protocol']}); inputs in {time.perf_counter() - t0:.1f}s")
    record = _Record(trials_path(out))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial(_defaults())

    def objective(trial) -> float:
        params = _suggest(trial)
        value, served_by, seconds = _score(data, params, seed)
        trial.set_user_attr("served_by", served_by)
        record.add({"trial": trial.number + 1, "state": "complete",
                    f"validation_{OBJECTIVE}": value, "served_by": served_by,
                    "seconds": round(seconds, 2), **params})
        best = max([value, *(t.value for t in study.trials if t.value is not None)])
        log(f"trial {trial.number + 1}{f' of {trials}' if trials else ''} "
            f"({(time.perf_counter() - t0) / 60:.1f} of {budget_minutes:g} min): "
            f"nDCG@10 {value:.4f} ranked by {served_by} in {seconds:.1f}s; best {best:.4f}; "
            + ", ".join(f"{k}={_short(v)}" for k, v in params.items()))
        return value

    study.optimize(objective, n_trials=trials, timeout=budget_minutes * 60.0)
    best = study.best_trial
    tuning = {"objective": f"validation {OBJECTIVE} of the served ranking on held-out "
                           "validation users (the manifest's validation_metrics)",
              "value": best.value, "best_trial": best.number + 1,
              "defaults_value": study.trials[0].value, "trials": len(study.trials),
              "seed": seed, "sampler": "optuna TPESampler",
              "data": {"name": bundle.name, "interactions": int(len(bundle.interactions))},
              "validation": data.validation_report,
              "seconds": time.perf_counter() - t0, "trials_file": str(record.path)}
    write_params(out, dict(best.params), tuning)
    return tuning


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

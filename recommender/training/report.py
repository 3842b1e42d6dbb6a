"""The benchmark's printed tables and the summary of repeated runs.

:func:`format_table` prints one run (models by nDCG@10, nDCG@10 per age band, the hybrid against
the best baseline of each band) or, for a document of repeated runs, the mean ± standard
deviation of every figure. :func:`summarize` computes those means and deviations.
"""

from __future__ import annotations

import numpy as np

from features.bands import BAND_NAMES

__all__ = ["BAND_ORDER", "METRICS", "band_comparison", "format_gap", "format_table", "summarize"]

METRICS = ("ndcg@10", "precision@10", "recall@10", "map@10", "coverage")
BAND_ORDER = (*BAND_NAMES, "unknown")


def _band_key(band: str) -> int:
    return BAND_ORDER.index(band) if band in BAND_ORDER else len(BAND_ORDER)


def _value(cell) -> float:
    """A figure of one run (a float) or of a summary (``{"mean", "std"}``), as a number."""
    value = cell["mean"] if isinstance(cell, dict) else cell
    return float(np.nan_to_num(value, nan=-1.0))


def _best(models: dict, metric_of) -> str | None:
    """The baseline (any model but the hybrid) with the highest ``metric_of(row)``."""
    names = [n for n in models if n != "hybrid" and metric_of(models[n]) is not None]
    return max(names, key=lambda n: _value(metric_of(models[n])), default=None)


def band_comparison(models: dict) -> list[dict]:
    """Per age band: the hybrid's nDCG@10 against the best baseline of that band.

    ``models`` is a run's ``"models"`` (or a summary's). Returns one row per band the hybrid
    was scored on, in band order: ``{"band", "users", "hybrid", "best", "baseline", "gap"}``,
    ``gap`` being the best baseline's ``hybrid_gap`` (the hybrid's per-user difference from it
    and its standard error) or None where the run did not record it.
    """
    hybrid = models.get("hybrid", {}).get("by_band", {})
    rows = []
    for band in sorted(hybrid, key=_band_key):
        best = _best(models, lambda row, b=band: row.get("by_band", {}).get(b, {}).get("ndcg@10"))
        cell = {} if best is None else models[best]["by_band"][band]
        rows.append({"band": band, "users": hybrid[band]["users"],
                     "hybrid": hybrid[band]["ndcg@10"], "best": best,
                     "baseline": cell.get("ndcg@10"), "gap": cell.get("hybrid_gap")})
    return rows


def _ratio(a, b) -> str:
    a, b = _value(a), _value(b)
    if b > 0:
        return f"{a / b:.3f}x"
    return "inf (baseline is 0)" if a > 0 else "n/a (both 0)"


def _fmt(cell, width: int) -> str:
    if isinstance(cell, dict):
        return f"{cell['mean']:.4f}±{cell['std']:.4f}".rjust(width)
    return f"{cell:>{width}.4f}"


def format_table(result: dict) -> str:
    """The benchmark as a plain-text table, best nDCG first, then the figures per age band.

    ``result`` is :func:`recommender.training.benchmark.run_benchmark`'s document: one run, or
    repeated runs (then every figure is the mean ± standard deviation over the runs).
    """
    repeated = "summary" in result
    models = result["summary"]["models"] if repeated else result["models"]
    split = result["repeats"][0]["split"] if repeated else result["split"]
    width = 16 if repeated else 14
    names = sorted(models, key=lambda m: -_value(models[m]["ndcg@10"]))
    head = f"{'model':<20}" + "".join(f"{m:>{width}}" for m in (*METRICS, "fit_s"))
    runs = f", mean ± std over {len(result['repeats'])} seeds" if repeated else ""
    lines = [f"protocol {result['protocol']} on {result['dataset']} "
             f"({split['test_users']} test users, {split['items']} items{runs})",
             head, "-" * len(head)]
    for name in names:
        row = models[name]
        lines.append(f"{name:<20}" + "".join(_fmt(row[m], width) for m in METRICS)
                     + f"{_value(row['fit_s']):>{width}.1f}")
    lines += _band_lines(models, names)
    best = _best(models, lambda row: row["ndcg@10"])
    if best and "hybrid" in models:
        lines += ["", f"hybrid / best baseline ({best}): "
                      f"{_ratio(models['hybrid']['ndcg@10'], models[best]['ndcg@10'])}"]
        if "popularity-by-band" in models:
            lines.append("hybrid / popularity-by-band: " + _ratio(
                models["hybrid"]["ndcg@10"], models["popularity-by-band"]["ndcg@10"]))
    return "\n".join(lines)


def _band_lines(models: dict, names: list[str]) -> list[str]:
    """nDCG@10 of every model per band, then the hybrid against each band's best baseline."""
    bands = sorted({b for row in models.values() for b in row.get("by_band", {})}, key=_band_key)
    if not bands:
        return []
    lines = ["", "nDCG@10 by age band (users)",
             f"{'model':<20}" + "".join(f"{b:>22}" for b in bands)]
    for name in names:
        by = models[name].get("by_band", {})
        cells = "".join(
            f"{_fmt(by[b]['ndcg@10'], 15)} ({_value(by[b]['users']):>4.0f})" if b in by
            else f"{'-':>22}" for b in bands)
        lines.append(f"{name:<20}{cells}")
    rows = band_comparison(models)
    if rows:
        lines += ["", "hybrid vs the best baseline of each age band (nDCG@10)",
                  f"{'band':<14}{'users':>7}{'hybrid':>16}  {'best baseline':<20}"
                  f"{'nDCG@10':>16}{'ratio':>10}  {'per-user difference ± SE':>26}"]
        for r in rows:
            lines.append(f"{r['band']:<14}{_value(r['users']):>7.0f}{_fmt(r['hybrid'], 16)}  "
                         f"{r['best'] or '-':<20}"
                         + (_fmt(r["baseline"], 16) if r["best"] else f"{'-':>16}")
                         + f"{_ratio(r['hybrid'], r['baseline'] or 0.0):>10}"
                         + f"  {format_gap(r['gap']):>26}")
        lines.append("(per-user difference: the hybrid's nDCG@10 minus the baseline's on the same "
                     "users, with its standard error; a gap within about two standard errors "
                     "is within the noise of that many users)")
    return lines


def format_gap(gap: dict | None) -> str:
    """``+0.0123 ± 0.0045`` for a ``hybrid_gap`` (a run's or a summary's), ``-`` without one."""
    if not gap:
        return "-"
    se = gap["se"]
    return f"{_value(gap['difference']):+.4f} ± " + ("n/a" if se is None else f"{se:.4f}")


def _mean_std(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=np.float64)
    # The sample standard deviation: the runs are a sample of the seeds.
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std}


def _summarize_gaps(gaps: list[dict]) -> dict:
    """The hybrid's per-user difference from a model over runs: the mean difference (± its
    spread over the runs) and the mean of the runs' standard errors. The runs rank the same
    users, so their errors are not independent and are not divided down further."""
    errors = [g["se"] for g in gaps if g["se"] is not None]
    return {"difference": _mean_std([g["difference"] for g in gaps]),
            "se": float(np.mean(errors)) if errors else None}


def summarize(runs: list[dict]) -> dict:
    """Mean and sample standard deviation of every model's figures over repeated runs.

    Returns ``{"runs": n, "seeds": [...], "models": {name: {metric: {"mean", "std"}, "users",
    "fit_s", "by_band": {band: {"ndcg@10": {"mean", "std"}, "users": {"mean", "std"},
    "hybrid_gap": {"difference": {"mean", "std"}, "se"}}}}}}``, over the models every run
    scored (``hybrid_gap`` for the baselines whose runs recorded it). A band missing from a
    run (no test user of that band under that seed) is averaged over the runs that have it.
    """
    names = [n for n in runs[0]["models"] if all(n in r["models"] for r in runs)]
    models = {}
    for name in names:
        rows = [r["models"][name] for r in runs]
        out = {key: _mean_std([row[key] for row in rows]) for key in (*METRICS, "users", "fit_s")}
        bands = sorted({b for row in rows for b in row.get("by_band", {})}, key=_band_key)
        out["by_band"] = {}
        for band in bands:
            cells = [row["by_band"][band] for row in rows if band in row.get("by_band", {})]
            out["by_band"][band] = {key: _mean_std([c[key] for c in cells])
                                    for key in ("ndcg@10", "users")}
            gaps = [c["hybrid_gap"] for c in cells if "hybrid_gap" in c]
            if gaps:
                out["by_band"][band]["hybrid_gap"] = _summarize_gaps(gaps)
        models[name] = out
    return {"runs": len(runs), "seeds": [r["seed"] for r in runs], "models": models}

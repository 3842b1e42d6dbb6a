"""The evaluation report's plots: matplotlib figures as inline PNG data URIs.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas
(``FigureCanvasAgg``), never through ``pyplot``: no global state, no display, safe in any
process. Each function returns a ``data:image/png;base64,...`` string the HTML embeds, so the
report has no external file.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from recommender.training.report import BAND_ORDER

__all__ = ["accuracy_plot", "band_plot", "category_plot", "novelty_plot", "reliability_plot",
           "score_plot"]

MODEL_COLOUR = "#d62728"
OTHER_COLOUR = "#7f7f7f"
DPI = 96


def _data_uri(fig: Figure) -> str:
    FigureCanvasAgg(fig)  # the Agg canvas, whatever pyplot's backend is
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _colours(names: list[str], highlight: str) -> dict[str, str]:
    """The highlighted model in red, the others in the tab10 colours that are not red."""
    others = [c for k, c in enumerate(f"C{j}" for j in range(10)) if k != 3]
    rest = [n for n in names if n != highlight]
    out = {n: others[k % len(others)] for k, n in enumerate(rest)}
    out[highlight] = MODEL_COLOUR
    return out


def _order(models: dict) -> list[str]:
    """Models by nDCG@10, best first (NaN last)."""
    return sorted(models, key=lambda m: -np.nan_to_num(models[m]["ndcg@10"], nan=-1.0))


def accuracy_plot(models: dict, highlight: str) -> str:
    """nDCG@10 and recall@10 of every model, best first; ``highlight`` in red."""
    names = _order(models)
    fig = Figure(figsize=(9, 0.45 * len(names) + 1.2), layout="constrained")
    for col, metric in enumerate(("ndcg@10", "recall@10")):
        ax = fig.add_subplot(1, 2, col + 1)
        values = [models[n][metric] for n in names]
        ax.barh(names, values, color=[MODEL_COLOUR if n == highlight else OTHER_COLOUR
                                      for n in names])
        ax.invert_yaxis()
        ax.set_xlabel(metric)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
        if col:
            ax.set_yticklabels([])
    fig.suptitle("Accuracy on the test users")
    return _data_uri(fig)


def band_plot(models: dict, highlight: str) -> str:
    """nDCG@10 per age band, one group of bars per band, one bar per model."""
    names = _order(models)
    bands = [b for b in BAND_ORDER if any(b in models[n].get("by_band", {}) for n in names)]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(bands))
    colour = _colours(names, highlight)
    for k, name in enumerate(names):
        by = models[name].get("by_band", {})
        values = [by.get(b, {}).get("ndcg@10", np.nan) for b in bands]
        ax.bar(x + k * width, values, width, label=name, color=colour[name],
               edgecolor="black" if name == highlight else None)
    users = [max((models[n].get("by_band", {}).get(b, {}).get("users", 0) for n in names),
                 default=0) for b in bands]
    ax.set_xticks(x + 0.4 - width / 2, [f"{b}\n({u} users)" for b, u in zip(bands, users)])
    ax.set_ylabel("nDCG@10")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("nDCG@10 by age band")
    return _data_uri(fig)


def category_plot(coverage: dict, highlight: str) -> str:
    """Each model's share of list positions per category, against the candidates' share."""
    cats = list(coverage["candidates"])
    names = list(coverage["models"])
    colour = _colours(names, highlight)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(cats))
    for k, name in enumerate(names):
        ax.bar(x + k * width, [coverage["models"][name][c]["share_of_slots"] for c in cats],
               width, label=name, color=colour[name],
               edgecolor="black" if name == highlight else None)
    ax.scatter(x + 0.4 - width / 2, [coverage["candidates"][c]["share"] for c in cats],
               marker="_", s=900, color="black", zorder=3, label="share of candidates")
    ax.set_xticks(x + 0.4 - width / 2, cats, rotation=20, ha="right")
    ax.set_ylabel("share of list positions")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("What the lists show, by category")
    return _data_uri(fig)


def novelty_plot(novelty: dict, models: dict, highlight: str) -> str:
    """Left: accuracy against the popularity of what is listed; right: long-tail share."""
    names = _order(models)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    for name in names:
        row = novelty["models"][name]
        ax.scatter(row["mean_percentile"], models[name]["ndcg@10"],
                   color=MODEL_COLOUR if name == highlight else OTHER_COLOUR)
        ax.annotate(name, (row["mean_percentile"], models[name]["ndcg@10"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    actual = novelty["actual"]["mean_percentile"]
    if np.isfinite(actual):
        ax.axvline(actual, color="black", linestyle="--", linewidth=1)
        ax.annotate("what residents took up", (actual, ax.get_ylim()[0]), fontsize=7,
                    rotation=90, va="bottom", ha="right")
    ax.set_xlabel("mean popularity percentile of listed courses")
    ax.set_ylabel("nDCG@10")
    ax2 = fig.add_subplot(1, 2, 2)
    shares = [novelty["models"][n]["long_tail_share"] for n in names]
    ax2.barh(names, shares, color=[MODEL_COLOUR if n == highlight else OTHER_COLOUR
                                   for n in names])
    ax2.invert_yaxis()
    ax2.set_xlabel("share of list positions in the long tail")
    fig.suptitle("Popularity bias and novelty")
    return _data_uri(fig)


def reliability_plot(section: dict, predicted: np.ndarray, observed: np.ndarray) -> str:
    """Left: the reliability curve (log-log); right: the probabilities of pairs taken up and
    not taken up."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    bins = section["bins"]
    mean_p = np.array([b["mean_predicted"] for b in bins])
    rate = np.array([b["observed"] for b in bins])
    floor = max(float(np.min(mean_p[mean_p > 0], initial=1.0)), 1e-6) / 3
    low = floor
    high = max(float(mean_p.max(initial=0)), float(rate.max(initial=0)), low * 10) * 1.5
    ax.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1,
            label="perfect calibration")
    ax.plot(np.maximum(mean_p, floor), np.maximum(rate, floor), marker="o",
            color=MODEL_COLOUR, label="model (equal-count bins)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel(f"observed take-up rate (0 drawn at {floor:.1e})")
    ax.legend(fontsize=7)
    ax.set_title(f"Reliability (Brier {section['brier']:.4g}, ECE {section['ece']:.4g})")
    ax2 = fig.add_subplot(1, 2, 2)
    logp = np.log10(np.maximum(predicted, 1e-9))
    edges = np.linspace(float(logp.min(initial=-9)), float(logp.max(initial=0)) + 1e-9, 40)
    ax2.hist(logp[~observed], bins=edges, density=True, alpha=0.6, color=OTHER_COLOUR,
             label=f"not taken up ({int((~observed).sum())})")
    ax2.hist(logp[observed], bins=edges, density=True, alpha=0.6, color=MODEL_COLOUR,
             label=f"taken up ({int(observed.sum())})")
    ax2.set_xlabel("log10 predicted probability")
    ax2.set_ylabel("density")
    ax2.legend(fontsize=7)
    ax2.set_title("Predicted probabilities")
    return _data_uri(fig)


def score_plot(scores: dict[str, tuple[np.ndarray, np.ndarray]], highlight: str) -> str:
    """One panel per model: its top-10 scores, hits against the other positions.

    ``scores`` maps a model to ``(scores (n, k), hits (n, k) bool)``; padding is ``-inf``.
    """
    names = list(scores)
    cols = 3
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(10, 2.4 * rows + 0.6), layout="constrained")
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        vals, hits = scores[name]
        ok = np.isfinite(vals)
        finite = vals[ok]
        if finite.size == 0:
            ax.set_title(f"{name}: no scores", fontsize=8)
            continue
        lo, hi = float(finite.min()), float(finite.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 30)
        ax.hist(vals[ok & ~hits], bins=edges, density=True, alpha=0.6, color=OTHER_COLOUR,
                label="miss")
        ax.hist(vals[ok & hits], bins=edges, density=True, alpha=0.6, color=MODEL_COLOUR,
                label="hit")
        ax.set_title(name + (" (the model)" if name == highlight else ""), fontsize=8)
        ax.tick_params(labelsize=6)
        if k == 0:
            ax.legend(fontsize=6)
    fig.suptitle("Scores of the listed courses (top 10), hits and misses")
    return _data_uri(fig)

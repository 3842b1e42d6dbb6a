"""The evaluation report's figures beyond accuracy: what the lists cover, how popular what they
show is, how well the model's probabilities are calibrated, and how its scores are spread.

Every function takes top-10 lists as an ``(n_users, k)`` array of item indices with ``-1``
padding (what :class:`recommender.training.benchmark.Evaluator` makes) and returns plain
dicts that go into ``metrics.json`` as they are. The arithmetic is defined in
docs/evaluation.md ("The evaluation report").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.evaluation.metrics import hit_matrix

__all__ = [
    "HEAD_SHARE",
    "coverage_by_category",
    "item_categories",
    "novelty",
    "reliability",
    "score_summary",
]

# The most popular fifth of the catalogue is the "head"; everything else is the long tail.
HEAD_SHARE = 0.2
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
NO_CATEGORY = "(none)"


def item_categories(items: pd.DataFrame, item_ids: np.ndarray) -> np.ndarray:
    """Each item's category (by ``item_ids``' order), :data:`NO_CATEGORY` when unknown."""
    if "category" not in items:
        return np.full(len(item_ids), NO_CATEGORY, dtype=object)
    cats = items.set_index(items["item_id"].astype(str))["category"]
    cats = cats[~cats.index.duplicated()].reindex(pd.Index(item_ids).astype(str))
    return cats.astype(object).where(cats.notna(), NO_CATEGORY).astype(str).to_numpy(dtype=object)


def _slots(recommended: np.ndarray) -> np.ndarray:
    """The listed item indices, padding left out."""
    rec = np.asarray(recommended)
    return rec[rec >= 0]


def coverage_by_category(lists: dict[str, np.ndarray], categories: np.ndarray,
                         candidates: np.ndarray | None) -> dict:
    """What each model's lists show of each category, against what could be shown.

    Parameters
    ----------
    lists : dict of name -> (n_users, k) int array
    categories : (n_items,) str array
        From :func:`item_categories`.
    candidates : int array or None
        The item indices every model ranked (None: the whole catalogue).

    Returns
    -------
    dict
        ``{"candidates": {category: {"items", "share"}}, "models": {name: {category:
        {"share_of_slots", "items_listed", "coverage"}}}}``: ``share`` is the category's share
        of the candidates, ``share_of_slots`` its share of the list positions filled,
        ``items_listed`` its distinct items in any list, ``coverage`` those over its candidates.
    """
    pool = np.arange(categories.size) if candidates is None else np.asarray(candidates)
    names = sorted(set(categories[pool].tolist()))
    pool_counts = pd.Series(categories[pool]).value_counts()
    out = {"candidates": {c: {"items": int(pool_counts.get(c, 0)),
                              "share": float(pool_counts.get(c, 0) / max(pool.size, 1))}
                          for c in names},
           "models": {}}
    for model, recs in lists.items():
        slots = _slots(recs)
        per_slot = pd.Series(categories[slots]).value_counts()
        distinct = pd.Series(categories[np.unique(slots)]).value_counts()
        out["models"][model] = {
            c: {"share_of_slots": float(per_slot.get(c, 0) / max(slots.size, 1)),
                "items_listed": int(distinct.get(c, 0)),
                "coverage": float(distinct.get(c, 0) / max(int(pool_counts.get(c, 0)), 1))}
            for c in names}
    return out


def _popularity_percentile(popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity as a percentile of the catalogue (0 least, 100 most popular)."""
    return pd.Series(popularity).rank(pct=True, method="average").to_numpy() * 100.0


def novelty(lists: dict[str, np.ndarray], X: sp.csr_matrix, relevant: sp.csr_matrix) -> dict:
    """Popularity bias and novelty of each model's lists.

    Parameters
    ----------
    lists : dict of name -> (n_users, k) int array
    X : csr_matrix (n_users, n_items)
        The training history; an item's popularity is its number of distinct users there.
    relevant : csr_matrix (n_eval_users, n_items)
        What the evaluated users took up after the cut: the popularity the lists are
        compared with.

    Returns
    -------
    dict
        ``{"head_items", "actual": {"mean_popularity", "mean_percentile"}, "models": {name:
        {"mean_popularity", "mean_percentile", "long_tail_share", "novelty_bits",
        "popularity_ratio"}}}``. ``mean_popularity`` is the share of training users an item
        had, averaged over list positions; ``long_tail_share`` the share of positions outside
        the most popular :data:`HEAD_SHARE` of the catalogue; ``novelty_bits`` the mean
        self-information ``-log2((users + 1) / (n_users + 1))``; ``popularity_ratio`` the
        lists' mean popularity over that of what the residents took up (above 1: the lists
        lean to more popular courses than the residents chose).
    """
    n_users, n_items = X.shape
    counts = np.asarray((X != 0).sum(axis=0)).ravel().astype(np.float64)
    share = counts / max(n_users, 1)
    percentile = _popularity_percentile(counts)
    head = np.zeros(n_items, dtype=bool)
    head[np.argsort(-counts, kind="stable")[:int(np.ceil(HEAD_SHARE * n_items))]] = True
    bits = -np.log2((counts + 1.0) / (n_users + 1.0))
    taken = sp.csr_matrix(relevant).indices
    actual = float(share[taken].mean()) if taken.size else float("nan")
    out = {"head_items": int(head.sum()),
           "actual": {"mean_popularity": actual,
                      "mean_percentile": float(percentile[taken].mean()) if taken.size
                      else float("nan")},
           "models": {}}
    for model, recs in lists.items():
        slots = _slots(recs)
        if slots.size == 0:
            out["models"][model] = {k: float("nan") for k in (
                "mean_popularity", "mean_percentile", "long_tail_share", "novelty_bits",
                "popularity_ratio")}
            continue
        mean = float(share[slots].mean())
        out["models"][model] = {
            "mean_popularity": mean,
            "mean_percentile": float(percentile[slots].mean()),
            "long_tail_share": float((~head[slots]).mean()),
            "novelty_bits": float(bits[slots].mean()),
            "popularity_ratio": mean / actual if actual > 0 else float("nan"),
        }
    return out


def reliability(predicted: np.ndarray, observed: np.ndarray, bins: int = 10) -> dict:
    """The reliability curve of probabilities against what happened, in equal-count bins.

    Pairs are sorted by predicted probability and cut into ``bins`` groups of (nearly) equal
    size, because the probabilities of a course list are skewed towards 0 and equal-width
    bins would leave all but the first nearly empty.

    Returns
    -------
    dict
        ``{"pairs", "positives", "predicted_total", "observed_total", "brier", "ece",
        "bins": [{"pairs", "mean_predicted", "observed", "low", "high"}]}``; ``ece`` is the
        pair-weighted mean absolute gap between a bin's mean probability and its observed rate.
    """
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(observed, dtype=bool)
    if p.size == 0:
        return {"pairs": 0, "positives": 0, "predicted_total": 0.0, "observed_total": 0.0,
                "brier": float("nan"), "ece": float("nan"), "bins": []}
    order = np.argsort(p, kind="stable")
    rows, ece = [], 0.0
    for part in np.array_split(order, min(bins, p.size)):
        mean_p, rate = float(p[part].mean()), float(y[part].mean())
        ece += part.size * abs(mean_p - rate)
        rows.append({"pairs": int(part.size), "mean_predicted": mean_p, "observed": rate,
                     "low": float(p[part].min()), "high": float(p[part].max())})
    return {"pairs": int(p.size), "positives": int(y.sum()),
            "predicted_total": float(p.sum()), "observed_total": float(y.sum()),
            "brier": float(np.mean((p - y) ** 2)), "ece": ece / p.size, "bins": rows}


def score_summary(recommended: np.ndarray, scores: np.ndarray, relevant: sp.csr_matrix) -> dict:
    """Quantiles of a model's top-k scores, separately for hits and for the other positions.

    Returns ``{"hits": {"positions", "quantiles": {q: value}}, "misses": {...}}``; padding
    (``-1`` items, ``-inf`` scores) is left out.
    """
    rec = np.asarray(recommended)
    vals = np.asarray(scores, dtype=np.float64)
    hit, _ = hit_matrix(rec, relevant, k=max(rec.shape[1], 1))
    filled = (rec >= 0) & np.isfinite(vals)
    out = {}
    for name, mask in (("hits", filled & hit), ("misses", filled & ~hit)):
        v = vals[mask]
        out[name] = {"positions": int(v.size),
                     "quantiles": {f"{q:g}": float(np.quantile(v, q)) for q in QUANTILES}
                     if v.size else {}}
    return out


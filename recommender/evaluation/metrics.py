"""Ranking metrics at k, exactly as docs/evaluation.md defines them.

Every metric takes the same two inputs:

``recommended``
    An ``(n_users, k)`` integer array of item indices, best first, ``-1`` for padding (a model
    that had fewer than ``k`` candidates). Columns beyond ``k`` are ignored; fewer than ``k``
    columns count as padding. An item repeated within a row counts once (at its first rank).
``relevant``
    The relevant item indices of each row: a list (one entry per row) of sets or other
    iterables of ints, or a scipy sparse matrix with one row per user whose non-zero columns are
    the relevant items (see :func:`relevance_matrix`).

The per-user functions return one float per row, so a per-band breakdown is a group-by. A row
with no relevant items has precision 0 and NaN for recall, nDCG and MAP (they are undefined);
:func:`evaluate` leaves such rows out of every mean and reports how many rows it did average.

Definitions (binary gains, ranks counted from 1, ``rel`` the row's relevant set)::

    precision@k = hits / k                      (k even when fewer than k items are recommended)
    recall@k    = hits / |rel|
    nDCG@k      = sum_{hit ranks r} 1/log2(r+1)  /  sum_{r=1}^{min(|rel|,k)} 1/log2(r+1)
    MAP@k       = sum_{hit ranks r} (hits in top r)/r  /  min(|rel|, k)
    coverage    = distinct recommended items / catalogue size
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import BAND_NAMES

__all__ = [
    "DEFAULT_K",
    "UNKNOWN_BAND",
    "catalogue_coverage",
    "evaluate",
    "hit_matrix",
    "map_at_k",
    "ndcg_at_k",
    "paired_band_gaps",
    "precision_at_k",
    "recall_at_k",
    "relevance_matrix",
]

DEFAULT_K = 10
# The band label of users whose age band is not known (missing in the user table).
UNKNOWN_BAND = "unknown"

RelevantLike = sp.spmatrix | sp.sparray | Sequence[Iterable[int]]


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _as_recommended(recommended, k: int) -> np.ndarray:
    """``recommended`` as an int64 ``(n_users, k)`` array, truncated or padded with -1."""
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(
            f"recommended must be a 2-D (n_users, k) array, got shape {rec.shape}"
        )
    if rec.size and not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommended must hold integer item indices, got dtype {rec.dtype}")
    rec = rec.astype(np.int64, copy=False)[:, :k]
    if rec.size and rec.min() < -1:
        raise ValueError(
            f"recommended holds index {int(rec.min())}: item indices are >= 0, -1 pads"
        )
    if rec.shape[1] < k:
        pad = np.full((rec.shape[0], k - rec.shape[1]), -1, dtype=np.int64)
        rec = np.hstack([rec, pad])
    return rec


def _as_relevance_csr(relevant: RelevantLike, n_users: int, min_items: int) -> sp.csr_matrix:
    """``relevant`` as a binary csr matrix with ``n_users`` rows and >= ``min_items`` columns."""
    if sp.issparse(relevant):
        rel = sp.csr_matrix(relevant, copy=True)
        rel.eliminate_zeros()
    else:
        if isinstance(relevant, str | bytes) or len(relevant) != n_users:
            raise ValueError(
                f"relevant must give one set of item indices per row of recommended "
                f"({n_users}), got {type(relevant).__name__} of length "
                f"{len(relevant) if hasattr(relevant, '__len__') else '?'}"
            )
        rows = [np.fromiter(r, dtype=np.int64) for r in relevant]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        cols = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        if cols.size and cols.min() < 0:
            raise ValueError(f"relevant holds a negative item index {int(cols.min())}")
        width = max(min_items, int(cols.max()) + 1 if cols.size else 0)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        rel = sp.csr_matrix(
            (np.ones(cols.size, dtype=np.float64), cols, indptr), shape=(n_users, width)
        )
        rel.sum_duplicates()
    if rel.shape[0] != n_users:
        raise ValueError(
            f"relevant has {rel.shape[0]} rows but recommended has {n_users}"
        )
    rel.data[:] = 1.0
    return rel


def hit_matrix(
    recommended, relevant: RelevantLike, k: int = DEFAULT_K
) -> tuple[np.ndarray, np.ndarray]:
    """Which of the top-``k`` recommendations are relevant, and how many items are relevant.

    Parameters
    ----------
    recommended : array-like of int, shape (n_users, k')
        Item indices, best first, ``-1`` for padding.
    relevant : list of iterables of int, or sparse matrix of shape (n_users, n_items)
        The relevant items of each row.
    k : int, default 10
        Cut-off.

    Returns
    -------
    hits : ndarray of bool, shape (n_users, k)
        ``hits[u, r]`` is true when the item at rank ``r + 1`` is relevant (padding and repeats
        of an item already ranked higher are never hits).
    n_relevant : ndarray of int, shape (n_users,)
        Size of each row's relevant set.
    """
    k = _check_k(k)
    rec = _as_recommended(recommended, k)
    n_users = rec.shape[0]
    rel = _as_relevance_csr(relevant, n_users, int(rec.max()) + 1 if rec.size else 0)
    n_relevant = np.diff(rel.indptr).astype(np.int64)

    # A repeated item must not be counted twice: a stable sort keeps the first occurrence
    # (highest rank) first among equal values, so only later copies are flagged.
    order = np.argsort(rec, axis=1, kind="stable")
    ranked = np.take_along_axis(rec, order, axis=1)
    repeat_sorted = np.zeros(rec.shape, dtype=bool)
    repeat_sorted[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    repeat = np.empty_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)

    candidate = (rec >= 0) & (rec < rel.shape[1]) & ~repeat
    rows, cols = np.nonzero(candidate)
    hits = np.zeros(rec.shape, dtype=bool)
    if rows.size:
        hits[rows, cols] = np.asarray(rel[rows, rec[rows, cols]]).ravel() > 0
    return hits, n_relevant


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits.sum(axis=1) / float(k)


def _recall(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return _safe_divide(hits.sum(axis=1).astype(np.float64), n_relevant)


def _ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    disc = _discounts(k)
    dcg = hits @ disc
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(n_relevant, k)]
    return _safe_divide(dcg, idcg)


def _average_precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    ranks = np.arange(1, k + 1, dtype=np.float64)
    precision_at_rank = np.cumsum(hits, axis=1) / ranks
    summed = (precision_at_rank * hits).sum(axis=1)
    return _safe_divide(summed, np.minimum(n_relevant, k).astype(np.float64))


_METRICS = {
    "ndcg": _ndcg,
    "precision": _precision,
    "recall": _recall,
    "map": _average_precision,
}


def precision_at_k(recommended, relevant: RelevantLike, k: int = DEFAULT_K) -> np.ndarray:
    """Per-user precision@k = hits / k (0 for a row with no relevant items).

    Parameters are those of :func:`hit_matrix`; the denominator is ``k`` even when fewer items
    are recommended.

    Returns
    -------
    ndarray of float, shape (n_users,)
    """
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _precision(hits, n_rel, k)


def recall_at_k(recommended, relevant: RelevantLike, k: int = DEFAULT_K) -> np.ndarray:
    """Per-user recall@k = hits / |relevant| (NaN for a row with no relevant items).

    Parameters and return value as in :func:`precision_at_k`.
    """
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _recall(hits, n_rel, k)


def ndcg_at_k(recommended, relevant: RelevantLike, k: int = DEFAULT_K) -> np.ndarray:
    """Per-user nDCG@k with binary gains and ``1 / log2(rank + 1)`` discounts.

    The ideal DCG places ``min(|relevant|, k)`` hits at the top ranks. NaN for a row with no
    relevant items. Parameters and return value as in :func:`precision_at_k`.
    """
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _ndcg(hits, n_rel, k)


def map_at_k(recommended, relevant: RelevantLike, k: int = DEFAULT_K) -> np.ndarray:
    """Per-user average precision@k: sum of precision at each hit / ``min(|relevant|, k)``.

    The mean of this array is MAP@k. NaN for a row with no relevant items. Parameters and return
    value as in :func:`precision_at_k`.
    """
    hits, n_rel = hit_matrix(recommended, relevant, k)
    return _average_precision(hits, n_rel, k)


def catalogue_coverage(recommended, n_items: int, k: int = DEFAULT_K) -> float:
    """Distinct items in the top-``k`` lists over the catalogue size ``n_items``."""
    k = _check_k(k)
    rec = _as_recommended(recommended, k)
    distinct = np.unique(rec[rec >= 0])
    return float(distinct.size) / float(n_items)


def _band_labels(user_bands, n_users: int) -> np.ndarray:
    labels = pd.Series(np.asarray(user_bands, dtype=object))
    if len(labels) != n_users:
        raise ValueError(
            f"user_bands must give one band per row of recommended ({n_users}), "
            f"got {len(labels)}"
        )
    return labels.where(labels.notna(), UNKNOWN_BAND).astype(str).to_numpy()


def _band_order(labels: np.ndarray) -> list[str]:
    present = set(labels.tolist())
    known = [b for b in BAND_NAMES if b in present]
    return known + sorted(present - set(BAND_NAMES))


def _summary(
    per_user: dict[str, np.ndarray], rec: np.ndarray, rows: np.ndarray, n_items: int, k: int
) -> dict:
    out: dict = {}
    for name, values in per_user.items():
        chosen = values[rows]
        out[f"{name}@{k}"] = float(chosen.mean()) if chosen.size else float("nan")
    out["coverage"] = catalogue_coverage(rec[rows], n_items, k)
    out["users"] = int(rows.size)
    return out


def evaluate(
    recommended,
    relevant: RelevantLike,
    n_items: int,
    user_bands=None,
    k: int = DEFAULT_K,
) -> dict:
    """Mean metrics over the users with at least one relevant item, overall and per band.

    Parameters
    ----------
    recommended : array-like of int, shape (n_users, k')
        Item indices, best first, ``-1`` for padding.
    relevant : list of iterables of int, or sparse matrix of shape (n_users, n_items)
        The relevant items of each row.
    n_items : int
        Catalogue size (the number of candidate items), the denominator of coverage.
    user_bands : array-like of str, shape (n_users,), optional
        Each row's age band; missing values (None/NaN) are reported as ``"unknown"``.
    k : int, default 10
        Cut-off.

    Returns
    -------
    dict
        ``{"ndcg@k", "precision@k", "recall@k", "map@k", "coverage", "users", "by_band"}``:
        means over the rows that have relevant items (``users`` counts them), coverage of the
        same rows' top-k lists, and ``by_band = {band: {the same keys but by_band}}`` (empty
        when ``user_bands`` is None), bands in ``BAND_NAMES`` order then the others sorted.
    """
    k = _check_k(k)
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    rec = _as_recommended(recommended, k)
    if rec.size and rec.max() >= n_items:
        raise ValueError(
            f"recommended holds item index {int(rec.max())} but n_items is {n_items}"
        )
    hits, n_rel = hit_matrix(rec, relevant, k)
    per_user = {name: fn(hits, n_rel, k) for name, fn in _METRICS.items()}
    evaluated = n_rel > 0

    result = _summary(per_user, rec, np.flatnonzero(evaluated), int(n_items), k)
    result["by_band"] = {}
    if user_bands is not None:
        labels = _band_labels(user_bands, rec.shape[0])
        for band in _band_order(labels[evaluated]):
            rows = np.flatnonzero(evaluated & (labels == band))
            result["by_band"][band] = _summary(per_user, rec, rows, int(n_items), k)
    return result


def paired_band_gaps(
    reference,
    others: dict[str, object],
    relevant: RelevantLike,
    user_bands,
    k: int = DEFAULT_K,
) -> dict[str, dict[str, dict]]:
    """Per band, the reference lists' nDCG@k minus each other model's, user by user.

    Two models ranked the same users, so their difference is best judged user by user: a
    band's mean difference with its standard error tells a gap from the noise of a few dozen
    users, which two band means side by side cannot.

    Parameters
    ----------
    reference : array-like of int, shape (n_users, k')
        The lists the others are compared with (the hybrid's).
    others : dict
        ``{name: lists}`` of the same users, in the same row order.
    relevant, user_bands, k
        As in :func:`evaluate`.

    Returns
    -------
    dict
        ``{name: {band: {"difference", "se", "users"}}}``: the mean of reference minus
        ``name`` over the band's users with relevant items, the standard error of that mean
        (sample standard deviation over the square root of the users; NaN for one user), and
        how many users. Bands as in :func:`evaluate`.
    """
    k = _check_k(k)
    ours = ndcg_at_k(reference, relevant, k)
    labels = _band_labels(user_bands, ours.size)
    evaluated = ~np.isnan(ours)
    out: dict[str, dict[str, dict]] = {}
    for name, lists in others.items():
        diff = ours - ndcg_at_k(lists, relevant, k)
        out[name] = {}
        for band in _band_order(labels[evaluated]):
            values = diff[evaluated & (labels == band)]
            se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else np.nan
            out[name][band] = {"difference": float(values.mean()), "se": float(se),
                               "users": int(values.size)}
    return out


def relevance_matrix(
    test_relevant: pd.DataFrame, user_ids: Sequence, item_ids: Sequence
) -> sp.csr_matrix:
    """Turn ``(user_id, item_id)`` relevant pairs into the binary matrix the metrics read.

    Parameters
    ----------
    test_relevant : DataFrame
        Columns ``user_id`` and ``item_id`` (e.g. ``Split.test_relevant``).
    user_ids : sequence
        The evaluated users, in the row order of ``recommended``.
    item_ids : sequence
        The catalogue: ``item_ids[j]`` is the id of item index ``j``.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (len(user_ids), len(item_ids))

    Raises
    ------
    ValueError
        When a relevant item is not in ``item_ids``: the metrics are over the full catalogue,
        so dropping it would silently inflate recall; index the model over the full catalogue.
        Pairs of users not in ``user_ids`` are ignored (those users are not evaluated).
    """
    users = pd.Index(user_ids)
    items = pd.Index(item_ids)
    if not users.is_unique:
        raise ValueError("user_ids holds duplicates")
    if not items.is_unique:
        raise ValueError("item_ids holds duplicates")
    rows = users.get_indexer(test_relevant["user_id"])
    keep = rows >= 0
    cols = items.get_indexer(test_relevant["item_id"].to_numpy()[keep])
    if np.any(cols < 0):
        missing = pd.unique(test_relevant["item_id"].to_numpy()[keep][cols < 0])
        raise ValueError(
            f"{missing.size} relevant item(s) are not in item_ids, e.g. {missing[:3].tolist()}"
        )
    mat = sp.csr_matrix(
        (np.ones(cols.size), (rows[keep], cols)), shape=(len(users), len(items))
    )
    mat.sum_duplicates()
    mat.data[:] = 1.0
    return mat

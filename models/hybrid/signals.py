"""Stage 2's input: one row of signals per (user, candidate) pair.

A row holds each component's score and rank, the user's affinity to the course's category,
band eligibility, venue fit, declared interest, history size, the course's activity, and the
category preference of users with the same profile. :data:`SIGNALS` names the columns; the
re-ranker learns on them and serving turns them into reasons.

For a user with a history, a component's score is placed within the user's candidates (0 the
lowest, 1 the highest; :func:`score_ranges`): the trees learn on the components fitted before
the validation cut and rank with the components refitted on everything, whose scores for the
same user are larger (EASE and item-kNN sum over a longer history, the counts grow). Within a
list the place is what carries over from one fit to the other. A user with no history keeps the
raw scores: popularity counts are all a newcomer is ranked by, and their size is what tells
an established course from a new one (docs/decisions.md "Component scores within the user's
candidates").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from models.hybrid.candidates import COMPONENTS

# Names of the stage-2 signals, in column order.
SIGNALS = (
    *COMPONENTS,
    *(f"{c}_rank" for c in COMPONENTS),
    "category_affinity",
    "eligible",
    "same_community",
    "interest",
    "history_size",
    "item_log_count",
    "item_recent",
    "item_age_days",
    "item_idle_days",
    "profile_category",
)
_COLUMN = {name: j for j, name in enumerate(SIGNALS)}
# The columns of the components' log1p ranks, in COMPONENTS order.
_RANK_COLUMNS = slice(SIGNALS.index(f"{COMPONENTS[0]}_rank"),
                      SIGNALS.index(f"{COMPONENTS[-1]}_rank") + 1)
# Smoothing of the profile lifts: an attribute value seen with few interactions stays near 0.
_PROFILE_PRIOR = 10.0


class Context(NamedTuple):
    """What is known about the users being ranked, one entry (row) per user."""

    band: np.ndarray  # int, -1 unknown
    community: np.ndarray  # int, -1 unknown
    interests: np.ndarray  # bool (n_users, n_categories): declared interests
    attributes: np.ndarray  # int (n_users, n_attributes): profile codes, -1 unknown


class ItemTable(NamedTuple):
    """What is known about the courses, one entry (row) per item."""

    category: np.ndarray  # int, -1 unknown
    bands: np.ndarray  # bool (n_items, 4): the bands a course is made for
    community: np.ndarray  # int, -1 unknown: where it is held
    count: np.ndarray  # float: users who took it
    temporal: np.ndarray  # float (n_items, 3): recent activity, days since first / last
    n_categories: int


def signal_rows(
    masked: np.ndarray,
    r: np.ndarray,
    i: np.ndarray,
    X: sp.csr_matrix,
    ctx: Context,
    items: ItemTable,
    profile: np.ndarray,
    ranges: tuple[np.ndarray, np.ndarray],
    columns: np.ndarray | None = None,
    ordered: np.ndarray | None = None,
) -> np.ndarray:
    """The signal rows of the candidate pairs ``(r[k], i[k])``, float32 (n_pairs, len(SIGNALS)).

    ``masked`` are the components' scores with blocked items at ``-inf``, (len(COMPONENTS),
    n_users, n_columns) as :func:`~models.hybrid.candidates.candidate_mask` gives them (a rank
    counts the items the user could be offered; a candidate is never blocked, so its value is
    the component's score); ``profile`` is :func:`profile_scores` of the users; ``ranges``
    is :func:`score_ranges` of all the users' candidates (a row may be built for a few of
    them, its place is among all). ``i`` are
    columns of ``masked``: item indices, or positions in ``columns`` (the items they are) when
    ``masked`` holds only those items.
    """
    n_comp = len(COMPONENTS)
    out = np.empty((r.size, len(SIGNALS)), dtype=np.float32)
    values = masked[:, r, i]  # (n_components, n_pairs)
    # A candidate's rank in each component: how many items that component scores higher.
    out[:, _RANK_COLUMNS] = np.log1p(_ranks(masked, r, values, ordered)).T
    history = np.diff(X.indptr)[r]
    out[:, :n_comp] = _placed(values, r, ranges, history > 0).T
    i = i if columns is None else columns[i]
    cat_share = category_share(X, items.category, items.n_categories)
    band = ctx.band[r]
    cat = items.category[i]
    known_cat = np.maximum(cat, 0)
    out[:, _COLUMN["category_affinity"]] = np.where(cat >= 0, cat_share[r, known_cat], 0.0)
    out[:, _COLUMN["eligible"]] = np.where(band >= 0, items.bands[i, np.maximum(band, 0)], False)
    community = ctx.community[r]
    out[:, _COLUMN["same_community"]] = (community >= 0) & (items.community[i] == community)
    interests = ctx.interests
    has_interest = (cat >= 0) & (cat < interests.shape[1])
    out[:, _COLUMN["interest"]] = np.where(
        has_interest, interests[r, np.clip(cat, 0, interests.shape[1] - 1)], False)
    out[:, _COLUMN["history_size"]] = np.log1p(history)
    out[:, _COLUMN["item_log_count"]] = np.log1p(items.count[i])
    out[:, _COLUMN["item_recent"] : _COLUMN["item_idle_days"] + 1] = items.temporal[i]
    out[:, _COLUMN["profile_category"]] = np.where(cat >= 0, profile[r, known_cat], 0.0)
    return out


def score_ranges(masked: np.ndarray, r: np.ndarray, i: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each user's lowest and highest candidate score of each component.

    ``(r, i)`` are all the candidate pairs, sorted by user (as ``np.nonzero`` gives them), ``i``
    columns of ``masked``. Returns ``(low, high)``, float32 (n_components, n_users) each; a
    user with no candidate gets zeros.
    """
    n_comp, n_users = masked.shape[:2]
    low = np.zeros((n_comp, n_users), dtype=np.float32)
    high = np.zeros((n_comp, n_users), dtype=np.float32)
    if r.size:
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        values = masked[:, r, i]
        low[:, r[starts]] = np.minimum.reduceat(values, starts, axis=1)
        high[:, r[starts]] = np.maximum.reduceat(values, starts, axis=1)
    return low, high


def _placed(values: np.ndarray, r: np.ndarray, ranges: tuple[np.ndarray, np.ndarray],
            has_history: np.ndarray) -> np.ndarray:
    """``values`` (n_components, n_pairs) placed within their user's range where the pair's
    user has a history (0 at the lowest candidate, 1 at the highest, 0 when all are equal);
    the raw values where not."""
    low, high = ranges[0][:, r], ranges[1][:, r]
    span = high - low
    placed = np.divide(values - low, span, out=np.zeros_like(values), where=span > 0)
    return np.where(has_history, placed, values)


def component_ranks(signals: np.ndarray, active: Iterable[str]) -> dict[str, np.ndarray]:
    """Each component's 0-based rank of the courses whose signal rows are ``signals``.

    ``inf`` where the component is not in ``active`` (it is off) or its score column is 0
    (a raw 0, or for a user with a history the lowest of the user's candidates): then the
    component says nothing about the course, whatever its rank among other zeros.

    Parameters
    ----------
    signals : ndarray of float, shape (..., len(SIGNALS))
    active : iterable of str
        The components the model has (see ``HybridRanker.components``).

    Returns
    -------
    dict of ndarray of float, one per name of ``COMPONENTS``, shape ``signals.shape[:-1]``
    """
    signals = np.asarray(signals, dtype=np.float64)
    active = set(active)
    on = np.array([name in active for name in COMPONENTS])
    # Every component at once: the scores are the first columns, the log1p ranks the next.
    rank = np.rint(np.expm1(signals[..., _RANK_COLUMNS]))
    ranks = np.where((signals[..., : len(COMPONENTS)] > 0) & on, rank, np.inf)
    return {name: ranks[..., c] for c, name in enumerate(COMPONENTS)}


def category_share(X: sp.csr_matrix, item_category: np.ndarray, n_categories: int) -> np.ndarray:
    """Each user's share of history weight per category, (n_users, n_categories)."""
    n_cat = max(n_categories, 1)
    out = np.zeros((X.shape[0], n_cat), dtype=np.float32)
    if X.nnz == 0:
        return out
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    cats = item_category[X.indices]
    known = cats >= 0
    np.add.at(out, (rows[known], cats[known]), X.data[known])
    totals = np.bincount(rows, weights=X.data, minlength=X.shape[0]).astype(np.float32)
    return np.divide(out, totals[:, None], out=out, where=totals[:, None] > 0)


def profile_lifts(
    X: sp.csr_matrix, attributes: np.ndarray, item_category: np.ndarray, n_categories: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per attribute value, how much more (log ratio) its users take each category.

    ``log(p(category | value) / p(category))`` from the users' positive interactions, shrunk
    towards 0 by ``_PROFILE_PRIOR`` interactions' worth of the overall shares. One block of
    rows per attribute (``offsets[a]`` is its first row); a user's signal for a course is the
    sum over their known attribute values (naive Bayes), which is what lets a course nobody has
    taken yet be ranked by who takes its category.

    Returns
    -------
    lift : ndarray of float32, shape (n_attribute_values, max(n_categories, 1))
    offsets : ndarray of int64, shape (n_attributes + 1,)
    """
    n_cat = max(n_categories, 1)
    sizes = [int(attributes[:, a].max(initial=-1)) + 1 for a in range(attributes.shape[1])]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    lift = np.zeros((int(offsets[-1]), n_cat), dtype=np.float32)
    if not lift.size or X.nnz == 0:
        return lift, offsets
    users = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    cats = item_category[X.indices]
    keep = (X.data > 0) & (cats >= 0)
    users, cats = users[keep], cats[keep]
    overall = np.bincount(cats, minlength=n_cat).astype(np.float64)
    share = (overall + 1.0) / (overall.sum() + n_cat)
    for a, size in enumerate(sizes):
        code = attributes[users, a]
        known = code >= 0
        counts = np.bincount(code[known] * n_cat + cats[known],
                             minlength=size * n_cat).reshape(size, n_cat).astype(np.float64)
        p = (counts + _PROFILE_PRIOR * share) / (counts.sum(axis=1, keepdims=True)
                                                 + _PROFILE_PRIOR)
        lift[offsets[a] : offsets[a + 1]] = np.log(p / share)
    return lift, offsets


def profile_scores(
    attributes: np.ndarray, lift: np.ndarray, offsets: np.ndarray, n_categories: int
) -> np.ndarray:
    """Each user's summed category lift, (n_users, n_categories); unknown codes add nothing."""
    n_attr = min(attributes.shape[1], offsets.size - 1)
    if n_attr == 0 or lift.shape[0] == 0:
        return np.zeros((attributes.shape[0], max(n_categories, 1)), dtype=np.float32)
    code = attributes[:, :n_attr]
    ok = (code >= 0) & (code < np.diff(offsets)[:n_attr])
    # Every attribute's lift row at once (an unknown code's as zeros), summed attribute
    # after attribute along the middle axis.
    rows = lift[np.where(ok, offsets[:n_attr] + code, 0)]  # (n_users, n_attr, n_categories)
    return np.where(ok[..., None], rows, np.float32(0.0)).sum(axis=1)


def _ranks(masked: np.ndarray, rows: np.ndarray, values: np.ndarray,
           ordered: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each value within its row: the number of higher scores in that row.

    ``masked`` is (n_components, n_users, n_items), ``values[c, k]`` a value of row
    ``rows[k]`` of component ``c``; ``rows`` must be sorted (as ``np.nonzero`` gives them).
    ``ordered`` is ``masked`` sorted along the items, when the caller has it (the candidates
    were cut from it). Returns float32 ranks shaped like ``values``. Each (component, user)
    row is searched once for all of its values: the search is the cost for one resident, and
    the loop's few calls per row for a batch.
    """
    out = np.zeros(values.shape, dtype=np.float32)
    if rows.size == 0:
        return out
    n_users, n_items = masked.shape[1:]
    if ordered is None:
        ordered = np.sort(masked, axis=2)
    bounds = np.searchsorted(rows, np.arange(n_users + 1)).tolist()
    users = [u for u in range(n_users) if bounds[u + 1] > bounds[u]]
    for c in range(masked.shape[0]):
        sorted_rows, below, wanted = ordered[c], out[c], values[c]
        for u in users:
            a, b = bounds[u], bounds[u + 1]
            below[a:b] = sorted_rows[u].searchsorted(wanted[a:b], side="right")
    return np.subtract(n_items, out, out=out)  # higher: the row's items not at or below

"""Where a time-based protocol cuts: between distinct timestamps, leaving it something to evaluate.

:func:`time_cut` is the global cut of the temporal and cold-user protocols (and of their
validation cuts). Coarse timestamps (a date, a month, a term) put heavy ties on the quantile;
the cut is then moved to the distinct timestamp nearest the quantile that leaves the protocol
something to evaluate after it, and a split that cannot be made raises :class:`SplitError`
with the reason. The "needs" say, for every possible cut at once, whether a protocol has what
it evaluates after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TEMPORAL_QUANTILE", "SplitError", "cold_user_need", "temporal_need", "time_cut"]

TEMPORAL_QUANTILE = 0.8


def _time_keys(timestamps: pd.Series) -> np.ndarray:
    """Timestamps as sortable numbers (int64 ticks of the column's own unit, or numbers)."""
    if timestamps.isna().any():
        raise ValueError(
            f"interactions column 'timestamp' has {int(timestamps.isna().sum())} missing value(s)"
        )
    if pd.api.types.is_datetime64_any_dtype(timestamps):
        # asi8 gives UTC ticks for tz-aware columns, so the order is the true time order.
        return pd.DatetimeIndex(timestamps).asi8
    if pd.api.types.is_numeric_dtype(timestamps):
        return timestamps.to_numpy()
    raise ValueError(
        f"interactions column 'timestamp' must be datetime64 or numeric, got {timestamps.dtype}"
    )


class SplitError(ValueError):
    """A protocol that cannot split this data: no cut or draw leaves anything to evaluate.

    The message names the protocol and the reason (and, where one exists, a protocol that
    suits the data), so a command can print it as the one line it stops with.
    """


def time_cut(interactions: pd.DataFrame, quantile: float = TEMPORAL_QUANTILE, *,
             protocol: str = "temporal", need: tuple[str, Callable] | None = None):
    """The global cut: one of the distinct timestamps, so that both sides have rows.

    The cut is first the ``quantile`` of the timestamps as one of the actual timestamps
    (``numpy.quantile(..., method="lower")``; rows at the cut go to train). When that cut
    leaves nothing after it (the quantile lands on the latest timestamp, as it does with coarse
    timestamps whose last value is shared by a fifth or more of the rows) or, with ``need``,
    leaves the protocol nothing to evaluate, the cut is the distinct timestamp that does work
    whose at-or-before share of the rows is nearest the quantile (on a tie, the earlier one).

    Parameters
    ----------
    interactions : DataFrame
        With a ``timestamp`` column.
    quantile : float, default 0.8
        Which quantile.
    protocol : str, default "temporal"
        Named in the error.
    need : (str, callable), optional
        What the protocol needs after the cut, as a description for the error and a function
        ``(time_index, n_times) -> ndarray of bool``: given each row's position among the
        sorted distinct timestamps, whether a cut at each of them gives the protocol something
        to evaluate.

    Returns
    -------
    cut : Timestamp or number
        The last training timestamp.
    in_train : ndarray of bool
        Rows at or before the cut (ties go to train).

    Raises
    ------
    SplitError
        If every row has the same timestamp, or no cut between distinct timestamps gives the
        protocol something to evaluate.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    if len(interactions) == 0:
        raise SplitError(f"{protocol}: interactions is empty: there is nothing to split")
    ts = interactions["timestamp"]
    keys = _time_keys(ts)
    distinct, time_index = np.unique(keys, return_inverse=True)
    time_index = time_index.ravel()
    if distinct.size < 2:
        raise SplitError(
            f"{protocol}: all {len(keys):,} interactions share one timestamp ({ts.iloc[0]}): a "
            f"{protocol} split needs at least two distinct times; use --protocol random or "
            "cold-item")
    # A cut at the last timestamp leaves nothing after it.
    usable = np.arange(distinct.size) < distinct.size - 1
    if need is not None:
        usable &= need[1](time_index, distinct.size)
    if not usable.any():
        raise SplitError(
            f"{protocol}: no cut between the {distinct.size:,} distinct timestamps leaves "
            f"{need[0]}; use --protocol random or cold-item")
    position = int(np.searchsorted(distinct, np.quantile(keys, quantile, method="lower")))
    if not usable[position]:
        # Distances in rows, not shares: equal distances then compare equal exactly.
        before = np.cumsum(np.bincount(time_index, minlength=distinct.size))
        distance = np.where(usable, np.abs(before - quantile * len(keys)), np.inf)
        position = int(np.argmin(distance))  # the first minimum: the earlier of a tie
    in_train = time_index <= position
    cut = ts.iloc[int(np.flatnonzero(time_index == position)[0])]
    return cut, in_train


def _first(codes: np.ndarray, time_index: np.ndarray, size: int) -> np.ndarray:
    """The earliest time index of each code (``size`` codes; -1 for a code with no row)."""
    first = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, codes, time_index)
    return np.where(first == np.iinfo(np.int64).max, -1, first)


def temporal_need(coded: Any, warm_only: bool) -> tuple[str, Callable]:
    """Where a temporal cut has a relevant test pair (of a warm user, with ``warm_only``).

    ``coded`` is the protocols' integer coding of the interactions (``user``, ``user_ids``,
    ``pairs``, ``n_items``, ``positive``).

    A pair with a positive row is relevant after a cut at time index ``j`` when none of its
    rows is at or before ``j`` (``j < first row of the pair``) and, for a warm user, the user
    has a row at or before ``j`` (``first row of the user <= j``): an interval of cuts per pair.
    """
    def usable(time_index: np.ndarray, n_times: int) -> np.ndarray:
        pair_of_row, pairs = coded.pairs
        positive = np.zeros(pairs.size, dtype=bool)
        positive[pair_of_row[coded.positive]] = True
        hi = _first(pair_of_row, time_index, pairs.size)[positive]
        if not warm_only:
            return np.arange(n_times) < hi.max(initial=0)
        user_first = _first(coded.user, time_index, len(coded.user_ids))
        lo = user_first[pairs[positive] // coded.n_items]
        lo, hi = lo[lo < hi], hi[lo < hi]
        # +1 at each interval's start, -1 past its end: a cut is usable where the sum is > 0.
        cover = np.bincount(lo, minlength=n_times + 1) - np.bincount(hi, minlength=n_times + 1)
        return np.cumsum(cover)[:n_times] > 0

    if warm_only:
        return ("a user with training history and a relevant item new to them after it",
                usable)
    return "a relevant interaction new to its user after it", usable


def cold_user_need(coded: Any) -> tuple[str, Callable]:
    """Where a cut leaves a user whose first row is after it and who has a positive row."""
    def usable(time_index: np.ndarray, n_times: int) -> np.ndarray:
        user_first = _first(coded.user, time_index, len(coded.user_ids))
        with_positive = np.zeros(len(coded.user_ids), dtype=bool)
        with_positive[coded.user[coded.positive]] = True
        return np.arange(n_times) < user_first[with_positive].max(initial=0)

    return "a user whose first interaction is after it and who has a relevant one", usable

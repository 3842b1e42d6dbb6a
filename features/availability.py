"""Which courses can be offered on a day: the one date rule of the benchmark and the service.

A course is *available on a day* when it has not ended before that day: ``end_date >= day``.
The benchmark ranks only the courses available at its cut
(:mod:`recommender.evaluation.candidates`); the service offers on ``today`` only courses still
running tomorrow (``recommender.serving.rules.allowed_mask``: a course in its last day is not
worth offering), i.e. :func:`available_on` at ``today + 1 day``. A course's status is not part
of this rule: it is a snapshot taken when the data was exported, so for a past cut it tells the
future (a course that filled up or closed later was open then); the service adds it on its own.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["AVAILABLE_AT_CUT", "FULL_CATALOGUE", "available_on", "end_dates", "items_available"]

# The candidate rules a benchmark document names.
AVAILABLE_AT_CUT = "available at the cut (end_date >= cut)"
FULL_CATALOGUE = "full catalogue"


def end_dates(items: pd.DataFrame) -> np.ndarray | None:
    """The items' ``end_date`` as ``datetime64[D]`` (NaT where unknown or unparseable).

    Returns None when the table has no ``end_date`` column or not one known date: the data
    does not say when its items are available.
    """
    if "end_date" not in items:
        return None
    end = pd.to_datetime(items["end_date"], errors="coerce")
    if getattr(end.dtype, "tz", None) is not None:
        end = end.dt.tz_localize(None)  # the wall-clock date, as the table states it
    days = end.to_numpy().astype("datetime64[D]")
    return days if (~np.isnat(days)).any() else None


def available_on(end: np.ndarray, day, *, unknown: bool = True) -> np.ndarray:
    """Mask of the courses that have not ended before ``day`` (``end >= day``).

    Parameters
    ----------
    end : ndarray of datetime64
        Each course's last day; NaT where unknown.
    day : date, datetime64 or timestamp-like
        The day of the offer; only its date counts.
    unknown : bool, default True
        What a course with no end date gets: the benchmark cannot exclude what the data does
        not date (True); the service offers only courses it knows are running (False).
    """
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        day = pd.Timestamp(day).date()
    day = np.datetime64(day, "D")
    end = np.asarray(end)
    if end.dtype != np.dtype("datetime64[D]"):
        end = end.astype("datetime64[D]")
    running = end >= day  # NaT compares False
    if unknown:
        running |= np.isnat(end)
    return running


def items_available(items: pd.DataFrame, item_ids, cut) -> np.ndarray | None:
    """Which of ``item_ids`` are available at ``cut``, or None when no date says.

    Parameters
    ----------
    items : DataFrame
        The items table (``item_id`` and optionally ``end_date``).
    item_ids : sequence
        The catalogue, in index order; an id the table lacks has no end date (available).
    cut : timestamp-like or None
        The moment of the offer. None, or a plain number (numeric timestamps carry no
        calendar), gives None.

    Returns
    -------
    ndarray of bool, shape (len(item_ids),), or None
    """
    end = end_dates(items)
    if end is None or cut is None or not isinstance(cut, pd.Timestamp | dt.date | np.datetime64):
        return None
    first = ~pd.Index(items["item_id"]).duplicated()
    table = pd.Series(end[first], index=pd.Index(items["item_id"])[first])
    aligned = table.reindex(pd.Index(item_ids)).to_numpy().astype("datetime64[D]")
    return available_on(aligned, cut)

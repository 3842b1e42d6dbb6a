"""Helpers that align the users and items tables to an :class:`IdMapping` (one row per index).

Shared by the resident and course features so that age bands and schedule slots are computed
the same way everywhere; :class:`TableFeatures` holds the fit steps both builders share.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.bands import BAND_NAMES, AgeBands
from features.event_log import EncodedEvents, encode_events, resolve_cutoff
from features.frames import DataBundle
from features.ids import IdMapping

__all__ = [
    "SLOTS",
    "UNKNOWN",
    "TableFeatures",
    "aligned",
    "codes_in",
    "distinct_values",
    "hour_slots",
    "item_schedule",
    "split_multi",
    "str_column",
    "user_ages",
]

UNKNOWN = "unknown"
# Morning before noon, afternoon until 18:00, evening after: community centres' own wording.
SLOTS: tuple[str, ...] = ("morning", "afternoon", "evening")
_SLOT_EDGES = np.array([12.0, 18.0])


def aligned(frame: pd.DataFrame, key: str, index_of) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows of ``frame`` whose ``key`` the mapping knows, first occurrence of each id only.

    Returns
    -------
    idx : ndarray of int64
        Mapping index of each kept row.
    rows : DataFrame
        The kept rows, in the same order as ``idx``.
    """
    idx = index_of(frame[key])
    keep = idx >= 0
    keep &= ~pd.Series(idx).duplicated().to_numpy()
    return idx[keep], frame.loc[keep]


def distinct_values(frame: pd.DataFrame, col: str) -> list[str]:
    """Sorted distinct non-empty values (stripped text) of ``frame[col]``; none if it is absent."""
    if col not in frame:
        return []
    vals = frame[col].dropna().astype(str).str.strip()
    return sorted(vals[vals != ""].unique().tolist())


def codes_in(values, vocab) -> np.ndarray:
    """Position (int64) of each value in ``vocab``; -1 for NA or a value outside it."""
    vals = pd.Series(values).astype("string").str.strip()
    return pd.Index(list(vocab), dtype=object).get_indexer(vals.astype(object)).astype(np.int64)


def str_column(rows: pd.DataFrame, col: str, idx: np.ndarray, n: int, default: str = UNKNOWN):
    """Object array of length ``n``: ``rows[col]`` at ``idx``, ``default`` elsewhere / when NA."""
    out = np.full(n, default, dtype=object)
    if col in rows and len(idx):
        vals = rows[col]
        ok = vals.notna().to_numpy() & (vals.astype(str).str.strip() != "").to_numpy()
        out[idx[ok]] = vals[ok].astype(str).str.strip().to_numpy(dtype=object)
    return out


def split_multi(values: pd.Series) -> pd.Series:
    """Lists from ``|``-separated strings (stripped, empties dropped; NA gives an empty list)."""
    return values.fillna("").astype(str).map(
        lambda s: [t.strip() for t in s.split("|") if t.strip()]
    )


def user_ages(
    users: pd.DataFrame, mapping: IdMapping, cutoff: pd.Timestamp, bands: AgeBands
) -> tuple[np.ndarray, np.ndarray]:
    """Age (float, NaN unknown) and band code (int8 into ``BAND_NAMES``, -1 unknown) per user.

    The age is taken at the cut-off date from ``birth_year`` (a resident born in year Y is
    treated as born on 1 January Y, see :meth:`AgeBands.age`), else from an ``age`` column,
    else only the band from an ``age_band`` column. A birth year after the cut-off (not yet
    born at that date) gives an unknown age rather than an error, so a cut in the past works.
    """
    n = mapping.n_users
    age = np.full(n, np.nan)
    code = np.full(n, -1, dtype=np.int8)
    idx, rows = aligned(users, "user_id", mapping.user_index)
    if "birth_year" in rows:
        years = pd.to_numeric(rows["birth_year"], errors="coerce").to_numpy(dtype=np.float64)
        age[idx] = cutoff.year - years
    elif "age" in rows:
        age[idx] = pd.to_numeric(rows["age"], errors="coerce").to_numpy(dtype=np.float64)
    age[age < 0] = np.nan
    known = ~np.isnan(age)
    code[known] = np.searchsorted(bands.lower_edges, age[known], side="right") - 1
    if "age_band" in rows:
        # A declared band fills in where no age is known; it never overrides a birth year.
        dcode = codes_in(rows["age_band"], BAND_NAMES).astype(np.int8)
        fill = (code[idx] < 0) & (dcode >= 0)
        code[idx[fill]] = dcode[fill]
    return age, code


def hour_slots(hours: np.ndarray) -> np.ndarray:
    """Slot code (int8 into ``SLOTS``) of each hour of day; -1 for NaN."""
    hours = np.asarray(hours, dtype=np.float64)
    out = np.searchsorted(_SLOT_EDGES, np.nan_to_num(hours, nan=0.0), side="right")
    return np.where(np.isnan(hours), -1, out).astype(np.int8)


def _hours(start_time: pd.Series) -> np.ndarray:
    """Hour of day (float) from ``"HH:MM"`` / ``"HH:MM:SS"`` text or time objects."""
    def one(v) -> float:
        if isinstance(v, dt.time):
            return v.hour + v.minute / 60
        try:
            parts = str(v).strip().split(":")
            h = float(parts[0]) + (float(parts[1]) / 60 if len(parts) > 1 else 0.0)
        except (ValueError, IndexError):
            return np.nan
        return h if 0 <= h < 24 else np.nan

    return np.array([one(v) if pd.notna(v) else np.nan for v in start_time], dtype=np.float64)


def item_schedule(items: pd.DataFrame, mapping: IdMapping) -> tuple[np.ndarray, np.ndarray]:
    """Weekday (int8, 0 = Monday, -1 unknown) and start hour (float, NaN unknown) per item.

    The weekday comes from ``weekday``, else from the weekday of ``start_date``.
    """
    n = mapping.n_items
    weekday = np.full(n, -1, dtype=np.int8)
    hour = np.full(n, np.nan)
    idx, rows = aligned(items, "item_id", mapping.item_index)
    if not len(idx):
        return weekday, hour
    wd = np.full(len(idx), np.nan)
    if "weekday" in rows:
        wd = pd.to_numeric(rows["weekday"], errors="coerce").to_numpy(dtype=np.float64)
    if "start_date" in rows:
        start = pd.to_datetime(rows["start_date"], errors="coerce")
        from_date = start.dt.day_of_week.to_numpy(dtype=np.float64, na_value=np.nan)
        wd = np.where(np.isnan(wd), from_date, wd)
    ok = ~np.isnan(wd) & (wd >= 0) & (wd <= 6)
    weekday[idx[ok]] = wd[ok].astype(np.int8)
    if "start_time" in rows:
        hour[idx] = _hours(rows["start_time"])
    return weekday, hour


class TableFeatures:
    """The fit steps shared by the per-table feature builders (residents, courses).

    A subclass stores ``age_bands``, ``cutoff`` and ``id_mapping`` in ``__init__``, checks its
    parameters in ``_validate`` and implements ``_fit`` (starting with :meth:`_begin_fit`) and
    ``transform``.
    """

    def _begin_fit(self, bundle: DataBundle, events: EncodedEvents | None) -> EncodedEvents:
        """Validate, fix the bands, the cut-off and the id mapping; the events as of the cut."""
        self._validate()
        self.bands_ = self.age_bands or AgeBands()
        self.cutoff_ = resolve_cutoff(bundle.interactions, self.cutoff)
        self.id_mapping_ = (
            self.id_mapping if self.id_mapping is not None
            else IdMapping().fit(bundle, until=self.cutoff_)
        )
        return self._events(bundle, events)

    def _events(self, bundle: DataBundle, events: EncodedEvents | None) -> EncodedEvents:
        if events is None:
            return encode_events(bundle.interactions, self.id_mapping_, self.cutoff_)
        events.check(self.cutoff_, self.id_mapping_)
        return events

    def fit_transform(self, bundle: DataBundle, events: EncodedEvents | None = None):
        """``fit(bundle).transform(bundle)``, encoding the event log once."""
        return self.transform(bundle, self._fit(bundle, events))

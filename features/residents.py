"""Resident features as of a cut-off: age band, place, household, activity and habits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import BAND_NAMES, AgeBands
from features.event_log import DAY_NS, EncodedEvents
from features.frames import DataBundle
from features.ids import IdMapping
from features.tables import (
    SLOTS,
    UNKNOWN,
    TableFeatures,
    aligned,
    codes_in,
    distinct_values,
    hour_slots,
    item_schedule,
    str_column,
    user_ages,
)

__all__ = ["ResidentFeatures", "USER_OPTIONAL_COLUMNS"]

# Columns of ``users`` / ``items`` that resident features use when present.
USER_OPTIONAL_COLUMNS = ("birth_year", "age_band", "community_id", "street", "household_id",
                         "registered_at")
_ITEM_COLUMNS = ("category", "weekday", "start_time")
_BAND_LABELS = (*BAND_NAMES, UNKNOWN)


def _bincount2(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, weights=None):
    flat = rows.astype(np.int64) * n_cols + cols
    return np.bincount(flat, weights=weights, minlength=n_rows * n_cols).reshape(n_rows, n_cols)


class ResidentFeatures(TableFeatures):
    """One row of features per user index, computed from data at or before the cut-off.

    Parameters
    ----------
    age_bands : AgeBands, optional
        Band edges; default ``AgeBands()`` (0-5, 6-17, 18-59, 60+).
    half_life_days : float or None, default 90
        Decay of the per-category activity; None counts every past event fully.
    cutoff : timestamp-like, optional
        None: the latest interaction timestamp seen in ``fit``.
    recency_cap_days : float, default 1825
        ``days_since_last`` is capped here; residents with no events get the cap.
    max_categories : int, default 20
        Activity columns for at most this many categories (the most common in ``items``).
    id_mapping : IdMapping, optional
        Shared mapping; None fits one on the bundle (ids seen up to the cut-off).

    Attributes
    ----------
    cutoff_ : pd.Timestamp
    id_mapping_ : IdMapping
    categories_ : list of str
        Categories with an ``act_<category>`` column.
    communities_, streets_ : list of str
        One-hot vocabularies of :meth:`to_matrix` (from the users table in ``fit``).
    attendance_rate_ : float
        Population attend / (attend + no_show) at the cut-off (1.0 without such events): the
        rate given to residents without their own attendance record.
    feature_names_ : list of str
        Column names of :meth:`to_matrix`.
    skipped_ : list of str
        Optional columns absent from the bundle, e.g. ``"users.birth_year"``.

    Notes
    -----
    ``transform`` returns a DataFrame indexed by user index (``user_index``) with columns
    ``user_id, age, age_band, community_id, street, household_size, with_preschool,
    with_school_age, with_elderly, tenure_days, n_events, n_positive, n_items, act_<category>...,
    act_total, has_history, days_since_last, n_attend, n_no_show, attendance_rate, no_show_rate,
    pref_weekday, pref_slot, wd_0..wd_6, slot_morning, slot_afternoon, slot_evening``. Unknown
    text is ``"unknown"``, an unknown age is -1, and no column holds NaN.
    """

    def __init__(
        self,
        age_bands: AgeBands | None = None,
        half_life_days: float | None = 90.0,
        cutoff=None,
        recency_cap_days: float = 1825.0,
        max_categories: int = 20,
        id_mapping: IdMapping | None = None,
    ):
        self.age_bands = age_bands
        self.half_life_days = half_life_days
        self.cutoff = cutoff
        self.recency_cap_days = recency_cap_days
        self.max_categories = max_categories
        self.id_mapping = id_mapping

    def _validate(self) -> None:
        hl = self.half_life_days
        if hl is not None and not (isinstance(hl, int | float) and math.isfinite(hl) and hl > 0):
            raise ValueError(f"half_life_days must be a positive number or None, got {hl!r}")
        cap = self.recency_cap_days
        if not (isinstance(cap, int | float) and math.isfinite(cap) and cap > 0):
            raise ValueError(f"recency_cap_days must be a positive number, got {cap!r}")
        if not isinstance(self.max_categories, int) or self.max_categories < 0:
            raise ValueError(f"max_categories must be an int >= 0, got {self.max_categories!r}")
        if self.age_bands is not None and not isinstance(self.age_bands, AgeBands):
            raise ValueError(f"age_bands must be an AgeBands, got {self.age_bands!r}")

    def fit(self, bundle: DataBundle, events: EncodedEvents | None = None) -> ResidentFeatures:
        """Fix the cut-off, mapping, vocabularies and the population attendance rate."""
        self._fit(bundle, events)
        return self

    def _fit(self, bundle: DataBundle, events: EncodedEvents | None) -> EncodedEvents:
        events = self._begin_fit(bundle, events)
        users, items = bundle.users, bundle.items
        self.skipped_ = [f"users.{c}" for c in USER_OPTIONAL_COLUMNS if c not in users]
        if "birth_year" not in users and "age" in users:
            self.skipped_.remove("users.birth_year")
        if "birth_year" in users or "age" in users:
            self.skipped_ = [s for s in self.skipped_ if s != "users.age_band"]
        self.skipped_ += [f"items.{c}" for c in _ITEM_COLUMNS if c not in items]
        if "category" in items:
            counts = items["category"].dropna().astype(str).value_counts()
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.categories_ = sorted(c for c, _ in ranked[: self.max_categories])
        else:
            self.categories_ = []
        self.communities_ = distinct_values(users, "community_id")
        self.streets_ = distinct_values(users, "street")
        attend, no_show = events.is_event("attend").sum(), events.is_event("no_show").sum()
        self.attendance_rate_ = float(attend / (attend + no_show)) if attend + no_show else 1.0
        self.feature_names_ = (
            [f"band_{b}" for b in _BAND_LABELS]
            + [f"community_{c}" for c in self.communities_]
            + [f"street_{s}" for s in self.streets_]
            + list(self._numeric_columns())
        )
        return events

    def _numeric_columns(self) -> list[str]:
        return (
            ["age", "household_size", "with_preschool", "with_school_age", "with_elderly",
             "tenure_days", "n_events", "n_positive", "n_items"]
            + [f"act_{c}" for c in self.categories_]
            + ["act_total", "has_history", "days_since_last", "n_attend", "n_no_show",
               "attendance_rate", "no_show_rate"]
            + [f"wd_{d}" for d in range(7)]
            + [f"slot_{s}" for s in SLOTS]
        )

    def transform(self, bundle: DataBundle, events: EncodedEvents | None = None) -> pd.DataFrame:
        """Feature frame with one row per user index of the mapping (see class Notes)."""
        events = self._events(bundle, events)
        mapping, n = self.id_mapping_, self.id_mapping_.n_users
        cutoff = self.cutoff_
        users = bundle.users
        out: dict[str, np.ndarray] = {"user_id": mapping.user_ids_[:n].astype(object)}

        age, band = user_ages(users, mapping, cutoff, self.bands_)
        out["age"] = np.where(np.isnan(age), -1, age).astype(np.int16)
        out["age_band"] = np.asarray(_BAND_LABELS, dtype=object)[band]  # -1 -> "unknown"
        idx, rows = aligned(users, "user_id", mapping.user_index)
        out["community_id"] = str_column(rows, "community_id", idx, n)
        out["street"] = str_column(rows, "street", idx, n)
        out.update(self._household(rows, idx, band, n))
        tenure = np.zeros(n)
        if "registered_at" in rows:
            reg = pd.to_datetime(rows["registered_at"], errors="coerce")
            days = (cutoff - reg).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
            tenure[idx] = np.clip(np.nan_to_num(days / 86400.0, nan=0.0), 0, None)
        out["tenure_days"] = tenure
        out.update(self._activity(bundle, events, n))
        frame = pd.DataFrame(out, index=pd.RangeIndex(n, name="user_index"))
        return frame

    def _household(self, rows: pd.DataFrame, idx: np.ndarray, band: np.ndarray, n: int) -> dict:
        size = np.ones(n, dtype=np.int32)
        flags = np.zeros((n, 3), dtype=np.int8)
        if "household_id" in rows and len(idx):
            hh = rows["household_id"].astype("string").str.strip().replace("", pd.NA)
            codes, _ = pd.factorize(hh)  # NA -> -1: lives alone as far as we know
            has = codes >= 0
            uidx, hcode, ub = idx[has], codes[has], band[idx[has]].astype(np.int64)
            n_h = int(hcode.max()) + 1 if len(hcode) else 0
            per_band = _bincount2(hcode, ub + 1, n_h, len(BAND_NAMES) + 1)  # col 0: unknown
            members = per_band[hcode]
            size[uidx] = members.sum(axis=1)
            own = np.zeros_like(members)
            own[np.arange(len(ub)), ub + 1] = 1
            others = members - own  # "lives with" means someone else in the household
            for j, b in enumerate(("preschool", "school_age", "elderly")):
                flags[uidx, j] = others[:, BAND_NAMES.index(b) + 1] > 0
        return {"household_size": size, "with_preschool": flags[:, 0],
                "with_school_age": flags[:, 1], "with_elderly": flags[:, 2]}

    def _activity(self, bundle: DataBundle, ev: EncodedEvents, n: int) -> dict:
        out: dict[str, np.ndarray] = {}
        u = ev.user
        pos = ev.positive()
        out["n_events"] = np.bincount(u, minlength=n).astype(np.int32)
        out["n_positive"] = np.bincount(u[pos], minlength=n).astype(np.int32)
        pairs = np.unique(u[pos].astype(np.int64) * ev.n_items + ev.item[pos])
        out["n_items"] = np.bincount(pairs // max(ev.n_items, 1), minlength=n).astype(np.int32)

        decay = ev.decay(self.half_life_days)[pos]
        item_cat = np.full(ev.n_items, -1, dtype=np.int64)
        if self.categories_:
            iidx, irows = aligned(bundle.items, "item_id", self.id_mapping_.item_index)
            item_cat[iidx] = codes_in(irows["category"], self.categories_)
        c = item_cat[ev.item[pos]]
        known = c >= 0
        acts = _bincount2(u[pos][known], c[known], n, len(self.categories_), decay[known])
        for j, name in enumerate(self.categories_):
            out[f"act_{name}"] = acts[:, j]
        out["act_total"] = np.bincount(u[pos], weights=decay, minlength=n)

        last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(last, u, ev.time)
        has = out["n_events"] > 0
        out["has_history"] = has.astype(np.int8)
        since = np.full(n, float(self.recency_cap_days))
        since[has] = np.minimum((ev.cutoff.value - last[has]) / DAY_NS, self.recency_cap_days)
        out["days_since_last"] = since

        n_att = np.bincount(u[ev.is_event("attend")], minlength=n)
        n_ns = np.bincount(u[ev.is_event("no_show")], minlength=n)
        denom = n_att + n_ns
        rate = np.full(n, self.attendance_rate_)
        rate[denom > 0] = n_att[denom > 0] / denom[denom > 0]
        out.update(n_attend=n_att.astype(np.int32), n_no_show=n_ns.astype(np.int32),
                   attendance_rate=rate, no_show_rate=1.0 - rate)

        # Habits from the course schedule where known, else from when the event happened.
        wd_item, hour_item = item_schedule(bundle.items, self.id_mapping_)
        up, ip, tp = u[pos], ev.item[pos], ev.time[pos]
        stamp = pd.DatetimeIndex(tp.view("datetime64[ns]"))
        wd = wd_item[ip].astype(np.int64)
        wd = np.where(wd >= 0, wd, stamp.day_of_week.to_numpy())
        hour = hour_item[ip]
        if len(tp) and not (tp % DAY_NS == 0).all():
            clock = stamp.hour.to_numpy() + stamp.minute.to_numpy() / 60
            hour = np.where(np.isnan(hour), clock, hour)
        # else: date-only timestamps say nothing about the time of day; leave the slot unknown.
        slot = hour_slots(hour).astype(np.int64)
        wd_counts = _bincount2(up, wd, n, 7).astype(np.float64)
        timed = slot >= 0
        slot_counts = _bincount2(up[timed], slot[timed], n, len(SLOTS)).astype(np.float64)
        total, slot_total = wd_counts.sum(axis=1), slot_counts.sum(axis=1)
        pref_wd = np.where(total > 0, wd_counts.argmax(axis=1), -1).astype(np.int8)
        pref_slot = np.where(slot_total > 0, slot_counts.argmax(axis=1), -1)
        out["pref_weekday"] = pref_wd
        out["pref_slot"] = np.asarray((*SLOTS, UNKNOWN), dtype=object)[pref_slot]
        share = np.divide(1.0, total, out=np.zeros(n), where=total > 0)
        slot_share = np.divide(1.0, slot_total, out=np.zeros(n), where=slot_total > 0)
        for d in range(7):
            out[f"wd_{d}"] = wd_counts[:, d] * share
        for j, s in enumerate(SLOTS):
            out[f"slot_{s}"] = slot_counts[:, j] * slot_share
        return out

    def to_matrix(self, frame: pd.DataFrame) -> sp.csr_matrix:
        """Numeric form of a :meth:`transform` frame for models (float32 CSR, same rows).

        One-hot band / community / street (fitted vocabularies; unseen values give an all-zero
        block), then the numeric columns with counts as ``log1p``, age / 100 (0 unknown) and
        days_since_last / recency_cap_days. Columns are named by ``feature_names_``.
        """
        n = len(frame)
        blocks = []
        for col, vocab in (("age_band", _BAND_LABELS), ("community_id", self.communities_),
                           ("street", self.streets_)):
            codes = codes_in(frame[col], vocab)
            ok = codes >= 0
            blocks.append(sp.csr_matrix(
                (np.ones(int(ok.sum()), dtype=np.float32), (np.flatnonzero(ok), codes[ok])),
                shape=(n, len(vocab)),
            ))
        num = frame[self._numeric_columns()].to_numpy(dtype=np.float64).copy()
        cols = {c: j for j, c in enumerate(self._numeric_columns())}
        num[:, cols["age"]] = np.where(num[:, cols["age"]] < 0, 0.0, num[:, cols["age"]] / 100.0)
        for c in ("household_size", "tenure_days", "n_events", "n_positive", "n_items",
                  "n_attend", "n_no_show", "act_total", *[f"act_{k}" for k in self.categories_]):
            num[:, cols[c]] = np.log1p(num[:, cols[c]])
        num[:, cols["days_since_last"]] /= float(self.recency_cap_days)
        blocks.append(sp.csr_matrix(num.astype(np.float32)))
        return sp.hstack(blocks, format="csr", dtype=np.float32)

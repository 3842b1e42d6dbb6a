"""The business rules: which courses may be offered to whom, and how a list is diversified.

:class:`Catalogue` holds the per-course arrays the rules read and :class:`Snapshot` one loaded
model with its enrolment counts; :func:`allowed_mask` is the one place the offer rules live (open,
seats left, still running, fits the resident's band or their household's children, not already
taken), :func:`diversify` caps one category's share of a list and :func:`household_fit` says
which courses a household member is for.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.domain import BAND_NAMES

if TYPE_CHECKING:  # the engine is imported lazily so this module loads without a model stack
    from recommender.engine import Engine, UserContext

CHILD_BANDS = ("preschool", "school_age")
ADULT_BANDS = ("working_age", "elderly")
_BAND_BIT = {band: np.uint8(1 << i) for i, band in enumerate(BAND_NAMES)}
# The district tables have no "family course" column: the catalogue marks 亲子 (parent–child)
# and 祖孙 (grandparent–grandchild) courses in their titles and tags.
FAMILY_MARKERS = ("亲子", "祖孙", "family")


# ----------------------------------------------------------------------------- model snapshot


@dataclass
class Catalogue:
    """Per-course arrays aligned with ``engine.items.index``, built once per loaded model."""

    ids: pd.Index
    category: np.ndarray  # object
    band_bits: np.ndarray  # uint8: bit i set when BAND_NAMES[i] is a target band
    family: np.ndarray  # bool
    open: np.ndarray  # bool: status == "open"
    end_date: np.ndarray  # datetime64[D], NaT when unknown
    capacity: np.ndarray  # int64, 0 when unknown
    records: list[dict]  # what a response shows about each course
    position: dict[str, int] = field(default_factory=dict)  # course_id -> position

    def __post_init__(self) -> None:
        # A dict answers one id in ~50 ns; pandas' get_loc / get_indexer take microseconds.
        if not self.position:
            self.position = {str(c): k for k, c in enumerate(self.ids)}

    @classmethod
    def from_items(cls, items: pd.DataFrame, community_names: Mapping[str, str]) -> Catalogue:
        n = len(items)

        def col(name, default=None):
            return items[name] if name in items else pd.Series([default] * n, index=items.index)

        bands = col("target_bands", "").fillna("").astype(str)
        bits = np.zeros(n, dtype=np.uint8)
        for band, bit in _BAND_BIT.items():
            bits[bands.str.split("|").apply(lambda parts, b=band: b in parts).to_numpy()] |= bit
        marks = (col("title", "").fillna("").astype(str) + " " + col("tags", "").fillna("")
                 .astype(str))
        family = np.zeros(n, dtype=bool)
        for marker in FAMILY_MARKERS:
            family |= marks.str.contains(marker, regex=False).to_numpy()
        capacity = pd.to_numeric(col("capacity"), errors="coerce").fillna(0).astype("int64")
        end = pd.to_datetime(col("end_date"), errors="coerce").to_numpy().astype("datetime64[D]")
        records = []
        for item_id, row in zip(items.index, items.to_dict("records")):
            community = _clean(row.get("community_id"))
            records.append({
                "course_id": str(item_id),
                "title": _clean(row.get("title")) or str(item_id),
                "category": _clean(row.get("category")),
                "target_bands": [b for b in str(_clean(row.get("target_bands")) or "").split("|")
                                 if b],
                "fee_tier": _clean(row.get("fee_tier")),
                "venue": {"community_id": community,
                          "community_name": community_names.get(community) if community else None,
                          "street": _clean(row.get("street"))},
                "schedule": {"start_date": _date(row.get("start_date")),
                             "end_date": _date(row.get("end_date")),
                             "weekday": _int(row.get("weekday")),
                             "start_time": _clean(row.get("start_time"))},
            })
        return cls(
            ids=items.index, category=col("category").astype(object).to_numpy(), band_bits=bits,
            family=family, open=(col("status").astype(object) == "open").to_numpy(),
            end_date=end, capacity=capacity.to_numpy(), records=records,
        )

    def positions(self, course_ids: Iterable[str]) -> np.ndarray:
        """Positions of the known ``course_ids`` (unknown ones are left out)."""
        found = [p for p in map(self.position.get, course_ids) if p is not None]
        return np.array(found, dtype=np.int64)



@dataclass
class Snapshot:
    """One loaded model with everything derived from it; never changed except ``enrolled``."""

    engine: Engine
    catalogue: Catalogue
    enrolled: np.ndarray  # net enrolments per course (enroll - cancel), kept current by ingest
    households: dict[str, np.ndarray]  # household_id -> positions in engine.users
    communities: frozenset[str] = frozenset()  # known community ids (profile validation)
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    @property
    def seats_left(self) -> np.ndarray:
        return np.maximum(self.catalogue.capacity - np.maximum(self.enrolled, 0), 0)


def household_index(users: pd.DataFrame) -> dict[str, np.ndarray]:
    """household_id -> row positions of its members in ``users`` (residents without one: none)."""
    if "household_id" not in users:
        return {}
    hh = users["household_id"].reset_index(drop=True)
    hh = hh[hh.notna()]
    return {str(k): hh.index.to_numpy()[v] for k, v in hh.groupby(hh, sort=False).indices.items()}


# ----------------------------------------------------------------------------- business rules


def allowed_mask(snap: Snapshot, today: dt.date, *, band: str | None = None,
                 child_bands: Iterable[str] = (), taken: Iterable[str] = (),
                 category: str | None = None) -> np.ndarray:
    """The courses that may be offered, as a mask aligned with ``engine.items.index``.

    Parameters
    ----------
    snap : Snapshot
        The model and the current enrolment counts.
    today : date
        Courses must end strictly after it.
    band : str, optional
        The resident's age band; ``None`` (nothing known) keeps every band.
    child_bands : iterable of str
        Bands of the children in the resident's household: a family course (亲子/祖孙) aimed at
        one of them also fits an adult (working-age or elderly) resident.
    taken : iterable of str
        Course ids the resident is enrolled in or has completed.
    category : str, optional
        Keep only this category.
    """
    cat = snap.catalogue
    mask = cat.open & (snap.seats_left > 0) & (cat.end_date > np.datetime64(today, "D"))
    if band is not None:
        fit = (cat.band_bits & _BAND_BIT[band]) != 0
        if band in ADULT_BANDS:
            bits = np.uint8(0)
            for child in set(child_bands) & set(CHILD_BANDS):
                bits |= _BAND_BIT[child]
            if bits:
                fit |= cat.family & ((cat.band_bits & bits) != 0)
        mask &= fit
    if category is not None:
        mask &= cat.category == category
    mask[cat.positions(taken)] = False
    return mask


def diversify(snap: Snapshot, ctx: UserContext, allowed: np.ndarray, k: int, *,
              capped: bool, explain: bool) -> list:
    """Top ``k`` of ``allowed`` with at most half (``max(1, k // 2)``) from one category.

    One engine pass ranks the candidate pool and the list is picked from it greedily, skipping
    categories that reached their cap; only the kept courses are explained. A second pass runs
    only when the pool ran out (then over what is still allowed). Without ``capped`` this is
    one plain ranking.
    """
    engine, cat = snap.engine, snap.catalogue
    if not capped:
        return engine.recommend(ctx, n=k, allowed=allowed, explain=explain)
    cap = max(1, k // 2)
    mask = allowed.copy()
    picked: list = []
    per_category: dict[str, int] = {}
    while len(picked) < k and mask.any():
        # One pass ranks the whole candidate pool; only what is kept gets explained.
        pool = engine.rank_pool(ctx, n=min(int(mask.sum()), max(8 * k, 200)), allowed=mask)
        if len(pool.items) == 0:
            break
        keep = []
        # The catalogue is aligned with the engine's items: a pool index is a position.
        for p, pos in enumerate(pool.items.tolist()):
            mask[pos] = False
            category = cat.category[pos]
            if per_category.get(category, 0) >= cap:
                continue
            keep.append(p)
            per_category[category] = per_category.get(category, 0) + 1
            if per_category[category] >= cap:
                mask &= cat.category != category
            if len(picked) + len(keep) >= k:
                break
        picked.extend(pool.take(keep, explain))
    return picked


def household_fit(snap: Snapshot, today: dt.date, band: str | None,
                  children: Collection[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which courses a household member is *for*, as ``(direct, carer)`` catalogue masks.

    ``direct``: the member's band is a target band of the course. ``carer``: the member is an
    adult and the course is a family course aimed at one of the household's ``children`` bands
    that may be offered on ``today`` (see :func:`allowed_mask`); the member comes as the carer.
    """
    cat = snap.catalogue
    direct = np.zeros(len(cat.ids), bool) if band is None else (
        (cat.band_bits & _BAND_BIT[band]) != 0)
    carer = np.zeros_like(direct)
    if band in ADULT_BANDS and children:
        carer = allowed_mask(snap, today, band=band, child_bands=children) & ~direct
    return direct, carer


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


def _date(value: Any) -> str | None:
    value = _clean(value)
    return None if value is None else pd.Timestamp(value).date().isoformat()


def _int(value: Any) -> int | None:
    value = _clean(value)
    return None if value is None else int(value)



__all__ = ["ADULT_BANDS", "CHILD_BANDS", "FAMILY_MARKERS", "Catalogue", "Snapshot", "allowed_mask",
           "diversify", "household_fit", "household_index"]

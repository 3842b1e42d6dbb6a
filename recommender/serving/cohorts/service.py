"""What coordinators ask about cohorts: sizes, course suggestions with demand against seats,
unmet demand, and learning-behaviour analytics.

:class:`CohortService` keeps, per model version, the residents grouped into cohorts and, per
horizon and day, the demand table (:mod:`recommender.serving.cohorts.demand`); both are built
once and then read by every request. Every figure goes through the suppression rule of
:mod:`recommender.serving.cohorts.figures`.

Flags of a suggested course use the demand of the whole district (residents of every cohort
compete for the same seats): ``fill_forecast = (capacity - seats_left + demand) / capacity``,
``oversubscribed`` when the demand exceeds the seats left (a waiting-list candidate),
``under_filled`` when the forecast is below :data:`UNDER_FILLED`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.domain import BAND_NAMES
from recommender.serving.cohorts import analytics, unmet
from recommender.serving.cohorts.demand import (
    ALL,
    CohortIndex,
    DemandTable,
    check_calibrated,
    check_cohort,
    compute_demand,
)
from recommender.serving.cohorts.figures import figure
from recommender.serving.errors import InvalidInput
from recommender.serving.holder import ModelHolder, Snapshot

if TYPE_CHECKING:
    from recommender.data.store import Store

# A course whose forecast fill is below this share of its capacity is flagged under-filled:
# below it a course usually runs at a loss, and a coordinator may promote or merge it.
UNDER_FILLED = 0.3
MAX_HORIZON_DAYS = 365
# Residents scored per fine cohort (community x band) and history stratum: exact below it, a
# scaled sample above; at district scale (400k residents) this bounds the first request after
# a reload to well under a minute.
MAX_SCORED = 300
_CACHED_TABLES = 8  # demand tables kept per model version (horizons x days)


class CohortService:
    """Cohort figures over the holder's current model and the store.

    Parameters
    ----------
    store : Store
        Participations, residents, courses and communities (analytics, streets).
    holder : ModelHolder
        The current model.
    today : callable, optional
        ``today() -> date``; default :meth:`date.today`.
    max_scored : int, optional
        Residents scored per fine cohort and history stratum (default :data:`MAX_SCORED`);
        larger strata are sampled and scaled
        (:func:`~recommender.serving.cohorts.demand.scored_residents`).
    """

    def __init__(self, store: Store | None, holder: ModelHolder,
                 today: Callable[[], dt.date] | None = None,
                 max_scored: int | None = None) -> None:
        self.store = store
        self.holder = holder
        self.today = today or dt.date.today
        self.max_scored = MAX_SCORED if max_scored is None else max_scored
        self._lock = threading.Lock()
        self._version: str | None = None
        self._index: CohortIndex | None = None
        self._tables: dict[tuple[int, dt.date], DemandTable] = {}

    # -- cached state ---------------------------------------------------------------------
    def _index_for(self, snap: Snapshot) -> CohortIndex:
        with self._lock:
            if self._version != snap.engine.version or self._index is None:
                self._index = CohortIndex.build(snap)
                self._tables = {}
                self._version = snap.engine.version
            return self._index

    def demand(self, snap: Snapshot, horizon_days: int) -> DemandTable:
        """The demand table of the current model for ``horizon_days`` from today (cached)."""
        index = self._index_for(snap)
        key = (int(horizon_days), self.today())
        with self._lock:
            table = self._tables.get(key)
            if table is None or self._version != snap.engine.version:
                table = compute_demand(snap, index, key[0], key[1], self.max_scored)
                if len(self._tables) >= _CACHED_TABLES:
                    self._tables.pop(next(iter(self._tables)))
                self._tables[key] = table
            return table

    def cohort_keys(self, snap: Snapshot) -> list[tuple[str, str]]:
        """Every cohort: each community by band and as a whole, each band district-wide."""
        bands = [*BAND_NAMES, ALL]
        return [(c, b) for c in [*sorted(snap.communities), ALL] for b in bands]

    # -- answers --------------------------------------------------------------------------
    def cohorts(self) -> dict:
        """Each cohort with its size and share of residents with any participation."""
        snap = self.holder.snapshot()
        check_calibrated(snap)
        index = self._index_for(snap)
        out = []
        for community_id, band in self.cohort_keys(snap):
            fine = index.select(community_id, band)
            size, active = int(index.sizes[fine].sum()), int(index.active[fine].sum())
            out.append({
                "community_id": community_id, "band": band,
                "community_name": snap.engine.community_names.get(community_id),
                "residents": figure(size, size),
                "active_residents": figure(active, size),
                "share_active": figure(round(active / size, 4) if size else 0.0, size),
            })
        return {"model_version": snap.engine.version, "cohorts": out}

    def suggestions(self, community_id: str, band: str, horizon_days: int = 30,
                    limit: int = 20, decisions: Mapping[str, Any] | None = None) -> dict:
        """Open courses by the cohort's expected demand, with seats and flags, and the unmet
        demand (:func:`recommender.serving.cohorts.unmet.unmet_demand`).

        ``decisions`` maps a course id to a coordinator's decision about it (approve, reject,
        pin); each item carries it as ``decision`` (None when there is none), and a rejected
        course is not suggested.
        """
        if not 1 <= int(horizon_days) <= MAX_HORIZON_DAYS:
            raise InvalidInput("horizon_days", f"{horizon_days} is not in 1..{MAX_HORIZON_DAYS}")
        if int(limit) < 1:
            raise InvalidInput("limit", f"{limit} is below 1")
        snap = self.holder.snapshot()
        check_cohort(snap, community_id, band)
        check_calibrated(snap)
        index = self._index_for(snap)
        table = self.demand(snap, horizon_days)
        members = index.members(community_id, band)
        size = int(members.size)
        head = {"community_id": community_id, "band": band, "horizon_days": int(horizon_days),
                "model_version": snap.engine.version, "as_of": table.today.isoformat(),
                "residents": figure(size, size), "suppressed": size < 10}
        if size < 10:  # even the order of courses would describe these few residents
            return {**head, "items": [], "unmet_demand": []}
        cohort = table.cohort(index.select(community_id, band))
        items = self._items(snap, table, cohort, limit, decisions or {})
        gaps = unmet.unmet_demand(snap, self._streets(), community_id, band, members, cohort,
                                  table.offered)
        return {**head, "items": items, "unmet_demand": gaps}

    def _items(self, snap: Snapshot, table: DemandTable, cohort: np.ndarray, limit: int,
               decisions: Mapping[str, Any]) -> list[dict]:
        cat = snap.catalogue
        district, seats = table.district, snap.seats_left
        rejected = {c for c, d in decisions.items() if d.get("action") == "reject"}
        order = [p for p in np.argsort(-cohort, kind="stable")
                 if table.offered[p] and cat.records[p]["course_id"] not in rejected][:limit]
        out = []
        for rank, pos in enumerate(order, 1):
            capacity = int(cat.capacity[pos])
            total = float(district[pos])
            fill = ((capacity - int(seats[pos]) + total) / capacity) if capacity > 0 else None
            record = cat.records[pos]
            out.append({**record, "rank": rank, "capacity": capacity,
                        "seats_left": int(seats[pos]),
                        "expected_demand": round(float(cohort[pos]), 3),
                        "expected_demand_district": round(total, 3),
                        "fill_forecast": None if fill is None else round(fill, 4),
                        "oversubscribed": bool(total > seats[pos]),
                        "under_filled": bool(fill is not None and fill < UNDER_FILLED),
                        "decision": decisions.get(record["course_id"])})
        return out

    def analytics(self, community_id: str, band: str) -> dict:
        """Learning behaviour of the cohort's residents, read from the store."""
        snap = self.holder.snapshot()
        check_cohort(snap, community_id, band)
        index = self._index_for(snap)
        return {"community_id": community_id, "band": band,
                "model_version": snap.engine.version, "as_of": self.today().isoformat(),
                **analytics.cohort_analytics(self._tables_from_store(), snap, index,
                                             community_id, band, self.today())}

    # -- store reads ----------------------------------------------------------------------
    def _streets(self) -> dict[str, str]:
        """community_id -> street (the venue street "near" compares)."""
        if self.store is None:
            return {}
        frame = self.store.read("communities")
        return {str(c): str(s) for c, s in zip(frame["community_id"], frame["street"])
                if s is not None}

    def _tables_from_store(self) -> dict:
        """Participations, residents and courses. A ``Store.cohort_activity`` method that
        aggregates in SQL should replace these whole-table reads at district scale."""
        if self.store is None:
            raise InvalidInput("store", "analytics need the store")
        return {t: self.store.read(t) for t in ("participations", "residents", "courses")}


__all__ = ["MAX_HORIZON_DAYS", "MAX_SCORED", "UNDER_FILLED", "CohortService"]

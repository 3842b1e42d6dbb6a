"""The model being served: the loaded engine, the catalogue derived from it, swapped atomically.

:class:`ModelHolder` owns the current :class:`Snapshot` and replaces it whole on reload. A
request takes one snapshot at its start and uses it to the end, so a reload never changes a model
under a request in flight; a corrupt or mismatched artifact raises and the old snapshot keeps
serving. :class:`Catalogue` holds the per-course arrays the business rules read.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.data.store import COMMIT_EVENTS
from recommender.domain import BAND_NAMES
from recommender.serving.errors import NotReady

if TYPE_CHECKING:  # the engine is imported lazily so this module loads without a model stack
    from recommender.data.store import Store
    from recommender.serving.engine import Engine

log = logging.getLogger(__name__)

# One bit per band, so "fits any of these bands" is one AND over the catalogue.
BAND_BIT = {band: np.uint8(1 << i) for i, band in enumerate(BAND_NAMES)}
# The district tables have no "family course" column: the catalogue marks 亲子 (parent–child)
# and 祖孙 (grandparent–grandchild) courses in their titles and tags.
FAMILY_MARKERS = ("亲子", "祖孙", "family")


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
    # int: equal categories share a code; -1 for a NaN one, which equals no category
    category_code: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        # A dict answers one id in ~50 ns; pandas' get_loc / get_indexer take microseconds.
        if not self.position:
            self.position = {str(c): k for k, c in enumerate(self.ids)}
        if len(self.category_code) != len(self.category):
            # Comparing codes costs a fraction of comparing the objects (diversify does it
            # whenever a category reaches its cap).
            codes: dict = {}
            self.category_code = np.array(
                [-1 if c is not None and pd.isna(c) else codes.setdefault(c, len(codes))
                 for c in self.category],
                dtype=np.int64)

    @classmethod
    def from_items(cls, items: pd.DataFrame, community_names: Mapping[str, str]) -> Catalogue:
        n = len(items)

        def col(name, default=None):
            return items[name] if name in items else pd.Series([default] * n, index=items.index)

        bands = col("target_bands", "").fillna("").astype(str)
        bits = np.zeros(n, dtype=np.uint8)
        for band, bit in BAND_BIT.items():
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
    """One loaded model with everything derived from it; never changed except ``taken`` (and
    the engine's histories), which :meth:`ModelHolder.fold` keeps current."""

    engine: Engine
    catalogue: Catalogue
    taken: np.ndarray  # seats taken per course (Store.seats_taken), int64
    households: dict[str, np.ndarray]  # household_id -> positions in engine.users
    communities: frozenset[str] = frozenset()  # known community ids (profile validation)
    loaded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    # course position -> the residents holding its seats (Store.seat_holders); ``taken`` is
    # their number, kept so that a fold changes only the residents its events are about
    holders: dict[int, set[str]] = field(default_factory=dict)

    @property
    def seats_left(self) -> np.ndarray:
        return np.maximum(self.catalogue.capacity - self.taken, 0)


def household_index(users: pd.DataFrame) -> dict[str, np.ndarray]:
    """household_id -> row positions of its members in ``users`` (residents without one: none)."""
    if "household_id" not in users:
        return {}
    hh = users["household_id"].reset_index(drop=True)
    hh = hh[hh.notna()]
    return {str(k): hh.index.to_numpy()[v] for k, v in hh.groupby(hh, sort=False).indices.items()}


def _load_engine(artifacts_dir: Path) -> Engine:
    from recommender.serving.engine import Engine

    return Engine.load(artifacts_dir)


class ModelHolder:
    """Holds the current model snapshot and swaps it atomically.

    Parameters
    ----------
    artifacts_dir : Path
        The configured artifacts directory; :meth:`reload` loads ``artifacts_dir/current``.
    store : Store, optional
        Where enrolment counts and community names are read from at each load.
    loader : callable, optional
        ``loader(artifacts_dir) -> Engine``; default :meth:`Engine.load`.
    """

    def __init__(self, artifacts_dir: Path, store: Store | None = None,
                 loader: Callable[[Path], Engine] | None = None) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.store = store
        self.loader = loader or _load_engine
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()
        # Folding events changes the current snapshot's seats and histories; a swap must not
        # interleave, nor two folds.
        self.ingest_lock = threading.Lock()
        self.last_error: str | None = None
        # Ids of events this process stored and folded itself, while a feed will hand them out
        # again (see fold): they must not count twice in a resident's history.
        self.echoes: set[str] | None = None

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    @property
    def version(self) -> str | None:
        """Version of the model being served, or None before the first load."""
        snap = self._snapshot
        return snap.engine.version if snap is not None else None

    @property
    def engine(self) -> Engine:
        return self.snapshot().engine

    def snapshot(self) -> Snapshot:
        """The current snapshot (take it once per request). Raises :class:`NotReady`."""
        snap = self._snapshot
        if snap is None:
            raise NotReady("model", self.last_error or "no model loaded yet")
        return snap

    def reload(self) -> Snapshot:
        """Load ``artifacts_dir/current`` and make it the current model.

        Raises whatever :meth:`Engine.load` raises (``ArtifactError`` for a corrupt or
        mismatched artifact); the previous model then keeps serving.
        """
        with self._reload_lock:
            try:
                engine = self.loader(self.artifacts_dir)
                _smoke_test(engine)
                names = self._community_names()
                catalogue = Catalogue.from_items(engine.items, names)
                households = household_index(engine.users)
                communities = frozenset(names) | _ids_in(engine.users, engine.items)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("model reload refused, keeping the current model: %s", self.last_error)
                raise
            with self.ingest_lock:  # seats read and swapped with no event in between
                taken, holders = self._seats(catalogue)
                self._snapshot = Snapshot(engine, catalogue, taken, households, communities,
                                          holders=holders)
                if self.echoes is not None:  # the new engine has none of them yet
                    self.echoes.clear()
            self.last_error = None
            _settle_heap()
            log.info("model %s loaded (%d courses, %d residents)", engine.version,
                     len(engine.items), len(engine.users))
            return self._snapshot

    def _community_names(self) -> dict[str, str]:
        if self.store is None:
            return {}
        frame = self.store.read("communities")
        return dict(zip(frame["community_id"], frame["name"]))

    def _seats(self, catalogue: Catalogue) -> tuple[np.ndarray, dict[int, set[str]]]:
        """Seats taken per catalogue course and who holds them, from the store
        (:meth:`Store.seat_holders`)."""
        taken = np.zeros(len(catalogue.ids), dtype=np.int64)
        holders: dict[int, set[str]] = {}
        if self.store is None:
            return taken, holders
        for course, resident in self.store.seat_holders():
            pos = catalogue.position.get(course)
            if pos is not None:
                holders.setdefault(pos, set()).add(resident)
        for pos, residents in holders.items():
            taken[pos] = len(residents)
        return taken, holders

    def recount_seats(self) -> None:
        """Count every course's seats again from the store (after a lost event feed)."""
        with self.ingest_lock:
            snap = self._snapshot
            if snap is not None:
                taken, snap.holders = self._seats(snap.catalogue)
                snap.taken[:] = taken

    def fold(self, events: pd.DataFrame, *, own: bool) -> None:
        """Bring the current snapshot up to date with stored participation ``events``.

        Call with :attr:`ingest_lock` held. Whether each resident a commitment event is about
        holds a seat of its course is read again from the store (the rule of the load, through
        the ``resident_id`` index), so events arriving out of order, twice or from another
        worker leave the count a reload gives; the events go into the engine's histories once:
        ``own`` events (stored by this process) at once, and when a feed hands them out again
        (:attr:`echoes`) they are skipped there.
        """
        snap = self._snapshot
        if snap is None or events.empty:
            return
        self._refresh_seats(snap, events)
        if self.echoes is not None:
            ids = events["event_id"].astype(str)
            if own:
                self.echoes.update(ids)
            else:
                echoed = ids.isin(self.echoes).to_numpy()
                self.echoes.difference_update(ids[echoed])
                events = events[~echoed]
        started = time.perf_counter()
        try:
            snap.engine.add_events(events[["resident_id", "course_id", "event", "value",
                                           "occurred_at"]])
        except Exception:  # the events are stored; a failed fold only delays their effect
            log.exception("engine.add_events failed for %d stored events", len(events))
        log.debug("folded %d events in %.1f ms", len(events),
                  1000 * (time.perf_counter() - started))

    def _refresh_seats(self, snap: Snapshot, events: pd.DataFrame) -> None:
        commits = events[events["event"].isin(COMMIT_EVENTS)]
        if self.store is None or commits.empty:
            return
        pairs = set(zip(commits["course_id"].astype(str), commits["resident_id"].astype(str)))
        holding = set(self.store.seat_holders({resident for _, resident in pairs}))
        for course, resident in pairs:
            pos = snap.catalogue.position.get(course)
            if pos is None:
                continue
            residents = snap.holders.setdefault(pos, set())
            if (course, resident) in holding:
                residents.add(resident)
            else:
                residents.discard(resident)
            snap.taken[pos] = len(residents)


def _smoke_test(engine: Engine) -> None:
    """Rank once for a cold and a known resident: an artifact whose files verify but whose
    model does not fit this code (a mismatch) is refused here, not on a platform request."""
    from recommender.serving.engine import UserContext

    engine.recommend(UserContext(user_id=None, age_band=None), n=3, explain=True)
    if len(engine.users):
        ctx = engine.context_for(str(engine.users.index[0]))
        if ctx is not None:
            engine.recommend(ctx, n=3, explain=True)
    if len(engine.items) > 1:
        engine.similar(str(engine.items.index[0]), n=2)


def _ids_in(*frames: pd.DataFrame) -> frozenset[str]:
    found: set[str] = set()
    for frame in frames:
        if "community_id" in frame:
            found.update(str(c) for c in frame["community_id"].dropna().unique())
    return frozenset(found)


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


def _settle_heap() -> None:
    """Keep the loaded model out of the garbage collector's full passes.

    A model is millions of long-lived Python objects (ids, catalogue records, indexes), and
    every full collection walked all of them: 120-170 ms with the 400k district loaded, a
    stall of every request in flight, several times a minute under load (the p99 of the load
    test). Frozen objects are never walked again, so a full pass costs ~4 ms. The previous
    model is unfrozen and collected first, once per reload, so that it can be freed.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


__all__ = ["BAND_BIT", "FAMILY_MARKERS", "Catalogue", "ModelHolder", "Snapshot", "household_index"]

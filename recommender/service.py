"""The business layer between the HTTP API and the :class:`~recommender.engine.Engine`.

The engine ranks; this module decides what may be offered and keeps the model current:

* :class:`ModelHolder` owns the loaded engine and swaps it atomically on reload. A request takes
  one :class:`Snapshot` at its start and uses it to the end, so a reload never changes a model
  under a request in flight; a corrupt artifact raises and the old snapshot keeps serving.
* :func:`allowed_mask` is the one place the business rules live (open, seats left, still
  running, fits the resident's band or their household's children, not already taken).
* :class:`RecommendationService` answers the platform's questions (resident, profile, household,
  similar courses) and ingests participation events: validated like the importer does (through
  :data:`recommender.domain.TABLES`), stored durably, then folded into the engine at once.

Seats: a course's enrolments are its ``enroll`` events minus its ``cancel`` events in the store
(read once per model load with one aggregate query, then kept current by the events this process
ingests). A resident's own commitments (enrolled and not cancelled, attended, or completed) are
read from the store per request, by the indexed ``resident_id``, so the store stays the one source
of truth and several workers agree on them.
"""

from __future__ import annotations

import datetime as dt
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
import sqlalchemy as sa

from recommender.domain import BAND_NAMES, CATEGORIES, TABLES, AgeBands

if TYPE_CHECKING:  # the engine is imported lazily so this module loads without a model stack
    from recommender.engine import Engine, UserContext
    from recommender.store import Store

log = logging.getLogger(__name__)

CHILD_BANDS = ("preschool", "school_age")
ADULT_BANDS = ("working_age", "elderly")
_BAND_BIT = {band: np.uint8(1 << i) for i, band in enumerate(BAND_NAMES)}
# The district tables have no "family course" column: the catalogue marks 亲子 (parent–child)
# and 祖孙 (grandparent–grandchild) courses in their titles and tags.
FAMILY_MARKERS = ("亲子", "祖孙", "family")
# The store keys are VARCHAR(64) (recommender.store); longer ids can never match a stored row.
MAX_ID_LENGTH = 64
# Events that commit a resident to a course (see module docstring for the rule).
_COMMIT_EVENTS = ("enroll", "attend", "complete", "cancel")


class ServiceError(Exception):
    """A request the service cannot answer; ``status`` is the HTTP status the API returns."""

    status = 400
    code = "bad_request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidInput(ServiceError):
    status, code = 422, "invalid_request"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class NotReady(ServiceError):
    status, code = 503, "not_ready"


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
        pos = self.ids.get_indexer(list(course_ids))
        return pos[pos >= 0]


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


def _load_engine(artifacts_dir: Path) -> Engine:
    from recommender.engine import Engine

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
        # Ingestion mutates the current snapshot's enrolment counts; a swap must not interleave.
        self.ingest_lock = threading.Lock()
        self.last_error: str | None = None

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
                households = _household_index(engine.users)
                communities = frozenset(names) | _ids_in(engine.users, engine.items)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("model reload refused, keeping the current model: %s", self.last_error)
                raise
            with self.ingest_lock:  # counts read and swapped with no event in between
                enrolled = self._enrolments(catalogue)
                self._snapshot = Snapshot(engine, catalogue, enrolled, households, communities)
            self.last_error = None
            log.info("model %s loaded (%d courses, %d residents)", engine.version,
                     len(engine.items), len(engine.users))
            return self._snapshot

    def _community_names(self) -> dict[str, str]:
        if self.store is None:
            return {}
        frame = self.store.read("communities")
        return dict(zip(frame["community_id"], frame["name"]))

    def _enrolments(self, catalogue: Catalogue) -> np.ndarray:
        enrolled = np.zeros(len(catalogue.ids), dtype=np.int64)
        if self.store is None:
            return enrolled
        t = self.store.tables["participations"]
        stmt = (sa.select(t.c.course_id, t.c.event, sa.func.count())
                .where(t.c.event.in_(("enroll", "cancel"))).group_by(t.c.course_id, t.c.event))
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if rows:
            frame = pd.DataFrame(rows, columns=["course_id", "event", "n"])
            net = frame["n"].where(frame["event"] == "enroll", -frame["n"])
            per_course = net.groupby(frame["course_id"]).sum()
            pos = catalogue.ids.get_indexer(per_course.index)
            enrolled[pos[pos >= 0]] = per_course.to_numpy()[pos >= 0]
        return enrolled


def _smoke_test(engine: Engine) -> None:
    """Rank once for a cold and a known resident: an artifact whose files verify but whose
    model does not fit this code (a mismatch) is refused here, not on a platform request."""
    from recommender.engine import UserContext

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


def _household_index(users: pd.DataFrame) -> dict[str, np.ndarray]:
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

    The first pass ranks (and explains) ``k`` courses: usually the cap does not bind and that is
    the answer, in one engine call. Otherwise the categories that reached their cap leave the
    mask and further passes rank (unexplained) only what can still be added; the courses added
    then are explained in one last call. Without ``capped`` this is one plain ranking.
    """
    engine, cat = snap.engine, snap.catalogue
    if not capped:
        return engine.recommend(ctx, n=k, allowed=allowed, explain=explain)
    cap = max(1, k // 2)
    mask = allowed.copy()
    picked: list = []
    per_category: dict[str, int] = {}
    first = True
    while len(picked) < k and mask.any():
        need = k - len(picked)
        n = min(int(mask.sum()), k if first else 2 * need + 8)
        recs = engine.recommend(ctx, n=n, allowed=mask, explain=explain and first)
        first = False
        if not recs:
            break
        for rec in recs:
            pos = cat.ids.get_loc(rec.item_id)
            mask[pos] = False
            category = cat.category[pos]
            if per_category.get(category, 0) >= cap or len(picked) >= k:
                continue
            picked.append(rec)
            per_category[category] = per_category.get(category, 0) + 1
            if per_category[category] >= cap:
                mask &= cat.category != category
    late = [r for r in picked if not r.reasons] if explain else []
    if late:
        final = np.zeros(len(cat.ids), dtype=bool)
        final[cat.positions(r.item_id for r in late)] = True
        reasons = {r.item_id: r.reasons
                   for r in engine.recommend(ctx, n=len(late), allowed=final, explain=True)}
        for rec in late:
            rec.reasons = reasons.get(rec.item_id, [])
    return picked


# ----------------------------------------------------------------------------- event validation


def _check_value(col, value: Any, tz: str) -> tuple[Any, str | None]:
    """One event field checked against its domain column: (clean value, reason or None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, ("is required" if col.required else None)
    if col.kind in ("id", "enum", "text"):
        if not isinstance(value, str):
            return None, "must be a string"
        if any(ord(ch) < 32 for ch in value):
            return None, "contains control characters"
        if col.kind == "id" and (len(value) > MAX_ID_LENGTH or value != value.strip()):
            return None, f"must be at most {MAX_ID_LENGTH} characters without surrounding spaces"
        if col.kind == "enum" and value not in col.choices:
            return None, f"{value!r} is not one of {', '.join(col.choices)}"
        return value, None
    if col.kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            return None, "must be a finite number"
        if (col.min is not None and value < col.min) or (col.max is not None and value > col.max):
            return None, f"{value} is outside {col.min:g}..{col.max:g}"
        return float(value), None
    if col.kind in ("datetime", "date"):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            return None, f"{value!r} is not an ISO date-time"
        if pd.isna(ts):
            return None, "is required"
        if ts.tzinfo is not None:  # stored naive in district time, like the imported data
            ts = ts.tz_convert(tz).tz_localize(None)
        return ts, None
    return value, None  # pragma: no cover - no other kinds in participations


def validate_event(raw: Mapping[str, Any], now: dt.datetime,
                   tz: str = "Asia/Shanghai") -> tuple[dict | None, str | None, str | None]:
    """Check one event like the importer does: ``(row, None, None)`` or ``(None, field, reason)``.

    Rules come from ``TABLES["participations"]`` (required columns, event vocabulary, the 1–5
    range of ``value``), plus: a ``rate`` event needs its rating, and an event may not lie more
    than a day in the future.
    """
    row: dict[str, Any] = {}
    for col in TABLES["participations"].columns:
        value, reason = _check_value(col, raw.get(col.name), tz)
        if reason:
            return None, col.name, reason
        row[col.name] = value
    if row["event"] == "rate" and row["value"] is None:
        return None, "value", "a rate event needs a rating 1..5"
    if row["occurred_at"] > pd.Timestamp(now) + pd.Timedelta(days=1):
        return None, "occurred_at", "lies in the future"
    return row, None, None


@dataclass
class IngestReport:
    """What one batch did: counts and, per rejected event, its index, field and reason."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[dict] = field(default_factory=list)

    def reject(self, index: int, event_id: Any, field_name: str, reason: str) -> None:
        self.rejected += 1
        self.rejections.append({"index": index, "event_id": event_id if isinstance(
            event_id, str) else None, "field": field_name, "reason": reason})


# ----------------------------------------------------------------------------- the service


class RecommendationService:
    """What the platform asks for, on top of a :class:`ModelHolder` and the store.

    Parameters
    ----------
    store : Store
        Durable events, residents and courses.
    holder : ModelHolder
        The current model.
    today : callable, optional
        ``today() -> date`` (tests and demos pin it); default :meth:`date.today`.
    timezone : str
        District time zone: time-zone-aware event times are converted to it and stored naive,
        like the imported data.
    bands : AgeBands, optional
        Age-band edges for residents the model has not seen.
    """

    def __init__(self, store: Store, holder: ModelHolder,
                 today: Callable[[], dt.date] | None = None, timezone: str = "Asia/Shanghai",
                 bands: AgeBands | None = None) -> None:
        self.store = store
        self.holder = holder
        self.today = today or dt.date.today
        self.timezone = timezone
        self.bands = bands or AgeBands()

    # -- lookups -----------------------------------------------------------------------
    def taken(self, resident_id: str) -> set[str]:
        """Courses the resident is enrolled in (not cancelled), has attended or completed."""
        t = self.store.tables["participations"]
        stmt = (sa.select(t.c.course_id, t.c.event)
                .where(t.c.resident_id == resident_id, t.c.event.in_(_COMMIT_EVENTS))
                .order_by(t.c.occurred_at, t.c.event_id))
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        state: dict[str, str] = {}
        for course, event in rows:
            if state.get(course) != "complete":
                state[course] = event
        return {course for course, event in state.items() if event != "cancel"}

    def _stored_resident(self, resident_id: str) -> dict | None:
        t = self.store.tables["residents"]
        with self.store.engine.connect() as conn:
            stmt = sa.select(t).where(t.c.resident_id == resident_id)
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row else None

    def _context(self, snap: Snapshot, resident_id: str) -> UserContext:
        """The engine's context for a resident, or a cold-start one built from the store."""
        from recommender.engine import UserContext

        ctx = snap.engine.context_for(resident_id)
        if ctx is not None:
            return ctx
        row = self._stored_resident(resident_id)
        band = None
        if row and row.get("birth_year") is not None and row["birth_year"] <= self.today().year:
            band = self.bands.band(row["birth_year"], self.today())
        return UserContext(user_id=resident_id, age_band=band,
                           community_id=row.get("community_id") if row else None,
                           household_id=row.get("household_id") if row else None, known=False)

    def _members(self, snap: Snapshot, household_id: str | None) -> list[tuple[str, str | None]]:
        if not household_id or household_id not in snap.households:
            return []
        users = snap.engine.users
        pos = snap.households[household_id]
        bands = users["age_band"].to_numpy()[pos] if "age_band" in users else [None] * len(pos)
        ids = users.index[pos]
        return [(str(u), b if isinstance(b, str) else None) for u, b in zip(ids, bands)]

    def _items(self, snap: Snapshot, recs: list, explain: bool) -> list[dict]:
        cat, seats = snap.catalogue, snap.seats_left
        out = []
        for rank, rec in enumerate(recs, 1):
            pos = cat.ids.get_loc(rec.item_id)
            out.append({**cat.records[pos], "rank": rank, "score": float(rec.score),
                        "seats_left": int(seats[pos]), "cold_start": bool(rec.cold_start),
                        "reasons": list(rec.reasons) if explain else []})
        return out

    # -- recommendations ---------------------------------------------------------------
    def for_resident(self, resident_id: str, k: int = 10, category: str | None = None,
                     explain: bool = True) -> dict:
        """Top ``k`` for a resident; one the model never saw gets a cold-start list."""
        snap = self.holder.snapshot()
        ctx = self._context(snap, resident_id)
        children = [b for r, b in self._members(snap, ctx.household_id) if r != resident_id]
        mask = allowed_mask(snap, self.today(), band=ctx.age_band, child_bands=children,
                            taken=self.taken(resident_id), category=category)
        recs = diversify(snap, ctx, mask, k, capped=category is None, explain=explain)
        return {"resident_id": resident_id, "known": bool(ctx.known),
                "cold_start": not ctx.known, "age_band": ctx.age_band,
                "model_version": snap.engine.version, "k": k, "category": category,
                "items": self._items(snap, recs, explain)}

    def for_profile(self, *, birth_year: int | None = None, age_band: str | None = None,
                    community_id: str | None = None, interests: Iterable[str] = (),
                    k: int = 10, category: str | None = None, explain: bool = True) -> dict:
        """Top ``k`` for an unregistered resident described by a profile (always cold start)."""
        from recommender.engine import UserContext

        snap = self.holder.snapshot()
        today = self.today()
        band = age_band
        if birth_year is not None:
            if birth_year > today.year:
                raise InvalidInput("birth_year", f"{birth_year} is after the current year")
            band = self.bands.band(birth_year, today)
            if age_band is not None and age_band != band:
                raise InvalidInput("age_band", f"{age_band!r} does not match birth_year "
                                   f"{birth_year} ({band})")
        if community_id is not None and community_id not in snap.communities:
            raise InvalidInput("community_id", f"unknown community {community_id!r}")
        ctx = UserContext(user_id=None, age_band=band, community_id=community_id,
                          interests=tuple(dict.fromkeys(interests)), known=False)
        mask = allowed_mask(snap, today, band=band, category=category)
        recs = diversify(snap, ctx, mask, k, capped=category is None, explain=explain)
        return {"cold_start": True, "age_band": band, "model_version": snap.engine.version,
                "k": k, "category": category, "items": self._items(snap, recs, explain)}

    def for_household(self, household_id: str, k: int = 10) -> dict:
        """Courses at least two members can attend together, with whom each is for.

        A member is *for* a course when their band is a target band, or, for an adult, when the
        course is a family course aimed at a child of the household (they come as the carer).
        Courses are ordered by reciprocal-rank fusion of the members' own rankings.
        """
        snap = self.holder.snapshot()
        members = self._members(snap, household_id)
        if not members:
            raise NotFound("household_id", f"unknown household {household_id!r}")
        cat = snap.catalogue
        base = allowed_mask(snap, self.today())
        children = {b for _, b in members if b in CHILD_BANDS}
        fits, roles = [], []
        for resident_id, band in members:
            direct = np.zeros(len(cat.ids), bool) if band is None else (
                (cat.band_bits & _BAND_BIT[band]) != 0)
            carer = np.zeros_like(direct)
            if band in ADULT_BANDS and children:
                carer = allowed_mask(snap, self.today(), band=band, child_bands=children) & ~direct
            fit = direct | carer
            fit[cat.positions(self.taken(resident_id))] = False
            fits.append(fit)
            roles.append(np.where(direct, "participant", "carer"))
        count = np.sum(fits, axis=0)
        together = base & (count >= 2) & (snap.seats_left >= count)
        fused = np.zeros(len(cat.ids))
        for (resident_id, _), fit in zip(members, fits):
            mask = together & fit
            if not mask.any():
                continue
            ctx = self._context(snap, resident_id)
            recs = snap.engine.recommend(ctx, n=int(mask.sum()), allowed=mask, explain=False)
            for rank, rec in enumerate(recs):
                fused[cat.ids.get_loc(rec.item_id)] += 1.0 / (10 + rank)
        order = [p for p in np.argsort(-fused, kind="stable") if together[p]][:k]
        items = []
        for rank, pos in enumerate(order, 1):
            who = [{"resident_id": r, "age_band": b, "role": str(role[pos])}
                   for (r, b), fit, role in zip(members, fits, roles) if fit[pos]]
            reasons = [f"for {len(who)} members of the household ("
                       + ", ".join(sorted({w['age_band'] for w in who if w['age_band']})) + ")"]
            if any(w["role"] == "carer" for w in who):
                reasons.append("a family course: the adult attends with the child")
            items.append({**cat.records[pos], "rank": rank, "score": float(fused[pos]),
                          "seats_left": int(snap.seats_left[pos]), "for_members": who,
                          "reasons": reasons})
        return {"household_id": household_id, "model_version": snap.engine.version,
                "members": [{"resident_id": r, "age_band": b} for r, b in members],
                "items": items}

    def similar(self, course_id: str, k: int = 10, available_only: bool = True) -> dict:
        """Courses like ``course_id``; with ``available_only``, only ones open to enrol in."""
        snap = self.holder.snapshot()
        cat = snap.catalogue
        if course_id not in cat.ids:
            raise NotFound("course_id", f"unknown course {course_id!r}")
        keep = allowed_mask(snap, self.today()) if available_only else np.ones(len(cat.ids), bool)
        n, total = min(len(cat.ids) - 1, 4 * k), len(cat.ids) - 1
        while True:
            pairs = [(i, s) for i, s in snap.engine.similar(course_id, n=n)
                     if keep[cat.ids.get_loc(i)]]
            if len(pairs) >= k or n >= total:
                break
            n = min(total, 4 * n)
        items = []
        for rank, (item_id, score) in enumerate(pairs[:k], 1):
            pos = cat.ids.get_loc(item_id)
            items.append({**cat.records[pos], "rank": rank, "score": float(score),
                          "seats_left": int(snap.seats_left[pos]), "reasons": [],
                          "cold_start": False})
        return {"course_id": course_id, "model_version": snap.engine.version, "items": items}

    def model_info(self) -> dict:
        snap = self.holder.snapshot()
        manifest = snap.engine.manifest or {}
        return {"version": snap.engine.version, "trained_at": manifest.get("created"),
                "loaded_at": snap.loaded_at, "courses": len(snap.engine.items),
                "residents": len(snap.engine.users),
                "metrics": manifest.get("validation_metrics") or manifest.get("metrics") or {}}

    # -- events ------------------------------------------------------------------------
    def ingest(self, events: list[Mapping[str, Any]]) -> IngestReport:
        """Validate, store durably, then fold a batch of participation events into the model.

        Returns only after the accepted events are committed to the store. An event whose id is
        already stored (or repeated in the batch) counts as a duplicate and changes nothing.
        """
        report = IngestReport(received=len(events))
        now = dt.datetime.now()
        rows: list[tuple[int, dict]] = []
        batch_ids: set[str] = set()
        for i, raw in enumerate(events):
            row, field_name, reason = validate_event(raw, now, self.timezone)
            if row is None:
                report.reject(i, raw.get("event_id"), field_name, reason)
            elif row["event_id"] in batch_ids:
                report.duplicates += 1
            else:
                batch_ids.add(row["event_id"])
                rows.append((i, row))
        if rows:
            residents = self.store.existing_keys("residents", (r["resident_id"] for _, r in rows))
            courses = self.store.existing_keys("courses", (r["course_id"] for _, r in rows))
            valid = []
            for i, row in rows:
                if row["resident_id"] not in residents:
                    report.reject(i, row["event_id"], "resident_id", "unknown resident")
                elif row["course_id"] not in courses:
                    report.reject(i, row["event_id"], "course_id", "unknown course")
                else:
                    valid.append(row)
            if valid:
                self._store_and_fold(valid, report)
        report.rejections.sort(key=lambda r: r["index"])
        return report

    def _store_and_fold(self, rows: list[dict], report: IngestReport) -> None:
        with self.holder.ingest_lock:  # check-then-insert and the in-memory fold stay in step
            stored = self.store.existing_keys("participations", (r["event_id"] for r in rows))
            new = pd.DataFrame([r for r in rows if r["event_id"] not in stored])
            report.duplicates += len(rows) - len(new)
            if new.empty:
                return
            result = self.store.insert("participations", new)  # durable when it returns
            report.accepted += result.inserted
            report.duplicates += result.duplicates  # another process stored them meanwhile
            snap = self.holder._snapshot
            if snap is None:
                return
            delta = new["event"].map({"enroll": 1, "cancel": -1}).fillna(0).astype(int)
            pos = snap.catalogue.ids.get_indexer(new["course_id"])
            np.add.at(snap.enrolled, pos[pos >= 0], delta.to_numpy()[pos >= 0])
            started = time.perf_counter()
            try:
                snap.engine.add_events(new[["resident_id", "course_id", "event", "value",
                                            "occurred_at"]])
            except Exception:  # the events are stored; a failed fold only delays their effect
                log.exception("engine.add_events failed for %d stored events", len(new))
            log.debug("folded %d events in %.1f ms", len(new),
                      1000 * (time.perf_counter() - started))


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


__all__ = ["CATEGORIES", "Catalogue", "IngestReport", "InvalidInput", "ModelHolder", "NotFound",
           "NotReady", "RecommendationService", "ServiceError", "Snapshot", "allowed_mask",
           "diversify", "validate_event"]

"""The business layer between the HTTP API and the :class:`~recommender.serving.engine.Engine`.

The engine ranks; this module decides what may be offered and keeps the model current:

* :class:`~recommender.serving.holder.ModelHolder` owns the loaded engine and swaps it
  atomically on reload. A request takes one :class:`~recommender.serving.holder.Snapshot` at its
  start and uses it to the end, so a reload never changes a model under a request in flight; a
  corrupt artifact raises and the old snapshot keeps serving.
* :func:`recommender.serving.rules.allowed_mask` is the one place the business rules live (open,
  seats left, still running, fits the resident's band or their household's children, not
  already taken); :mod:`recommender.serving.rules` also holds the diversification and household
  rules.
* :class:`RecommendationService` answers the platform's questions (resident, profile, household,
  similar courses) and ingests participation events (:mod:`recommender.serving.intake`:
  validated like the importer does, through :data:`recommender.domain.TABLES`, stored durably,
  then folded into the engine at once).

Seats: a course's taken seats are the residents whose latest commitment to it is an enrolment
or an attendance (:meth:`Store.seats_taken <recommender.data.store.Store.seats_taken>`, counted
once per model load, then kept current for the residents new events are about, whichever worker
stored them: :mod:`recommender.serving.follow`). A resident's own commitments
(enrolled and not cancelled, attended, or completed) are read from the store per request
(:meth:`Store.resident_reads <recommender.data.store.Store.resident_reads>`, with their declared
profile and stored row, in one statement by the indexed ``resident_id``), so the store stays the
one source of truth and several workers agree on them: an enrolment stored by any worker is left
out of the resident's next list. This module runs no SQL of its own.

Coordinators' decisions (:mod:`recommender.serving.decisions`) steer the lists at once, without
retraining: a course rejected for a resident's cohort (community x band) is left out, and a
pinned one goes first when the rules allow it anyway (:meth:`RecommendationService._ranked`).

While an A/B test runs (:mod:`recommender.serving.experiments`), a resident's or household's
list comes from their variant's model; every served list is logged as an impression, written
behind the request (:mod:`recommender.serving.impressions`), and named by its ``request_id``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.domain import BAND_NAMES, CATEGORIES, DISTRICT_TIMEZONE, AgeBands
from recommender.serving.batching import ListBatcher
from recommender.serving.decisions import NO_EFFECTS, PIN_REASON, DecisionBook, Effects
from recommender.serving.errors import InvalidInput, NotFound, NotReady, ServiceError
from recommender.serving.experiments import ExperimentBook
from recommender.serving.holder import Catalogue, ModelHolder, Snapshot
from recommender.serving.impressions import ImpressionLog
from recommender.serving.intake import (
    Clock,
    IngestReport,
    district_now,
    ingest,
    register_resident,
    validate_event,
)
from recommender.serving.rules import (
    CHILD_BANDS,
    allowed_mask,
    diversify,
    diversify_many,
    household_fit,
)
from recommender.serving.wording import DEFAULT_LANGUAGE, Reason, requested_language, worded

if TYPE_CHECKING:  # the engine is imported lazily so this module loads without a model stack
    from recommender.data.store import Store
    from recommender.serving.engine import UserContext

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ResidentFacts:
    """What the store says about one resident, read before ranking.

    The API reads these in the thread pool and ranks on the event loop, so a slow store never
    holds up the loop and ranking (pure CPU) never competes with itself for the GIL.
    """

    taken: frozenset[str]  # enrolled (not cancelled), attended or completed courses
    stored: dict | None = None  # their ``residents`` row, when it was read
    read_row: bool = False  # whether the row was read (only for residents the model lacks)
    interests: tuple[str, ...] = ()  # what their stored profile declares


@dataclass(frozen=True)
class ListRequest:
    """One resident's list, as :meth:`RecommendationService.for_resident` takes it."""

    resident_id: str
    k: int = 10
    category: str | None = None
    explain: bool = True
    facts: ResidentFacts | None = None
    lang: str = DEFAULT_LANGUAGE


@dataclass
class _ListPlan:
    """A list between its rules and its ranking."""

    request: ListRequest
    snap: Snapshot
    arm: Any
    ctx: UserContext
    mask: np.ndarray
    effects: Effects
    recs: list | None = None


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
        ``today() -> date`` (tests and demos pin it); default the district's date by ``clock``.
    timezone : str
        District time zone: time-zone-aware event times are converted to it and stored naive,
        like the imported data.
    bands : AgeBands, optional
        Age-band edges for residents the model has not seen.
    decisions_ttl : float
        Seconds the active coordinators' decisions are reused before the store is read again.
    clock : callable, optional
        The current instant, time-zone aware (:func:`recommender.data.timestamps.district_now`);
        default the machine's clock. Every "now" and "today" is this instant in ``timezone``.
    """

    def __init__(self, store: Store, holder: ModelHolder,
                 today: Callable[[], dt.date] | None = None, timezone: str = DISTRICT_TIMEZONE,
                 bands: AgeBands | None = None, decisions_ttl: float = 0.5,
                 clock: Clock | None = None) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self.today = today or (lambda: district_now(timezone, clock).date())
        self.timezone = timezone
        self.bands = bands or AgeBands()
        self.decisions = DecisionBook(store, ttl=decisions_ttl)
        self.experiments = ExperimentBook(store, holder, ttl=decisions_ttl)
        self.impressions = ImpressionLog(store, timezone)
        # Lists asked while others rank are ranked together (see ``for_residents``).
        self.lists = ListBatcher(self.for_residents)

    def close(self) -> None:
        """Write the impressions still queued (the app's shutdown)."""
        self.impressions.close()

    # -- lookups -----------------------------------------------------------------------
    def taken(self, resident_id: str) -> set[str]:
        """Courses the resident is enrolled in (not cancelled), has attended or completed.

        Their latest commitment to a course decides, except that a completion stays taken.
        """
        return _taken(self.store.commitments(resident_id))

    def resident_facts(self, resident_id: str) -> ResidentFacts:
        """The store reads :meth:`for_resident` needs (it makes them itself when not given),
        in one round trip (:meth:`Store.resident_reads
        <recommender.data.store.Store.resident_reads>`)."""
        unknown = self.holder.snapshot().engine.context_for(resident_id) is None
        reads = self.store.resident_reads(resident_id)
        return ResidentFacts(frozenset(_taken(reads.commitments)),
                             reads.resident if unknown else None, unknown,
                             reads.profile["interests"] if reads.profile else ())

    def declared_interests(self, resident_id: str) -> tuple[str, ...]:
        """The interests the resident's stored profile declares (none without a profile)."""
        profile = self.store.profile(resident_id)
        return profile["interests"] if profile else ()

    def _context(self, snap: Snapshot, resident_id: str, facts: ResidentFacts | None = None,
                 declared: bool = True) -> UserContext:
        """The engine's context for a resident, or a cold-start one built from the store; with
        ``declared``, either carries the interests their profile declares (a trained resident
        keeps their history too)."""
        from recommender.serving.engine import UserContext

        interests: tuple[str, ...] = ()
        if declared:
            interests = (facts.interests if facts is not None
                         else self.declared_interests(resident_id))
        ctx = snap.engine.context_for(resident_id)
        if ctx is not None:
            return dataclasses.replace(ctx, interests=interests) if interests else ctx
        row = facts.stored if facts is not None and facts.read_row else (
            self.store.resident(resident_id))
        band = None
        if row and row.get("birth_year") is not None and row["birth_year"] <= self.today().year:
            band = self.bands.band(row["birth_year"], self.today())
        # Every text column of the row; the engine keeps the profile attributes it was
        # trained with (gender, ...).
        attributes = tuple((k, v) for k, v in (row or {}).items() if isinstance(v, str))
        return UserContext(user_id=resident_id, age_band=band,
                           community_id=row.get("community_id") if row else None,
                           household_id=row.get("household_id") if row else None, known=False,
                           interests=interests, attributes=attributes)

    def _members(self, snap: Snapshot, household_id: str | None) -> list[tuple[str, str | None]]:
        if not household_id or household_id not in snap.households:
            return []
        engine = snap.engine
        pos = snap.households[household_id]  # positions in engine.users, i.e. user indices
        bands = engine.user_column("age_band", pos)
        return [(str(u), b) for u, b in zip(engine.mapping.user_ids_[pos].tolist(), bands)]

    def _items(self, snap: Snapshot, recs: list, explain: bool, lang: str) -> list[dict]:
        cat, seats = snap.catalogue, snap.seats_left
        out = []
        for rank, rec in enumerate(recs, 1):
            pos = cat.position[rec.item_id]
            out.append({**cat.records[pos], "rank": rank, "score": float(rec.score),
                        "seats_left": int(seats[pos]), "cold_start": bool(rec.cold_start),
                        "reasons": worded(rec.reasons, lang) if explain else []})
        return out

    def _ranked(self, snap: Snapshot, ctx: UserContext, mask: np.ndarray, k: int,
                effects: Effects, *, capped: bool, explain: bool) -> list:
        """Top ``k`` of ``mask`` after the cohort's decisions: rejected courses left out, pinned
        ones first (in the engine's order, with :data:`PIN_REASON`) when ``mask`` allows them,
        then the diversified rest."""
        if not effects:
            return diversify(snap, ctx, mask, k, capped=capped, explain=explain)
        cat = snap.catalogue
        mask = mask.copy()
        mask[cat.positions(effects.rejected)] = False
        pins = np.zeros_like(mask)
        pins[cat.positions(effects.pinned)] = True
        pins &= mask  # a pin reorders what is allowed; it never adds a course
        head: list = []
        if pins.any():
            n = min(k, int(pins.sum()))
            head = snap.engine.recommend(ctx, n=n, allowed=pins, explain=explain,
                                         eligible=mask)
            for rec in head:
                rec.reasons = [PIN_REASON, *rec.reasons]
            mask &= ~pins
        rest = k - len(head)
        if rest <= 0 or not mask.any():
            return head
        return head + diversify(snap, ctx, mask, rest, capped=capped, explain=explain)

    # -- recommendations ---------------------------------------------------------------
    def for_resident(self, resident_id: str, k: int = 10, category: str | None = None,
                     explain: bool = True, facts: ResidentFacts | None = None,
                     lang: str = DEFAULT_LANGUAGE) -> dict:
        """Top ``k`` for a resident; one the model never saw gets a cold-start list.

        ``facts`` are the store reads of :meth:`resident_facts`, when the caller made them;
        ``lang`` is the language of the reasons' texts (``zh`` or ``en``).
        """
        answer = self.for_residents([ListRequest(resident_id, k, category, explain, facts,
                                                 lang)])[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def for_residents(self, requests: list[ListRequest]) -> list[dict | Exception]:
        """:meth:`for_resident` for several residents, their rankings run together, each list
        what it would be alone; a request that fails gets its exception in its place.

        Lists that the cohort's decisions steer (pins, rejections) are ranked one by one.
        """
        out: list[dict | Exception | None] = [None] * len(requests)
        plans: dict[int, _ListPlan] = {}
        batches: dict[tuple, list[int]] = {}
        for j, request in enumerate(requests):
            try:
                plans[j] = plan = self._plan(request)
                if plan.effects:
                    plan.recs = self._ranked(plan.snap, plan.ctx, plan.mask, request.k,
                                             plan.effects, capped=request.category is None,
                                             explain=request.explain)
                else:
                    key = (id(plan.snap), request.category is None, request.explain)
                    batches.setdefault(key, []).append(j)
            except Exception as exc:  # noqa: BLE001 - it is this request's answer
                out[j] = exc
        for (_, capped, explain), members in batches.items():
            try:
                lists = diversify_many(plans[members[0]].snap,
                                       [(plans[j].ctx, plans[j].mask, plans[j].request.k)
                                        for j in members], capped=capped, explain=explain)
            except Exception as exc:  # noqa: BLE001 - one by one, so a failure is only its own
                if len(members) == 1:
                    out[members[0]] = exc
                    continue
                lists = [None] * len(members)
            for j, recs in zip(members, lists):
                try:
                    plans[j].recs = recs if recs is not None else diversify(
                        plans[j].snap, plans[j].ctx, plans[j].mask, plans[j].request.k,
                        capped=capped, explain=explain)
                except Exception as exc:  # noqa: BLE001
                    out[j] = exc
        for j, plan in plans.items():
            if out[j] is None:
                out[j] = self._answer(plan)
        return out

    def _plan(self, request: ListRequest) -> _ListPlan:
        """The resident's snapshot, context, allowed courses and their cohort's decisions."""
        requested_language(request.lang)
        arm = self.experiments.arm(request.resident_id)
        snap = arm.snapshot
        facts = (request.facts if request.facts is not None
                 else self.resident_facts(request.resident_id))
        ctx = self._context(snap, request.resident_id, facts)
        children = [b for r, b in self._members(snap, ctx.household_id)
                    if r != request.resident_id]
        mask = allowed_mask(snap, self.today(), band=ctx.age_band, child_bands=children,
                            taken=facts.taken, category=request.category)
        effects = self.decisions.effects(ctx.community_id, ctx.age_band)
        return _ListPlan(request, snap, arm, ctx, mask, effects)

    def _answer(self, plan: _ListPlan) -> dict:
        """The list's answer, logged as an impression."""
        request, snap, ctx = plan.request, plan.snap, plan.ctx
        items = self._items(snap, plan.recs, request.explain, request.lang)
        request_id = self.impressions.record("resident", items, snap.engine.version, plan.arm,
                                             resident_id=request.resident_id,
                                             band=ctx.age_band)
        return {"resident_id": request.resident_id, "known": bool(ctx.known),
                "cold_start": not ctx.known, "age_band": ctx.age_band,
                "model_version": snap.engine.version, "k": request.k,
                "category": request.category, "items": items, "request_id": request_id}

    def for_profile(self, *, birth_year: int | None = None, age_band: str | None = None,
                    community_id: str | None = None, interests: Iterable[str] = (),
                    k: int = 10, category: str | None = None, explain: bool = True,
                    lang: str = DEFAULT_LANGUAGE) -> dict:
        """Top ``k`` for an unregistered resident described by a profile (always cold start)."""
        from recommender.serving.engine import UserContext

        requested_language(lang)
        arm = self.experiments.arm(None)
        snap = arm.snapshot
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
        # Decisions are about a community's residents: a profile without one has none.
        effects = (self.decisions.effects(community_id, band) if community_id is not None
                   else NO_EFFECTS)
        recs = self._ranked(snap, ctx, mask, k, effects, capped=category is None,
                            explain=explain)
        items = self._items(snap, recs, explain, lang)
        request_id = self.impressions.record("profile", items, snap.engine.version, arm,
                                             band=band)
        return {"cold_start": True, "age_band": band, "model_version": snap.engine.version,
                "k": k, "category": category, "items": items, "request_id": request_id}

    def household_taken(self, household_id: str) -> dict[str, frozenset[str]]:
        """Each member's taken courses (:meth:`taken`): the store reads of a household list."""
        members = self._members(self.holder.snapshot(), household_id)
        return {resident_id: frozenset(self.taken(resident_id)) for resident_id, _ in members}

    def for_household(self, household_id: str, k: int = 10,
                      taken: Mapping[str, Iterable[str]] | None = None,
                      lang: str = DEFAULT_LANGUAGE) -> dict:
        """Courses at least two members can attend together, with whom each is for.

        A member is *for* a course when their band is a target band, or, for an adult, when the
        course is a family course aimed at a child of the household (they come as the carer).
        Courses are ordered by reciprocal-rank fusion of the members' own rankings. ``taken``
        is :meth:`household_taken`, when the caller read it (a member it lacks is read here);
        ``lang`` is the language of the reasons' texts.
        """
        requested_language(lang)
        arm = self.experiments.arm(household_id)
        snap = arm.snapshot
        members = self._members(snap, household_id)
        if not members:
            raise NotFound("household_id", f"unknown household {household_id!r}")
        effects = self._member_effects(snap, household_id, members)
        fits, roles = self._member_fits(snap, members, taken or {},
                                        [e.rejected for e in effects])
        count = np.sum(fits, axis=0)
        # Enough seats left for every member the course is for.
        together = allowed_mask(snap, self.today()) & (count >= 2) & (snap.seats_left >= count)
        fused = self._fused_ranking(snap, members, fits, together)
        # A course pinned for a member's cohort goes first, when the household may take it.
        pinned = np.zeros(len(snap.catalogue.ids), bool)
        pinned[snap.catalogue.positions({c for e in effects for c in e.pinned})] = True
        ranked = np.lexsort((-fused, ~pinned))
        order = [p for p in ranked if together[p]][:k]
        items = [_household_course(snap, pos, rank, float(fused[pos]), members, fits, roles,
                                   pinned=bool(pinned[pos]), lang=lang)
                 for rank, pos in enumerate(order, 1)]
        request_id = self.impressions.record("household", items, snap.engine.version, arm,
                                             household_id=household_id)
        return {"household_id": household_id, "model_version": snap.engine.version,
                "members": [{"resident_id": r, "age_band": b} for r, b in members],
                "items": items, "request_id": request_id}

    def _member_effects(self, snap: Snapshot, household_id: str,
                        members: list[tuple[str, str | None]]) -> list[Effects]:
        """Each member's decisions' effects, by their community and band."""
        pos = snap.households[household_id]
        communities = snap.engine.user_column("community_id", pos)
        return [self.decisions.effects(community, band)
                for community, (_, band) in zip(communities, members)]

    def _member_fits(self, snap: Snapshot, members: list[tuple[str, str | None]],
                     taken: Mapping[str, Iterable[str]],
                     rejected: list[frozenset[str]]) -> tuple[list, list]:
        """Per member: the catalogue mask of courses they are for (and have not taken, nor had
        rejected for their cohort), and their role in each (``participant`` or ``carer``)."""
        today = self.today()
        children = {b for _, b in members if b in CHILD_BANDS}
        fits, roles = [], []
        for (resident_id, band), refused in zip(members, rejected):
            direct, carer = household_fit(snap, today, band, children)
            fit = direct | carer
            done = taken[resident_id] if resident_id in taken else self.taken(resident_id)
            fit[snap.catalogue.positions(done)] = False
            fit[snap.catalogue.positions(refused)] = False
            fits.append(fit)
            roles.append(np.where(direct, "participant", "carer"))
        return fits, roles

    def _fused_ranking(self, snap: Snapshot, members: list[tuple[str, str | None]],
                       fits: list[np.ndarray], together: np.ndarray) -> np.ndarray:
        """Reciprocal-rank fusion of each member's own ranking of the courses they are for."""
        cat = snap.catalogue
        fused = np.zeros(len(cat.ids))
        for (resident_id, _), fit in zip(members, fits):
            mask = together & fit
            if not mask.any():
                continue
            # household lists rank on the event loop: no store read for declared interests
            ctx = self._context(snap, resident_id, declared=False)
            recs = snap.engine.recommend(ctx, n=int(mask.sum()), allowed=mask, explain=False)
            for rank, rec in enumerate(recs):
                fused[cat.position[rec.item_id]] += 1.0 / (10 + rank)
        return fused

    def similar(self, course_id: str, k: int = 10, available_only: bool = True,
                lang: str = DEFAULT_LANGUAGE) -> dict:
        """Courses like ``course_id``; with ``available_only``, only ones open to enrol in.
        Each says which course it is like, in ``lang``."""
        requested_language(lang)
        snap = self.holder.snapshot()
        cat = snap.catalogue
        if course_id not in cat.position:
            raise NotFound("course_id", f"unknown course {course_id!r}")
        keep = allowed_mask(snap, self.today()) if available_only else np.ones(len(cat.ids), bool)
        n, total = min(len(cat.ids) - 1, 4 * k), len(cat.ids) - 1
        while True:
            pairs = [(i, s) for i, s in snap.engine.similar(course_id, n=n)
                     if keep[cat.position[i]]]
            if len(pairs) >= k or n >= total:
                break
            n = min(total, 4 * n)
        like = worded([Reason("similar_to_course", {
            "course_id": course_id, "title": cat.records[cat.position[course_id]]["title"]})],
            lang)
        items = []
        for rank, (item_id, score) in enumerate(pairs[:k], 1):
            pos = cat.position[item_id]
            items.append({**cat.records[pos], "rank": rank, "score": float(score),
                          "seats_left": int(snap.seats_left[pos]), "reasons": like,
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
        See :func:`recommender.serving.intake.ingest`.
        """
        return ingest(self.store, self.holder, events, self.timezone, self.clock,
                      also=self.experiments.other_holders())

    def register_resident(self, resident_id: str, profile: Mapping[str, Any]
                          ) -> tuple[dict, bool]:
        """Register or update a resident (see :func:`recommender.serving.intake.register_resident`):
        their events are accepted from now on and their next list starts from this profile."""
        return register_resident(self.store, resident_id, profile, self.timezone, self.clock,
                                 self.bands)


def _taken(commitments: Iterable[tuple[str, str]]) -> set[str]:
    """The courses taken after ``commitments`` (``(course_id, event)``, oldest first): each
    course's latest commitment decides, except that a completion stays taken."""
    state: dict[str, str] = {}
    for course, event in commitments:
        if state.get(course) != "complete":
            state[course] = event
    return {course for course, event in state.items() if event != "cancel"}


def _household_course(snap: Snapshot, pos: int, rank: int, score: float,
                      members: list[tuple[str, str | None]], fits: list[np.ndarray],
                      roles: list[np.ndarray], pinned: bool = False,
                      lang: str = DEFAULT_LANGUAGE) -> dict:
    """One course of a household list: who it is for, as what, and why (a pinned course first
    says so), in ``lang``."""
    who = [{"resident_id": r, "age_band": b, "role": str(role[pos])}
           for (r, b), fit, role in zip(members, fits, roles) if fit[pos]]
    # Every member a course is for has a band: fitting a course goes by band.
    bands = [b for b in BAND_NAMES if any(w["age_band"] == b for w in who)]
    reasons = [Reason("household_members", {"count": len(who), "bands": bands})]
    if any(w["role"] == "carer" for w in who):
        reasons.append(Reason("family_course"))
    if pinned:
        reasons.insert(0, PIN_REASON)
    return {**snap.catalogue.records[pos], "rank": rank, "score": score,
            "seats_left": int(snap.seats_left[pos]), "for_members": who,
            "reasons": worded(reasons, lang)}


__all__ = ["CATEGORIES", "Catalogue", "IngestReport", "InvalidInput", "ModelHolder", "NotFound",
           "NotReady", "RecommendationService", "ResidentFacts", "ServiceError", "Snapshot",
           "allowed_mask", "diversify", "validate_event"]

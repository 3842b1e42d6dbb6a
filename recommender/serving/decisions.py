"""Coordinators' decisions in serving: record them, and turn the active ones into ranking effects.

A decision is about a course for a cohort: a community (or ``all``) and an age band (or
``all``). What each action does to the next list of a resident of that cohort:

* ``reject``: the course is no longer recommended to them;
* ``pin``: the course goes first, with the reason :data:`PIN_REASON`, but only when the
  business rules allow it anyway (band fit, seats, dates, not already taken): a pin reorders,
  it never adds;
* ``approve``: recorded only; no effect on ranking.

A course both rejected and pinned for one resident (say rejected district-wide, pinned in their
community) is rejected: the cautious decision wins. Decisions take effect without retraining:
:class:`DecisionBook` reads the active ones from the store at most once per ``ttl`` seconds per
process, so every worker follows a change within about a second, and the process that recorded
it at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recommender.data.store import ALL, DECISION_ACTIONS
from recommender.domain import BAND_NAMES
from recommender.serving.errors import InvalidInput, NotFound
from recommender.serving.wording import Reason

if TYPE_CHECKING:
    from recommender.data.store import Store

PIN_REASON = Reason("pinned_by_community")


@dataclass(frozen=True)
class Effects:
    """What the active decisions do to one cohort's lists: courses to leave out, and pinned
    courses, newest pin first."""

    rejected: frozenset[str] = frozenset()
    pinned: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rejected or self.pinned)


NO_EFFECTS = Effects()


class DecisionBook:
    """The active decisions of a store, cached for ``ttl`` seconds, and their effects.

    Parameters
    ----------
    store : Store
        Where decisions are kept.
    ttl : float
        Seconds a read of the active decisions is reused (another worker's change shows after
        at most this long).
    clock : callable
        Monotonic seconds (tests pass their own).
    """

    def __init__(self, store: Store, ttl: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._active: list[dict] = []

    def active(self) -> list[dict]:
        """The active decisions, read again when the cached read is older than ``ttl``."""
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.ttl:
                self._active = self.store.decisions()
                self._read_at = now
            return self._active

    def invalidate(self) -> None:
        """Forget the cached read (this process just changed a decision)."""
        with self._lock:
            self._read_at = None

    def effects(self, community_id: str | None, band: str | None) -> Effects:
        """The effects on a resident of ``community_id`` and ``band`` (None: unknown, so only
        the ``all`` decisions of that side apply)."""
        rejected: set[str] = set()
        pinned: list[str] = []
        for d in self._covering(community_id, band):
            if d["action"] == "reject":
                rejected.add(d["course_id"])
            elif d["action"] == "pin":
                pinned.append(d["course_id"])
        pins = [c for c in dict.fromkeys(reversed(pinned)) if c not in rejected]
        return Effects(frozenset(rejected), tuple(pins)) if rejected or pins else NO_EFFECTS

    def for_cohort(self, community_id: str, band: str) -> dict[str, dict]:
        """The decision in force for each course of a cohort's suggestions (its own and the
        ``all`` ones that cover it; the newest per course, a rejection over anything else), as
        ``{course_id: {"decision_id", "action", "community_id", "band", "note"}}``."""
        out: dict[str, dict] = {}
        for d in self._covering(community_id, band):
            held = out.get(d["course_id"])
            if held is None or held["action"] != "reject" or d["action"] == "reject":
                out[d["course_id"]] = {k: d[k] for k in (
                    "decision_id", "action", "community_id", "band", "note")}
        return out

    def _covering(self, community_id: str | None, band: str | None) -> list[dict]:
        """The active decisions that apply to ``community_id`` x ``band`` (theirs or ``all``)."""
        return [d for d in self.active()
                if d["community_id"] in (ALL, community_id) and d["band"] in (ALL, band)]

    # -- recording ---------------------------------------------------------------------
    def add(self, *, community_id: str, band: str, course_id: str, action: str,
            decided_by: str, note: str | None = None) -> dict:
        """Record a decision after checking its cohort and course; return the stored row.

        Raises
        ------
        InvalidInput
            An action that is not approve, reject or pin.
        NotFound
            An unknown community, band or course.
        """
        if action not in DECISION_ACTIONS:
            raise InvalidInput("action", f"{action!r} is not one of {', '.join(DECISION_ACTIONS)}")
        self.check_cohort(community_id, band)
        if not self.store.existing_keys("courses", [course_id]):
            raise NotFound("course_id", f"unknown course {course_id!r}")
        decision_id = self.store.add_decision(
            community_id=community_id, band=band, course_id=course_id, action=action,
            decided_by=decided_by, note=note)
        self.invalidate()
        return self.store.decision(decision_id)

    def check_cohort(self, community_id: str, band: str) -> None:
        """Raise :class:`NotFound` for a community or band that does not exist."""
        if band != ALL and band not in BAND_NAMES:
            raise NotFound("band", f"unknown band {band!r} (one of {ALL}, "
                           f"{', '.join(BAND_NAMES)})")
        if community_id != ALL and not self.store.existing_keys("communities", [community_id]):
            raise NotFound("community_id", f"unknown community {community_id!r}")

    def get(self, decision_id: int) -> dict:
        """One decision; :class:`NotFound` when there is none."""
        found = self.store.decision(decision_id)
        if found is None:
            raise NotFound("decision_id", f"no decision {decision_id}")
        return found

    def undo(self, decision_id: int, by: str) -> dict:
        """Undo a decision (already undone: unchanged) and return its row."""
        try:
            self.store.undo_decision(decision_id, by)
        except KeyError:
            raise NotFound("decision_id", f"no decision {decision_id}") from None
        self.invalidate()
        return self.get(decision_id)

    def listed(self, community_id: str, band: str, include_undone: bool = False) -> list[dict]:
        """A cohort's own decisions, oldest first (undone ones too with ``include_undone``)."""
        self.check_cohort(community_id, band)
        return self.store.decisions(community_id=community_id, band=band,
                                    active_only=not include_undone)


__all__ = ["NO_EFFECTS", "PIN_REASON", "DecisionBook", "Effects"]

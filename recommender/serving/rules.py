"""The business rules: which courses may be offered to whom, and how a list is diversified.

:func:`allowed_mask` is the one place the offer rules live (open,
seats left, still running, fits the resident's band or their household's children, not already
taken), :func:`diversify` caps one category's share of a list and :func:`household_fit` says
which courses a household member is for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

import numpy as np

from features.availability import available_on
from recommender.serving.holder import BAND_BIT, Snapshot

if TYPE_CHECKING:  # the engine is imported where it is used: these rules load without models
    from recommender.serving.engine import PoolAsk, UserContext

CHILD_BANDS = ("preschool", "school_age")
ADULT_BANDS = ("working_age", "elderly")


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
    # The benchmark's date rule, a day on: a course in its last day is not worth offering.
    running = available_on(cat.end_date, today + dt.timedelta(days=1), unknown=False)
    mask = cat.open & (snap.seats_left > 0) & running
    if band is not None:
        fit = (cat.band_bits & BAND_BIT[band]) != 0
        if band in ADULT_BANDS:
            bits = np.uint8(0)
            for child in set(child_bands) & set(CHILD_BANDS):
                bits |= BAND_BIT[child]
            if bits:
                fit |= cat.family & ((cat.band_bits & bits) != 0)
        mask &= fit
    if category is not None:
        mask &= cat.category == category
    mask[cat.positions(taken)] = False
    return mask


def diversify(snap: Snapshot, ctx: UserContext, allowed: np.ndarray, k: int, *,
              capped: bool, explain: bool) -> list:
    """Top ``k`` of ``allowed``, at most half (``max(1, k // 2)``) from one category while
    other categories still have allowed courses (:func:`diversify_many` for one resident)."""
    return diversify_many(snap, [(ctx, allowed, k)], capped=capped, explain=explain)[0]


def diversify_many(snap: Snapshot, lists: list[tuple[UserContext, np.ndarray, int]], *,
                   capped: bool, explain: bool) -> list[list]:
    """Each ``(ctx, allowed, k)``'s top ``k`` of ``allowed``, at most half (``max(1, k // 2)``)
    from one category while other categories still have allowed courses.

    Diversity reorders, it never removes: a list has ``min(k, allowed.sum())`` courses. One
    engine pass ranks the candidate pool and the list is picked from it greedily, skipping
    categories that reached their cap; only the kept courses are explained. Another pass runs
    when the pool ran out (over what is still allowed in uncapped categories). When every
    uncapped course is used, the courses of the capped categories fill the list after them:
    first those the passes ranked and skipped, in the order the passes gave them (no pass is
    run again for them), then, if they are too few, the best of the remaining ones from a
    last pass. Without ``capped`` this is one plain ranking. The residents' passes run
    together (:meth:`~recommender.serving.engine.Engine.rank_pools`); each list is what it
    would be alone.
    """
    from recommender.serving.engine import PoolAsk

    engine = snap.engine
    if not capped:
        pools = engine.rank_pools([PoolAsk(ctx, k, allowed) for ctx, allowed, k in lists])
        return [pool.take(range(len(pool.items)), explain) for pool in pools]
    states = [_CappedList(snap, ctx, allowed, k) for ctx, allowed, k in lists]
    while asking := [s for s in states if s.wants_pass()]:
        pools = engine.rank_pools([s.ask() for s in asking])
        for state, pool in zip(asking, pools):
            state.pick(pool, explain)
    # Only capped categories have courses left: they fill a list after the others, rather
    # than leaving it short; those a pass already ranked need no pass of their own (one list
    # in nine needs a fill at 400k; its pass cost ~7 % of the ranking's CPU).
    for state in states:
        state.fill_from_skipped(explain)
    short = [(s, s.rest()) for s in states if len(s.picked) < s.k]
    short = [(s, rest) for s, rest in short if rest.any()]
    pools = engine.rank_pools([PoolAsk(s.ctx, s.k - len(s.picked), rest, s.allowed)
                               for s, rest in short]) if short else []
    for (state, _), pool in zip(short, pools):
        state.picked.extend(pool.take(range(len(pool.items)), explain))
    return [s.picked for s in states]


class _CappedList:
    """One resident's list under the category cap, filled pass by pass."""

    def __init__(self, snap: Snapshot, ctx: UserContext, allowed: np.ndarray, k: int) -> None:
        self.catalogue, self.ctx, self.allowed, self.k = snap.catalogue, ctx, allowed, k
        self.cap = max(1, k // 2)
        self.mask = allowed.copy()
        self.picked: list = []
        self.per_category: dict[str, int] = {}
        self.dry = False
        # (pool, positions) of the courses each pass ranked and the cap skipped, best first
        self.skipped: list[tuple] = []

    def wants_pass(self) -> bool:
        return not self.dry and len(self.picked) < self.k and bool(self.mask.any())

    def ask(self) -> PoolAsk:
        from recommender.serving.engine import PoolAsk

        # One pass ranks the whole candidate pool; only what is kept gets explained.
        return PoolAsk(self.ctx, min(int(self.mask.sum()), max(8 * self.k, 200)), self.mask,
                       self.allowed)

    def pick(self, pool, explain: bool) -> None:
        if len(pool.items) == 0:
            self.dry = True
            return
        cat, keep, skipped, capped = self.catalogue, [], [], []
        # The catalogue is aligned with the engine's items: a pool index is a position.
        # Python values, gathered once: a numpy scalar per course cost more than the loop.
        categories = cat.category[pool.items].tolist()
        scanned = 0
        for p, category in enumerate(categories):
            scanned = p + 1
            taken = self.per_category.get(category, 0)
            if taken >= self.cap:
                skipped.append(p)
                continue
            keep.append(p)
            self.per_category[category] = taken + 1
            if taken + 1 >= self.cap:
                capped.append(int(cat.category_code[pool.items[p]]))
            if len(self.picked) + len(keep) >= self.k:
                break
        self.mask[pool.items[:scanned]] = False  # ranked: picked, or skipped for the cap
        for code in capped:
            if code >= 0:
                self.mask &= cat.category_code != code  # the capped category's courses
        self.picked.extend(pool.take(keep, explain))
        if skipped:
            self.skipped.append((pool, skipped))

    def fill_from_skipped(self, explain: bool) -> None:
        """Fill a short list with the skipped courses of the passes, pass by pass, in order."""
        for pool, positions in self.skipped:
            if len(self.picked) >= self.k:
                return
            self.picked.extend(pool.take(positions[:self.k - len(self.picked)], explain))

    def rest(self) -> np.ndarray:
        """The allowed courses not picked yet (those of the capped categories)."""
        rest = self.allowed.copy()
        rest[self.catalogue.positions(rec.item_id for rec in self.picked)] = False
        return rest


def household_fit(snap: Snapshot, today: dt.date, band: str | None,
                  children: Collection[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which courses a household member is *for*, as ``(direct, carer)`` catalogue masks.

    ``direct``: the member's band is a target band of the course. ``carer``: the member is an
    adult and the course is a family course aimed at one of the household's ``children`` bands
    that may be offered on ``today`` (see :func:`allowed_mask`); the member comes as the carer.
    """
    cat = snap.catalogue
    direct = np.zeros(len(cat.ids), bool) if band is None else (
        (cat.band_bits & BAND_BIT[band]) != 0)
    carer = np.zeros_like(direct)
    if band in ADULT_BANDS and children:
        carer = allowed_mask(snap, today, band=band, child_bands=children) & ~direct
    return direct, carer


__all__ = ["ADULT_BANDS", "CHILD_BANDS", "allowed_mask", "diversify", "household_fit"]

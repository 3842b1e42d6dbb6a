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

if TYPE_CHECKING:
    from recommender.serving.engine import UserContext

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
    other categories still have allowed courses.

    Diversity reorders, it never removes: the list has ``min(k, allowed.sum())`` courses. One
    engine pass ranks the candidate pool and the list is picked from it greedily, skipping
    categories that reached their cap; only the kept courses are explained. Another pass runs
    when the pool ran out (over what is still allowed in uncapped categories), and when every
    uncapped course is used a last pass appends the best of the rest (courses of the capped
    categories) after them. Without ``capped`` this is one plain ranking.
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
        pool = engine.rank_pool(ctx, n=min(int(mask.sum()), max(8 * k, 200)), allowed=mask,
                                eligible=allowed)
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
            if per_category[category] >= cap and cat.category_code[pos] >= 0:
                mask &= cat.category_code != cat.category_code[pos]  # the category's courses
            if len(picked) + len(keep) >= k:
                break
        picked.extend(pool.take(keep, explain))
    if len(picked) < k:
        # Only capped categories have courses left: they fill the list after the others,
        # rather than leaving it short.
        rest = allowed.copy()
        rest[cat.positions(rec.item_id for rec in picked)] = False
        if rest.any():
            picked.extend(engine.recommend(ctx, n=k - len(picked), allowed=rest,
                                           explain=explain, eligible=allowed))
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
        (cat.band_bits & BAND_BIT[band]) != 0)
    carer = np.zeros_like(direct)
    if band in ADULT_BANDS and children:
        carer = allowed_mask(snap, today, band=band, child_bands=children) & ~direct
    return direct, carer


__all__ = ["ADULT_BANDS", "CHILD_BANDS", "allowed_mask", "diversify", "household_fit"]

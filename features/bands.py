"""Age bands: the single place that turns a birth year into a band.

The bands live in ``features`` (not ``recommender``) because the feature pipeline needs them and
imports only flow ``recommender -> features``; ``recommender.domain`` re-exports them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

BAND_NAMES: tuple[str, ...] = ("preschool", "school_age", "working_age", "elderly")


@dataclass(frozen=True)
class AgeBands:
    """Age-band edges: a resident belongs to the last band whose lower edge is <= their age.

    Parameters
    ----------
    lower_edges : tuple of int
        Lowest age (in whole years) of each band, in the order of ``BAND_NAMES``. The default
        ``(0, 6, 18, 60)`` gives 0–5 preschool, 6–17 school_age, 18–59 working_age, 60+ elderly.
    """

    lower_edges: tuple[int, int, int, int] = (0, 6, 18, 60)

    def __post_init__(self) -> None:
        edges = tuple(int(e) for e in self.lower_edges)
        if len(edges) != len(BAND_NAMES) or edges[0] != 0 or list(edges) != sorted(set(edges)):
            raise ValueError(
                f"lower_edges must be {len(BAND_NAMES)} strictly increasing ages starting at 0, "
                f"got {self.lower_edges!r}"
            )
        object.__setattr__(self, "lower_edges", edges)

    def age(self, birth_year: int, at: dt.date) -> int:
        """Age in whole years at ``at``, counting a birth year as born on 1 January.

        Only the birth year is known (no birth dates are stored), so a resident "turns" a new
        age on 1 January of each year; this keeps the band stable within a calendar year.
        """
        return at.year - int(birth_year)

    def band(self, birth_year: int, at: dt.date) -> str:
        """The band of a resident born in ``birth_year`` on date ``at``."""
        age = self.age(birth_year, at)
        if age < 0:
            raise ValueError(f"birth_year {birth_year} is after the reference date {at}")
        return self.bands_of_ages([age])[0]

    def bands(self, birth_years, at: dt.date) -> np.ndarray:
        """Vectorised :meth:`band` over an array of birth years (object array of band names).

        Missing birth years (NaN) give ``None``; a birth year after ``at`` raises.
        """
        ages = at.year - np.asarray(birth_years, dtype="float64")
        if np.any(ages[~np.isnan(ages)] < 0):
            raise ValueError(f"some birth years are after the reference date {at}")
        return self.bands_of_ages(ages)

    def bands_of_ages(self, ages) -> np.ndarray:
        """The band of each age in whole years (object array of band names).

        This is the one age -> band rule: :meth:`band` and :meth:`bands` go through it, and so do
        datasets that give an ``age`` instead of a birth year. Missing ages (NaN) give ``None``.

        Raises
        ------
        ValueError
            If an age is negative.
        """
        ages = np.asarray(ages, dtype="float64")
        known = ~np.isnan(ages)
        if np.any(ages[known] < 0):
            raise ValueError("ages must not be negative")
        out = np.full(ages.shape, None, dtype=object)
        idx = np.searchsorted(self.lower_edges, ages[known], side="right") - 1
        out[known] = np.asarray(BAND_NAMES, dtype=object)[idx]
        return out

    def central_birth_year(self, band: str, at: dt.date) -> int:
        """A birth year standing in for a resident whose band is known but not their age.

        The middle age of ``band`` (its lowest age plus ten for the open top band) counted
        back from ``at``, so the year falls inside ``band`` on ``at`` and the resident ages out
        of it no sooner than a typical member would.

        Raises
        ------
        ValueError
            If ``band`` is not one of :data:`BAND_NAMES`.
        """
        if band not in BAND_NAMES:
            raise ValueError(f"age_band: {band!r} is not one of {', '.join(BAND_NAMES)}")
        low, high = self.band_ranges()[band]
        middle = low + 10 if high is None else (low + high) // 2
        return at.year - middle

    def band_ranges(self) -> dict[str, tuple[int, int | None]]:
        """``{band: (lowest age, highest age or None)}``, for documentation and reports."""
        highs = [e - 1 for e in self.lower_edges[1:]] + [None]
        return {name: (lo, hi) for name, lo, hi in zip(BAND_NAMES, self.lower_edges, highs)}

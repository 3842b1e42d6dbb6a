"""What a resident declares beside their ``residents`` row: an age band and interests.

A ``resident_profiles`` row (migration ``0004``) sits beside each registered resident's
``residents`` row. Its ``age_band`` is set only when the platform registered the resident by a
band instead of a birth year: the ``residents`` row then holds a stand-in birth year inside the
band (:meth:`features.bands.AgeBands.central_birth_year`), because training and serving derive
every band from a birth year. ``interests`` are categories of :data:`recommender.domain.CATEGORIES`,
stored as one ``|``-separated text (empty for none) so that SQLite and PostgreSQL hold them the
same way.

:func:`check_profile` is the one check of these values; the residents endpoint and the store
both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from recommender.domain import BAND_NAMES, CATEGORIES

SEPARATOR = "|"


class ProfileError(ValueError):
    """A declared value that is refused: ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class DeclaredProfile:
    """A checked profile: the declared band (or None) and the interests in declared order."""

    age_band: str | None = None
    interests: tuple[str, ...] = ()


def check_profile(age_band: Any = None, interests: Any = None) -> DeclaredProfile:
    """Check a declared band and interests exactly as sent (nothing is converted or dropped).

    Parameters
    ----------
    age_band : str or None
        One of :data:`BAND_NAMES`.
    interests : list of str or None
        Categories of :data:`CATEGORIES`, each at most once; None means none.

    Raises
    ------
    ProfileError
        Naming the first failing field (``interests[2]`` for one item) and the reason.
    """
    if age_band is not None and (not isinstance(age_band, str) or age_band not in BAND_NAMES):
        raise ProfileError("age_band", f"age_band must be one of: {', '.join(BAND_NAMES)}")
    if interests is None:
        return DeclaredProfile(age_band, ())
    if not isinstance(interests, Sequence) or isinstance(interests, str):
        raise ProfileError("interests", "interests must be a list of categories")
    for i, name in enumerate(interests):
        where = f"interests[{i}]"
        if not isinstance(name, str) or name not in CATEGORIES:
            raise ProfileError(where, f"{where} must be one of: {', '.join(CATEGORIES)}")
        if name in interests[:i]:
            raise ProfileError(where, f"{where} repeats {name!r}")
    return DeclaredProfile(age_band, tuple(interests))


def encode_interests(interests: Sequence[str]) -> str:
    """The stored text of checked interests (``""`` for none)."""
    return SEPARATOR.join(interests)


def decode_interests(text: str | None) -> tuple[str, ...]:
    """Stored interests back as a tuple, in the declared order."""
    return tuple(text.split(SEPARATOR)) if text else ()

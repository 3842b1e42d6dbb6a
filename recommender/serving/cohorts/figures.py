"""The suppression rule every coordinator figure goes through.

A figure computed over fewer than :data:`MIN_RESIDENTS` residents could single people out in
a small community, so it is never given, not even rounded: JSON carries
``{"suppressed": true}`` in its place and CSV the text ``suppressed``.
"""

from __future__ import annotations

from typing import Any

MIN_RESIDENTS = 10
SUPPRESSED: dict = {"suppressed": True}


def figure(value: Any, residents: int) -> Any:
    """``value``, or :data:`SUPPRESSED` when it was computed over fewer than 10 residents."""
    return dict(SUPPRESSED) if int(residents) < MIN_RESIDENTS else value


def is_suppressed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("suppressed") is True


__all__ = ["MIN_RESIDENTS", "SUPPRESSED", "figure", "is_suppressed"]

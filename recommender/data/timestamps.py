"""The one timestamp rule of the district data: offsets converted, stored naive in district time.

The importer, the dataset loaders and the events endpoint all read times through
:func:`to_district_time`, so ``2025-03-01T09:00:00Z`` is stored as ``2025-03-01 17:00:00`` (in
Asia/Shanghai) whichever way it arrives, and ``2025-03-01T09:00:00`` is taken as district time.
The current time is judged the same way: :func:`district_now` reads a clock's instant in the
district's zone, never the machine's wall clock in its own zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.data.arrow import np_bool as _np_bool
from recommender.domain import DISTRICT_TIMEZONE

__all__ = ["Clock", "district_now", "to_district_time", "utc_clock", "within_range"]

# An offset after a time of day; loose on purpose (the generic loader's text is not pre-shaped).
_OFFSET_RE = r"[T ][0-9]{1,2}:[0-9]{2}[0-9:.,]*\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
# datetime64[ns] spans 1677-09-21 .. 2262-04-11; whole years inside that are safe.
_YEARS = (1678, 2261)
# What a clock is: a callable giving the current instant as an aware datetime.
Clock = Callable[[], dt.datetime]


def utc_clock() -> dt.datetime:
    """The machine's clock as an aware instant (its own time zone plays no part)."""
    return dt.datetime.now(dt.UTC)


def district_now(timezone: str = DISTRICT_TIMEZONE, clock: Clock | None = None) -> dt.datetime:
    """The current time in ``timezone``, naive, as stored times are.

    ``clock`` gives the instant (default :func:`utc_clock`); it must be time-zone aware, since a
    naive wall-clock time says nothing about which zone it was read in.
    """
    instant = (clock or utc_clock)()
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("clock: must return a time-zone-aware datetime, got a naive one")
    return instant.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def to_district_time(values, timezone: str = DISTRICT_TIMEZONE) -> pd.Series:
    """The one timestamp rule: ISO 8601 text or datetimes as naive district time.

    A value with a UTC offset (``+08:00``, ``Z``, ``+00:00``) is converted to ``timezone`` and
    the offset dropped; a value without one is taken to be district time already and kept as it
    is. The importer, the dataset loaders and the events endpoint all go through this function.

    Parameters
    ----------
    values : pandas.Series, pyarrow.Array or sequence
        ISO 8601 text (``None`` or ``""`` for missing) or datetimes (naive or time-zone aware).
    timezone : str
        The district's IANA time zone (default :data:`recommender.domain.DISTRICT_TIMEZONE`).

    Returns
    -------
    pandas.Series
        ``datetime64[ns]``, naive; ``NaT`` where a value is missing, not ISO 8601, or outside
        the years 1678-2261 that the type can hold. Keeps the index of a Series input.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and not pa.types.is_string(values.type):
        values = values.to_pandas()
    if isinstance(values, pa.Array):  # text straight from the validator: no copy through pandas
        arrow, text = values, pd.Series(values.to_numpy(zero_copy_only=False), dtype=object)
    else:
        s = values if isinstance(values, pd.Series) else pd.Series(values)
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return within_range(s.dt.tz_convert(timezone).dt.tz_localize(None))
        if pd.api.types.is_datetime64_dtype(s.dtype):
            return within_range(s)
        text = s.astype(object).where(s.notna(), None)
        arrow = pa.array(text.to_numpy(), type=pa.string(), from_pandas=True)
    aware = _np_bool(pc.match_substring_regex(arrow, _OFFSET_RE))
    if not aware.any():
        return within_range(_parse_naive(text, timezone))
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    out[~aware] = _parse_naive(text[~aware], timezone).to_numpy(dtype="datetime64[ns]")
    utc = pd.to_datetime(text[aware], format="ISO8601", errors="coerce", utc=True)
    out[aware] = utc.dt.tz_convert(timezone).dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return within_range(out)


def within_range(stamps: pd.Series) -> pd.Series:
    """``datetime64[ns]``, with NaT for times outside the years 1678-2261 the type holds."""
    values = stamps.to_numpy()
    inside = (values >= np.datetime64(f"{_YEARS[0]}-01-01")) & (
        values < np.datetime64(f"{_YEARS[1] + 1}-01-01"))
    return stamps.where(inside).astype("datetime64[ns]")


def _parse_naive(text: pd.Series, timezone: str) -> pd.Series:
    """Parse text expected to carry no offset (pandas may still find one the regex missed)."""
    try:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # offsets in a form the regex does not know, mixed with naive values
        parsed = pd.Series([to_district_time([v], timezone).iloc[0]
                            if _aware(v) else pd.to_datetime(v, format="ISO8601", errors="coerce")
                            for v in text], index=text.index, dtype="datetime64[ns]")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert(timezone).dt.tz_localize(None)
    return parsed


def _aware(value) -> bool:
    try:
        return pd.Timestamp(value).tzinfo is not None
    except (ValueError, TypeError):
        return False


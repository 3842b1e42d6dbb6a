"""The generic benchmark format (``interactions.csv`` plus optional ``users.csv``, ``items.csv``).

:func:`load_benchmark` reads such a folder into a :class:`~features.frames.DataBundle`; public
datasets are turned into this form by adapters (:mod:`recommender.data.oulad`). Loading never
drops or coerces a row silently: invalid rows raise :class:`~recommender.data.reading.DatasetError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.bands import BAND_NAMES, AgeBands
from features.frames import GENERIC_EVENT, DataBundle
from recommender.data.reading import DatasetError, Source, locate, numbers, read_csv
from recommender.data.reading import require_columns as _require
from recommender.data.timestamps import to_district_time
from recommender.domain import DISTRICT_TIMEZONE, EVENTS

__all__ = ["GENERIC_EVENTS", "load_benchmark"]

# Events a generic dataset may carry: the district vocabulary plus the event-less default.
GENERIC_EVENTS = (*EVENTS, GENERIC_EVENT)
# datetime64[ns] spans about 1677-09-21 .. 2262-04-11; seconds since epoch beyond this overflow.
_MAX_EPOCH_SECONDS = 9.2e9
# Epoch numbers come in seconds, milliseconds, microseconds or nanoseconds; the column's median
# magnitude tells which (a time after 1973 in one unit is one before 5138 in the next smaller
# unit, so the bands do not overlap for real data):
# (median below, units per second, pandas' unit, name).
_EPOCH_UNITS = ((1e11, 1.0, "s", "seconds"), (1e14, 1e3, "ms", "milliseconds"),
                (1e17, 1e6, "us", "microseconds"), (np.inf, 1e9, "ns", "nanoseconds"))
# In a finer unit than seconds, a value before 1973-03-03 is a number of another unit.
_MIN_FINE_EPOCH_SECONDS = 1e8
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def load_benchmark(folder, *, bands: AgeBands | None = None, name: str | None = None,
                   timezone: str = DISTRICT_TIMEZONE) -> DataBundle:
    """Read a folder in the generic benchmark format (docs/data.md) into a :class:`DataBundle`.

    Parameters
    ----------
    folder : path-like
        Holds ``interactions.csv`` (``user_id, item_id, timestamp`` required; ``weight``,
        ``event`` and ``value`` optional; other columns are kept) and optionally ``users.csv``
        (``user_id`` plus ``age`` and/or ``age_band`` and any other columns) and ``items.csv``
        (``item_id`` plus ``title``, ``description``, ``category``, ``tags``, ...).
    bands : AgeBands, optional
        Edges that turn a numeric ``age`` into a band (default edges when omitted). An explicit
        ``age_band`` wins over ``age``.
    name : str, optional
        Name of the bundle; the folder name by default.
    timezone : str
        Time zone that times with a UTC offset (and epoch numbers, which count from UTC) are
        converted to; times without an offset are kept as they are
        (:func:`recommender.data.timestamps.to_district_time`).

    Returns
    -------
    DataBundle
        ``kind="generic"``. Timestamps are ISO dates/datetimes or, when every value is a number,
        time since the epoch in seconds, milliseconds, microseconds or nanoseconds (the unit
        the column's median magnitude says). Without an ``event`` column every row is
        ``"interact"``; without ``weight`` every weight is 1.0. Users and items that
        interactions reference but ``users.csv``/``items.csv`` lack are added with unknown
        attributes (counted in ``meta["added_users"]``/``meta["added_items"]``). Rows keep
        their file order.

    Raises
    ------
    DatasetError
        A missing file or column, or invalid rows (empty ids, unparseable timestamps, unknown
        events, negative or non-numeric weights, duplicate user/item ids, unknown age bands);
        the message names the file, the column and the first offending lines.
    """
    folder = Path(folder)
    bands = bands or AgeBands()
    if not folder.is_dir():
        raise DatasetError(folder, "not a folder")
    path = locate(folder, "interactions", required=False)
    if path is None:
        raise DatasetError(folder / "interactions.csv",
                           "file not found (a benchmark folder needs interactions.csv)")
    interactions = _interactions(path, timezone)
    users_path = locate(folder, "users", required=False)
    users = (_users(users_path, bands, timezone) if users_path is not None
             else pd.DataFrame({"user_id": pd.Series(dtype="str")}))
    items_path = locate(folder, "items", required=False)
    items = (_items(items_path, timezone) if items_path is not None
             else pd.DataFrame({"item_id": pd.Series(dtype="str")}))
    users, added_users = _add_missing(users, "user_id", interactions["user_id"])
    items, added_items = _add_missing(items, "item_id", interactions["item_id"])
    meta = {
        "source": str(folder),
        "files": sorted(p.name for p in (path, users_path, items_path) if p is not None),
        "added_users": added_users,
        "added_items": added_items,
    }
    return DataBundle(interactions, users, items, name or folder.name, "generic", meta)


def _ids(frame: pd.DataFrame, column: str, src: Source, unique: bool = False) -> pd.Series:
    """A key column as non-empty strings."""
    text = frame[column].astype("str").str.strip()  # pandas' string dtype: missing stays NaN
    src.check(column, "empty id", (text.isna() | (text == "")).to_numpy())
    if unique:
        src.check(column, "duplicate id", text.duplicated(keep="first").to_numpy())
    return text


def _timestamps(values: pd.Series, src: Source, column: str, timezone: str,
                required: bool = True) -> pd.Series:
    """Parse a time column to naive ``datetime64[ns]`` in ``timezone``.

    Text is read as ISO 8601 dates or datetimes; a column whose every value is a number is read
    as time since the Unix epoch, in the unit its median magnitude says (:func:`_epoch_unit`:
    seconds, or milliseconds, microseconds or nanoseconds as many exports write). Mixing text
    and numbers, or numbers of another unit than the column's, is reported as unparseable rows.
    """
    s = values.reset_index(drop=True)
    empty = s.isna().to_numpy()
    if not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_datetime64_any_dtype(s):
        text = s.astype("str").str.strip()
        empty = (text.isna() | (text == "")).to_numpy()
        # A cheap vectorised test first: to_numeric over a column of dates is slow.
        numeric = text.str.fullmatch(_NUMBER).fillna(False).to_numpy()
        s = pd.to_numeric(text.where(~empty)) if numeric[~empty].all() else text.where(~empty)
    read_as = ""  # for a column of numbers: the unit they were read in
    if pd.api.types.is_numeric_dtype(s):
        s, unit = _epoch_times(s)
        read_as = f"; this column's numbers read as {unit}"
    out = to_district_time(s, timezone)
    bad = ~empty & out.isna().to_numpy()
    if required:
        src.check(column, "missing timestamp", empty)
    src.check(column, "unparseable timestamp (want an ISO date/datetime or epoch seconds, "
              f"milliseconds, microseconds or nanoseconds{read_as})", bad)
    return out


def _epoch_unit(numbers: np.ndarray) -> tuple[float, str, str]:
    """The unit of a column of epoch numbers by its median magnitude (seconds for a column
    with no number): units per second, pandas' name of the unit, its name in words."""
    finite = np.abs(numbers[np.isfinite(numbers)])
    median = float(np.median(finite)) if finite.size else 0.0
    return next(unit[1:] for unit in _EPOCH_UNITS if median < unit[0])


def _epoch_times(numbers: pd.Series) -> tuple[pd.Series, str]:
    """Epoch numbers as UTC times, NaT where a value is missing, out of range, or of another
    unit than the column's; and the unit's name."""
    values = numbers.astype("float64").to_numpy()
    per_second, unit, name = _epoch_unit(values)
    seconds = np.abs(np.nan_to_num(values / per_second, nan=np.inf))
    bad = ~(seconds < _MAX_EPOCH_SECONDS)
    if per_second > 1:  # e.g. seconds among milliseconds would read as January 1970
        bad |= seconds < _MIN_FINE_EPOCH_SECONDS
    # whole numbers stay integers, exact even in nanoseconds
    ticks = (pd.Series(np.where(bad, 0, numbers.to_numpy()), dtype="int64")
             if pd.api.types.is_integer_dtype(numbers) else pd.Series(np.where(bad, 0.0, values)))
    times = pd.to_datetime(ticks, unit=unit, utc=True)  # epoch numbers count from UTC
    return times.mask(bad), name


def _add_missing(frame: pd.DataFrame, key: str, referenced: pd.Series) -> tuple[pd.DataFrame, int]:
    """Append rows (unknown attributes) for ids the interactions use but the table lacks."""
    missing = pd.Index(referenced.unique()).difference(pd.Index(frame[key]))
    if len(missing) == 0:
        return frame, 0
    extra = pd.DataFrame({key: pd.Series(sorted(missing), dtype="str")})
    return pd.concat([frame, extra], ignore_index=True), len(missing)


def _interactions(path: Path, timezone: str) -> pd.DataFrame:
    src = Source(str(path))
    raw = read_csv(path, ("user_id", "item_id", "timestamp", "event"))
    _require(raw, ("user_id", "item_id", "timestamp"), src)
    if raw.empty:
        raise DatasetError(path, "no interaction rows")
    out = pd.DataFrame(
        {
            "user_id": _ids(raw, "user_id", src),
            "item_id": _ids(raw, "item_id", src),
            "timestamp": _timestamps(raw["timestamp"], src, "timestamp", timezone),
        }
    )
    if "event" in raw:
        event = raw["event"].astype("str").str.strip()
        src.check("event", "missing event", (event.isna() | (event == "")).to_numpy())
        unknown = ~event.isin(GENERIC_EVENTS)
        if unknown.any():
            first = event[unknown].iloc[0]
            raise src.fail(
                "event",
                f"unknown event value {first!r} (allowed: {', '.join(GENERIC_EVENTS)})",
                unknown.to_numpy(),
            )
        out["event"] = event
    else:
        out["event"] = GENERIC_EVENT
    if "weight" in raw:
        weight = numbers(raw, "weight", src, "weight")
        src.check("weight", "missing weight", raw["weight"].isna().to_numpy())
        src.check("weight", "negative weight", (weight < 0).to_numpy())
        out["weight"] = weight
    else:
        out["weight"] = 1.0
    out["value"] = numbers(raw, "value", src, "value") if "value" in raw else np.nan
    extra = [c for c in raw.columns if c not in out.columns]
    return pd.concat([out, raw[extra]], axis=1) if extra else out


def _users(path: Path, bands: AgeBands, timezone: str) -> pd.DataFrame:
    src = Source(str(path))
    users = read_csv(path, ("user_id", "age_band"))
    _require(users, ("user_id",), src)
    users["user_id"] = _ids(users, "user_id", src, unique=True)
    band = pd.Series(np.nan, index=users.index, dtype="str")
    if "age_band" in users:
        given = users["age_band"].astype("str").str.strip()
        given = given.where(given != "")
        unknown = given.notna() & ~given.isin(BAND_NAMES)
        if unknown.any():
            raise src.fail(
                "age_band",
                f"unknown age band {given[unknown].iloc[0]!r} (allowed: {', '.join(BAND_NAMES)})",
                unknown.to_numpy(),
            )
        band = given
    if "age" in users:
        age = numbers(users, "age", src, "age")
        src.check("age", "negative age", (age < 0).to_numpy())
        users["age"] = age
        from_age = pd.Series(bands.bands_of_ages(age.to_numpy()), dtype="str")
        band = band.where(band.notna(), from_age)
    if "age_band" in users or "age" in users:
        users["age_band"] = band
    if "registered_at" in users:
        users["registered_at"] = _timestamps(users["registered_at"], src, "registered_at",
                                             timezone, required=False)
    return users


def _items(path: Path, timezone: str) -> pd.DataFrame:
    src = Source(str(path))
    items = read_csv(path, ("item_id", "title", "description", "category", "tags"))
    _require(items, ("item_id",), src)
    items["item_id"] = _ids(items, "item_id", src, unique=True)
    for col in ("start_date", "end_date"):
        if col in items:
            items[col] = _timestamps(items[col], src, col, timezone, required=False)
    return items

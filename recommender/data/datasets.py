"""Dataset loaders: every source the pipeline reads becomes one :class:`DataBundle`.

Two kinds of folder, one output form:

* a **generic benchmark folder** (``interactions.csv`` plus optional ``users.csv`` and
  ``items.csv``): :func:`load_benchmark` (:mod:`recommender.data.generic`);
* a **district folder** (``communities``, ``residents``, ``courses``, ``participations`` as CSV
  or Parquet) or the same four tables read from the store: :func:`load_district` and
  :func:`bundle_from_tables` (:mod:`recommender.data.bundle`), checked by the importer's
  validator.

A real public dataset is turned into the generic form by an adapter
(:func:`recommender.data.oulad.convert_oulad`) and then read like any benchmark folder.

:func:`load_dataset` tells the two folder kinds apart. Loading never drops or coerces a row
silently: invalid rows raise :class:`DatasetError` naming the file, the column, the reason and the
first few line numbers (CSV lines count the header as line 1; Parquet and store frames are
reported by 1-based row). This module is the public face of the loaders; the work is done in the
modules named above.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.bands import BAND_NAMES, AgeBands
from features.frames import DataBundle
from recommender.data.bundle import bundle_from_tables, load_district
from recommender.data.generic import load_benchmark
from recommender.data.reading import DatasetError, locate
from recommender.domain import DISTRICT_TIMEZONE

__all__ = [
    "DatasetError",
    "bundle_from_tables",
    "load_benchmark",
    "load_dataset",
    "load_district",
    "summarize",
]


def load_dataset(folder, *, as_of=None, bands: AgeBands | None = None,
                 timezone: str = DISTRICT_TIMEZONE) -> DataBundle:
    """Load a district folder (it has a participations file) or a generic benchmark folder.

    ``as_of`` applies to district folders only (age bands of generic datasets come from the
    data); ``timezone`` is the zone times with a UTC offset are converted to. Raises
    :class:`DatasetError` when the folder is neither kind.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "not a folder")
    if locate(folder, "participations", ("csv", "parquet"), required=False) is not None:
        return load_district(folder, as_of, bands=bands, timezone=timezone)
    if locate(folder, "interactions", required=False) is not None:
        return load_benchmark(folder, bands=bands, timezone=timezone)
    raise DatasetError(
        folder,
        "neither a district folder (participations.csv/.parquet) nor a benchmark folder "
        "(interactions.csv)",
    )


def summarize(bundle: DataBundle) -> dict:
    """Counts for CLI output: users, items, interactions, events by type, users per band, times.

    All values are plain Python types (JSON-serialisable).
    """
    inter = bundle.interactions
    if "age_band" in bundle.users:
        per_band = bundle.users["age_band"].value_counts(dropna=False)
        bands = {b: int(per_band.get(b, 0)) for b in BAND_NAMES}
        bands["unknown"] = int(bundle.users["age_band"].isna().sum())
    else:
        bands = {"unknown": len(bundle.users)}
    events = inter["event"].value_counts() if "event" in inter else pd.Series(dtype=int)
    times = inter["timestamp"]
    return {
        "name": bundle.name,
        "kind": bundle.kind,
        "users": len(bundle.users),
        "items": len(bundle.items),
        "interactions": len(inter),
        "active_users": int(inter["user_id"].nunique()),
        "active_items": int(inter["item_id"].nunique()),
        "events": {str(k): int(v) for k, v in events.items()},
        "users_per_band": bands,
        "time_range": (
            [times.min().isoformat(), times.max().isoformat()] if times.notna().any() else None
        ),
    }

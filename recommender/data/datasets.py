"""Dataset loaders: every source the pipeline reads becomes one :class:`DataBundle`.

Two kinds of folder, one output form:

* a **generic benchmark folder** (``interactions.csv`` plus optional ``users.csv`` and
  ``items.csv``): :func:`load_benchmark`;
* a **district folder** (``communities``, ``residents``, ``courses``, ``participations`` as CSV
  or Parquet) or the same four tables read from the store: :func:`load_district` and
  :func:`bundle_from_tables`.

A real public dataset is turned into the generic form by an adapter
(:func:`recommender.data.oulad.convert_oulad`) and then read like any benchmark folder.

:func:`load_dataset` tells the two folder kinds apart. Loading never drops or coerces a row
silently: invalid rows raise :class:`DatasetError` naming the file, the column, the reason and the
first few line numbers (CSV lines count the header as line 1; Parquet and store frames are
reported by 1-based row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.bands import BAND_NAMES, AgeBands
from features.frames import GENERIC_EVENT, DataBundle
from recommender.domain import EVENTS, TABLE_ORDER, TABLES

__all__ = [
    "DatasetError",
    "bundle_from_tables",
    "load_benchmark",
    "load_dataset",
    "load_district",
    "summarize",
]

# Events a generic dataset may carry: the district vocabulary plus the event-less default.
GENERIC_EVENTS = (*EVENTS, GENERIC_EVENT)
# How many offending line numbers an error message lists before summarising the rest.
_SHOWN = 5
# datetime64[ns] spans about 1677-09-21 .. 2262-04-11; seconds since epoch beyond this overflow.
_MAX_EPOCH_SECONDS = 9.2e9
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


class DatasetError(ValueError):
    """A dataset file that cannot be loaded as it is.

    The message names the file, the column (when one is at fault), the reason and the first few
    offending lines; the same facts are kept as attributes for programs.
    """

    def __init__(self, file, reason: str, column: str | None = None, lines=()) -> None:
        self.file = str(file)
        self.column = column
        self.reason = reason
        self.lines = list(lines)
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.file}: column {self.column!r}: " if self.column else f"{self.file}: "
        return where + self.reason


@dataclass(frozen=True)
class _Source:
    """Where a frame came from, to turn row positions into the line numbers a person can find."""

    file: str
    unit: str = "line"  # "line" for CSV (header = line 1), "row" for Parquet and store frames
    offset: int = 2

    def fail(self, column: str | None, reason: str, bad) -> DatasetError:
        """An error for the rows where ``bad`` is true (a boolean array over the frame)."""
        positions = np.flatnonzero(np.asarray(bad, dtype=bool))
        lines = [int(p) + self.offset for p in positions]
        shown = ", ".join(str(n) for n in lines[:_SHOWN])
        more = f" (and {len(lines) - _SHOWN} more of {len(lines)})" if len(lines) > _SHOWN else ""
        unit = self.unit if len(lines) == 1 else self.unit + "s"
        return DatasetError(self.file, f"{reason} on {unit} {shown}{more}", column, lines)

    def check(self, column: str | None, reason: str, bad) -> None:
        if np.any(np.asarray(bad, dtype=bool)):
            raise self.fail(column, reason, bad)


# --------------------------------------------------------------------------- reading helpers


def _read_csv(path: Path, id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV as a frame: ids and free text stay text; only an empty cell counts as missing.

    ``keep_default_na=False`` keeps ids such as ``NA`` or ``null`` as the strings they are.
    """
    try:
        frame = pd.read_csv(
            path,
            dtype={c: str for c in id_columns},
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",  # a BOM from spreadsheet exports must not rename the first column
        )
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(path, "file is empty (no header line)") from None
    except pd.errors.ParserError as exc:
        raise DatasetError(path, f"malformed CSV: {exc}".strip()) from None
    return frame.reset_index(drop=True)


def _require(frame: pd.DataFrame, columns, src: _Source) -> None:
    for col in columns:
        if col not in frame.columns:
            raise DatasetError(
                src.file,
                f"missing required column (found: {', '.join(map(str, frame.columns))})",
                col,
            )


def _ids(frame: pd.DataFrame, column: str, src: _Source, unique: bool = False) -> pd.Series:
    """A key column as non-empty strings (an int column from Parquet or SQL becomes text)."""
    text = frame[column].astype("str").str.strip()  # pandas' string dtype: missing stays NaN
    src.check(column, "empty id", (text.isna() | (text == "")).to_numpy())
    if unique:
        src.check(column, "duplicate id", text.duplicated(keep="first").to_numpy())
    return text


def _timestamps(values: pd.Series, src: _Source, column: str, required: bool = True) -> pd.Series:
    """Parse a time column to naive ``datetime64[ns]`` (UTC if the input carries offsets).

    Text is read as ISO 8601 dates or datetimes; a column whose every value is a number is read
    as seconds since the Unix epoch. Mixing the two is reported as unparseable rows.
    """
    s = values.reset_index(drop=True)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    empty = s.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
        bad = np.zeros(len(s), dtype=bool)
    else:
        if not pd.api.types.is_numeric_dtype(s):
            text = s.astype("str").str.strip()
            empty = (text.isna() | (text == "")).to_numpy()
            # A cheap vectorised test first: to_numeric over a column of dates is slow.
            numeric = text.str.fullmatch(_NUMBER).fillna(False).to_numpy()
            if numeric[~empty].all():
                s = pd.to_numeric(text.where(~empty))
            else:
                s = text.where(~empty)
        if pd.api.types.is_numeric_dtype(s):
            seconds = s.astype("float64").to_numpy()
            bad = ~empty & ~(np.abs(np.nan_to_num(seconds, nan=np.inf)) < _MAX_EPOCH_SECONDS)
            out = pd.to_datetime(pd.Series(np.where(bad | empty, np.nan, seconds)), unit="s")
        else:
            out = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
            out = out.dt.tz_localize(None)
            bad = ~empty & out.isna().to_numpy()
            years = out.dt.year.to_numpy(dtype="float64", na_value=np.nan)
            bad |= (years < 1678) | (years > 2261)
            out = out.where(~bad)
    if required:
        src.check(column, "missing timestamp", empty)
    src.check(column, "unparseable timestamp (want an ISO date/datetime or epoch seconds)", bad)
    return out.astype("datetime64[ns]")


def _numbers(frame: pd.DataFrame, column: str, src: _Source, what: str) -> pd.Series:
    """A numeric column; non-empty cells that are not finite numbers are errors."""
    raw = frame[column]
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    src.check(column, f"{what} is not a number", (raw.notna() & ~np.isfinite(num)).to_numpy())
    return num


def _bands_from_ages(ages: np.ndarray, bands: AgeBands) -> np.ndarray:
    out = np.full(ages.shape, None, dtype=object)
    known = ~np.isnan(ages)
    idx = np.searchsorted(bands.lower_edges, ages[known], side="right") - 1
    out[known] = np.asarray(BAND_NAMES, dtype=object)[idx]
    return out


def _add_missing(frame: pd.DataFrame, key: str, referenced: pd.Series) -> tuple[pd.DataFrame, int]:
    """Append rows (unknown attributes) for ids the interactions use but the table lacks."""
    missing = pd.Index(referenced.unique()).difference(pd.Index(frame[key]))
    if len(missing) == 0:
        return frame, 0
    extra = pd.DataFrame({key: pd.Series(sorted(missing), dtype="str")})
    return pd.concat([frame, extra], ignore_index=True), len(missing)


# --------------------------------------------------------------------------- generic format


def load_benchmark(folder, *, bands: AgeBands | None = None, name: str | None = None) -> DataBundle:
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

    Returns
    -------
    DataBundle
        ``kind="generic"``. Timestamps are ISO dates/datetimes (offsets converted to UTC) or, when
        every value is a number, seconds since the epoch. Without an ``event`` column every row is
        ``"interact"``; without ``weight`` every weight is 1.0. Users and items that interactions
        reference but ``users.csv``/``items.csv`` lack are added with unknown attributes (counted
        in ``meta["added_users"]``/``meta["added_items"]``). Rows keep their file order.

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
    path = folder / "interactions.csv"
    if not path.exists():
        raise DatasetError(path, "file not found (a benchmark folder needs interactions.csv)")
    interactions = _generic_interactions(path)

    users_path = folder / "users.csv"
    users = (
        _generic_users(users_path, bands)
        if users_path.exists()
        else pd.DataFrame({"user_id": pd.Series(dtype="str")})
    )
    items_path = folder / "items.csv"
    items = (
        _generic_items(items_path)
        if items_path.exists()
        else pd.DataFrame({"item_id": pd.Series(dtype="str")})
    )
    users, added_users = _add_missing(users, "user_id", interactions["user_id"])
    items, added_items = _add_missing(items, "item_id", interactions["item_id"])
    meta = {
        "source": str(folder),
        "files": sorted(p.name for p in (path, users_path, items_path) if p.exists()),
        "added_users": added_users,
        "added_items": added_items,
    }
    return DataBundle(interactions, users, items, name or folder.name, "generic", meta)


def _generic_interactions(path: Path) -> pd.DataFrame:
    src = _Source(str(path))
    raw = _read_csv(path, ("user_id", "item_id", "timestamp", "event"))
    _require(raw, ("user_id", "item_id", "timestamp"), src)
    if raw.empty:
        raise DatasetError(path, "no interaction rows")
    out = pd.DataFrame(
        {
            "user_id": _ids(raw, "user_id", src),
            "item_id": _ids(raw, "item_id", src),
            "timestamp": _timestamps(raw["timestamp"], src, "timestamp"),
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
        weight = _numbers(raw, "weight", src, "weight")
        src.check("weight", "missing weight", raw["weight"].isna().to_numpy())
        src.check("weight", "negative weight", (weight < 0).to_numpy())
        out["weight"] = weight
    else:
        out["weight"] = 1.0
    out["value"] = _numbers(raw, "value", src, "value") if "value" in raw else np.nan
    extra = [c for c in raw.columns if c not in out.columns]
    return pd.concat([out, raw[extra]], axis=1) if extra else out


def _generic_users(path: Path, bands: AgeBands) -> pd.DataFrame:
    src = _Source(str(path))
    users = _read_csv(path, ("user_id", "age_band"))
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
        age = _numbers(users, "age", src, "age")
        src.check("age", "negative age", (age < 0).to_numpy())
        users["age"] = age
        from_age = pd.Series(_bands_from_ages(age.to_numpy(), bands), dtype="str")
        band = band.where(band.notna(), from_age)
    if "age_band" in users or "age" in users:
        users["age_band"] = band
    if "registered_at" in users:
        users["registered_at"] = _timestamps(users["registered_at"], src, "registered_at", False)
    return users


def _generic_items(path: Path) -> pd.DataFrame:
    src = _Source(str(path))
    items = _read_csv(path, ("item_id", "title", "description", "category", "tags"))
    _require(items, ("item_id",), src)
    items["item_id"] = _ids(items, "item_id", src, unique=True)
    for col in ("start_date", "end_date"):
        if col in items:
            items[col] = _timestamps(items[col], src, col, required=False)
    return items


# --------------------------------------------------------------------------- district format


def _district_sources(folder: Path) -> dict[str, tuple[Path, pd.DataFrame]]:
    tables = {}
    for table in TABLE_ORDER:
        found = [p for p in (folder / f"{table}.csv", folder / f"{table}.parquet") if p.exists()]
        if not found:
            raise DatasetError(folder / f"{table}.csv", "file not found (nor a .parquet)")
        if len(found) > 1:
            both = f"both {found[0].name} and {found[1].name} exist; keep one"
            raise DatasetError(found[0], both)
        path = found[0]
        spec = TABLES[table]
        ids = tuple(c.name for c in spec.columns if c.kind in ("id", "text", "enum", "bands"))
        if path.suffix == ".csv":
            frame = _read_csv(path, ids)
        else:
            try:
                frame = pd.read_parquet(path).reset_index(drop=True)
            except Exception as exc:  # pyarrow raises several types for a corrupt file
                raise DatasetError(path, f"unreadable Parquet file ({exc})") from None
        tables[table] = (path, frame)
    return tables


def load_district(
    folder, as_of: dt.date | str | None = None, *, bands: AgeBands | None = None
) -> DataBundle:
    """Read a district folder (four tables as ``.csv`` or ``.parquet``) into a :class:`DataBundle`.

    Parameters
    ----------
    folder : path-like
        Holds ``communities``, ``residents``, ``courses`` and ``participations`` files with the
        columns of :data:`recommender.domain.TABLES`.
    as_of : date or ISO string, optional
        Reference date for age bands; see :func:`bundle_from_tables`.
    bands : AgeBands, optional
        Age-band edges (the defaults when omitted).

    Returns
    -------
    DataBundle
        ``kind="district"``; errors name the file and its CSV line (or Parquet row).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "not a folder")
    found = _district_sources(folder)
    tables = {t: frame for t, (_, frame) in found.items()}
    sources = {
        t: _Source(str(p), "line", 2) if p.suffix == ".csv" else _Source(str(p), "row", 1)
        for t, (p, _) in found.items()
    }
    bundle = bundle_from_tables(tables, as_of, name=folder.name, bands=bands, sources=sources)
    bundle.meta["source"] = str(folder)
    return bundle


def bundle_from_tables(
    tables: dict[str, pd.DataFrame],
    as_of: dt.date | str | None = None,
    *,
    name: str = "district",
    bands: AgeBands | None = None,
    sources: dict[str, _Source] | None = None,
) -> DataBundle:
    """Map the four district tables (from files or from the store) onto a :class:`DataBundle`.

    This is the one place the district → bundle mapping lives.

    Parameters
    ----------
    tables : dict of str to DataFrame
        ``communities``, ``residents``, ``courses``, ``participations`` with the columns of
        :data:`recommender.domain.TABLES` (typed as the store returns them, or text from CSV).
    as_of : date or ISO string, optional
        Reference date of the residents' age bands. Default: the date of the latest event, or
        the latest ``registered_at`` if that is later (so every registered resident is born),
        or today when neither exists.
    name : str
        Name of the bundle.
    bands : AgeBands, optional
        Age-band edges (the defaults when omitted).
    sources : dict, optional
        Per table, where its rows came from (used only to word errors); frames without one are
        reported as ``<table> row N``.

    Returns
    -------
    DataBundle
        users: ``user_id`` (resident), ``birth_year``, ``age_band``, ``gender``, ``community_id``,
        ``street``, ``community_kind``, ``household_id``, ``registered_at``; items: ``item_id``
        (course) with the course columns and the ``street`` of its venue; interactions:
        ``user_id, item_id, timestamp`` (``occurred_at``), ``event``, ``weight`` (1.0),
        ``value``, ``event_id``, sorted by timestamp (stable).
    """
    bands = bands or AgeBands()
    sources = dict(sources or {})
    for table in TABLE_ORDER:
        if table not in tables:
            raise DatasetError(table, "table missing from the district data")
        sources.setdefault(table, _Source(table, "row", 1))
        _require(tables[table], TABLES[table].required, sources[table])

    communities = tables["communities"].reset_index(drop=True)
    src = sources["communities"]
    place = pd.DataFrame(
        {
            "community_id": _ids(communities, "community_id", src, unique=True),
            "street": communities["street"].astype("str").to_numpy(),
            "community_kind": communities["kind"].astype("str").to_numpy(),
        }
    )

    part = tables["participations"].reset_index(drop=True)
    src = sources["participations"]
    interactions = pd.DataFrame(
        {
            "user_id": _ids(part, "resident_id", src),
            "item_id": _ids(part, "course_id", src),
            "timestamp": _timestamps(part["occurred_at"], src, "occurred_at"),
            "event": part["event"].astype("str"),
            "weight": 1.0,
            "value": (
                _numbers(part, "value", src, "value").to_numpy() if "value" in part else np.nan
            ),
            "event_id": _ids(part, "event_id", src),
        }
    )
    unknown = ~interactions["event"].isin(EVENTS)
    if unknown.any():
        raise src.fail(
            "event",
            f"unknown event value {interactions['event'][unknown].iloc[0]!r} "
            f"(allowed: {', '.join(EVENTS)})",
            unknown.to_numpy(),
        )
    if not interactions["timestamp"].is_monotonic_increasing:  # exports are usually in order
        interactions = interactions.sort_values("timestamp", kind="stable", ignore_index=True)

    residents = tables["residents"].reset_index(drop=True)
    src = sources["residents"]
    users = residents.rename(columns={"resident_id": "user_id"})
    users["user_id"] = _ids(residents, "resident_id", src, unique=True)
    users["community_id"] = residents["community_id"].astype("str")
    birth = _numbers(residents, "birth_year", src, "birth_year")
    src.check("birth_year", "missing birth year", birth.isna().to_numpy())
    users["birth_year"] = birth.astype("int64")
    if "registered_at" in users:
        users["registered_at"] = _timestamps(residents["registered_at"], src, "registered_at")
    as_of = _reference_date(as_of, interactions, users)
    late = (birth > as_of.year).to_numpy()
    src.check("birth_year", f"born after the reference date {as_of}", late)
    users["age_band"] = pd.Series(bands.bands(birth.to_numpy(), as_of), dtype="str")
    users = users.merge(place, on="community_id", how="left")

    courses = tables["courses"].reset_index(drop=True)
    src = sources["courses"]
    items = courses.rename(columns={"course_id": "item_id"})
    items["item_id"] = _ids(courses, "course_id", src, unique=True)
    items["community_id"] = courses["community_id"].astype("str")
    for col in ("start_date", "end_date"):
        items[col] = _timestamps(courses[col], src, col)
    items = items.merge(place[["community_id", "street"]], on="community_id", how="left")

    users, added_users = _add_missing(users, "user_id", interactions["user_id"])
    items, added_items = _add_missing(items, "item_id", interactions["item_id"])
    meta = {"as_of": as_of.isoformat(), "added_users": added_users, "added_items": added_items,
            # names for explanations ("popular with elderly residents in 文康社区")
            "community_names": dict(zip(place["community_id"].tolist(),
                                        communities["name"].astype("str").tolist()))}
    return DataBundle(interactions, users, items, name, "district", meta)


def _reference_date(as_of, interactions: pd.DataFrame, users: pd.DataFrame) -> dt.date:
    if as_of is not None:
        try:
            return pd.Timestamp(as_of).date()
        except (ValueError, TypeError):
            raise ValueError(f"as_of must be a date or ISO date string, got {as_of!r}") from None
    candidates = [interactions["timestamp"].max()]
    if "registered_at" in users:
        candidates.append(users["registered_at"].max())
    known = [c for c in candidates if pd.notna(c)]
    return max(known).date() if known else dt.date.today()


# --------------------------------------------------------------------------- dispatch, summary


def load_dataset(folder, *, as_of=None, bands: AgeBands | None = None) -> DataBundle:
    """Load a district folder (it has a participations file) or a generic benchmark folder.

    ``as_of`` applies to district folders only (age bands of generic datasets come from the
    data). Raises :class:`DatasetError` when the folder is neither kind.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "not a folder")
    if any((folder / f"participations{ext}").exists() for ext in (".csv", ".parquet")):
        return load_district(folder, as_of, bands=bands)
    if (folder / "interactions.csv").exists():
        return load_benchmark(folder, bands=bands)
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

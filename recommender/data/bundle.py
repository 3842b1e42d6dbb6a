"""District tables -> :class:`~features.frames.DataBundle`: from a folder or from the store.

The four tables are checked by the importer's validator (:func:`recommender.data.validation.
validate_chunk`): the same value rules, the same time-zone rule, foreign keys that must point at
rows of the same data and keys that must not repeat. Where the importer rejects a row and goes
on, loading stops: the first bad row raises :class:`~recommender.data.reading.DatasetError`
naming the file, the column, the reason and every line that fails the same way.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.bands import AgeBands
from features.frames import DataBundle
from recommender.data.files import TableFileError, find_table_files
from recommender.data.keys import KnownKeys, SeenKeys
from recommender.data.reading import DatasetError, Source, read_csv, require_columns
from recommender.data.timestamps import district_now
from recommender.data.validation import validate_chunk
from recommender.domain import DISTRICT_TIMEZONE, TABLE_ORDER, TABLES

__all__ = ["bundle_from_tables", "load_district", "validate_tables"]


def load_district(folder, as_of: dt.date | str | None = None, *, bands: AgeBands | None = None,
                  timezone: str = DISTRICT_TIMEZONE) -> DataBundle:
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
    timezone : str
        District time zone; see :func:`bundle_from_tables`.

    Returns
    -------
    DataBundle
        ``kind="district"``; errors name the file and its CSV line (or Parquet row).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "not a folder")
    try:
        files = find_table_files(folder, TABLE_ORDER)
    except TableFileError as exc:
        raise DatasetError(exc.path, exc.reason) from None
    tables = {table: _read_table(table, path) for table, path in files.items()}
    sources = {table: Source.of(path) for table, path in files.items()}
    bundle = bundle_from_tables(tables, as_of, name=folder.name, bands=bands, sources=sources,
                                timezone=timezone)
    bundle.meta["source"] = str(folder)
    return bundle


def _read_table(table: str, path: Path) -> pd.DataFrame:
    """A table file as a frame: every district column of a CSV as text, for the validator."""
    if path.suffix == ".csv":
        return read_csv(path, TABLES[table].column_names)
    try:
        return pd.read_parquet(path).reset_index(drop=True)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DatasetError(path, f"unreadable Parquet file ({exc})") from None


def bundle_from_tables(
    tables: dict[str, pd.DataFrame],
    as_of: dt.date | str | None = None,
    *,
    name: str = "district",
    bands: AgeBands | None = None,
    sources: dict[str, Source] | None = None,
    timezone: str = DISTRICT_TIMEZONE,
) -> DataBundle:
    """Map the four district tables (from files or from the store) onto a :class:`DataBundle`.

    This is the one place the district -> bundle mapping lives.

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
    timezone : str
        District time zone: a date-time with a UTC offset is converted to it; one without an
        offset is district time already.

    Returns
    -------
    DataBundle
        users: ``user_id`` (resident), ``birth_year``, ``age_band``, ``gender``, ``community_id``,
        ``street``, ``community_kind``, ``household_id``, ``registered_at``; items: ``item_id``
        (course) with the course columns and the ``street`` of its venue; interactions:
        ``user_id, item_id, timestamp`` (``occurred_at``), ``event``, ``weight`` (1.0),
        ``value``, ``event_id``, sorted by timestamp (stable).

    Raises
    ------
    DatasetError
        A table or a required column is missing, or a row breaks a rule of the validator (the
        file, column, reason and lines are named), or a resident is born after ``as_of``.
    """
    bands = bands or AgeBands()
    sources = {t: (sources or {}).get(t) or Source(t, "row", 1) for t in TABLE_ORDER}
    valid = validate_tables(tables, sources, timezone)
    places = _places(valid["communities"])
    interactions = _interactions(valid["participations"])
    users = valid["residents"].rename(columns={"resident_id": "user_id"})
    users["birth_year"] = users["birth_year"].astype("int64")  # required, so never missing
    as_of = _reference_date(as_of, interactions, users, timezone)
    late = (users["birth_year"] > as_of.year).to_numpy()
    sources["residents"].check("birth_year", f"born after the reference date {as_of}", late)
    users["age_band"] = pd.Series(bands.bands(users["birth_year"].to_numpy(), as_of),
                                  dtype="str")
    users = users.merge(places, on="community_id", how="left")
    items = valid["courses"].rename(columns={"course_id": "item_id"})
    items = items.merge(places[["community_id", "street"]], on="community_id", how="left")
    meta = {"as_of": as_of.isoformat(),
            # names for explanations (深受文康社区老年人欢迎)
            "community_names": dict(zip(places["community_id"].tolist(),
                                        valid["communities"]["name"].tolist()))}
    return DataBundle(interactions, users, items, name, "district", meta)


def validate_tables(tables: dict[str, pd.DataFrame], sources: dict[str, Source],
                    timezone: str = DISTRICT_TIMEZONE) -> dict[str, pd.DataFrame]:
    """Check the four district tables with the importer's validator; return them typed.

    Tables are checked in :data:`recommender.domain.TABLE_ORDER`, so a foreign key must point
    at a row of an earlier table. Columns the validator does not know are kept as they are;
    optional columns a table lacks stay absent.

    Raises
    ------
    DatasetError
        For the first failing row (its field and reason, with every line failing the same way).
    """
    known = KnownKeys()
    valid = {}
    for table in TABLE_ORDER:
        if table not in tables:
            raise DatasetError(table, "table missing from the district data")
        spec, src = TABLES[table], sources[table]
        frame = tables[table].reset_index(drop=True)
        require_columns(frame, spec.required, src)
        given = [c for c in spec.column_names if c in frame]
        columns = {c: _as_arrow(frame[c]) for c in given}
        lines = np.arange(len(frame), dtype=np.int64) + src.offset
        result = validate_chunk(spec, columns, lines, known, _seen_keys(columns[spec.key]),
                                timezone=timezone, arrow_text=True)
        if len(result.rejects):
            rejects = result.rejects
            first = rejects.loc[rejects["line"].idxmin()]
            same = rejects[(rejects["field"] == first["field"])
                           & (rejects["reason"] == first["reason"])]
            raise src.fail_lines(first["field"], first["reason"], same["line"])
        known.add(table, result.frame[spec.key].to_numpy())
        extra = [c for c in frame.columns if c not in spec.column_names]
        valid[table] = pd.concat([result.frame[given], frame[extra]], axis=1)
    return valid


def _seen_keys(keys: pa.Array) -> SeenKeys | None:
    """What the validator checks a whole table's key column for repeats against: nothing when
    every key is distinct, else an empty :class:`SeenKeys`, so each repeat is reported with the
    line it repeats. Whether all are distinct is one sort of the keys and a comparison of
    neighbours: the validator's check sorts them twice as numpy byte strings, and Arrow's hash
    of 2.5M distinct event ids (``pc.unique``) was slower still."""
    if len(keys) < 2:
        return None
    ordered = keys.take(pc.sort_indices(keys))
    # nulls compare as null and are skipped: a missing key fails as required, never as a repeat
    differ = pc.not_equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    return None if pc.all(differ).as_py() is not False else SeenKeys()


def _as_arrow(values: pd.Series) -> pa.Array:
    """A frame column as the validator's input: typed where pandas typed it, else text."""
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # mixed objects: judge their text
        return pa.array([None if pd.isna(v) else str(v) for v in values], type=pa.string())


def _places(communities: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "community_id": communities["community_id"].to_numpy(),
        "street": communities["street"].astype("str").to_numpy(),
        "community_kind": communities["kind"].astype("str").to_numpy(),
    })


def _interactions(part: pd.DataFrame) -> pd.DataFrame:
    interactions = pd.DataFrame(
        {
            "user_id": part["resident_id"],
            "item_id": part["course_id"],
            "timestamp": part["occurred_at"],
            "event": part["event"],
            "weight": 1.0,
            "value": part["value"].to_numpy() if "value" in part else np.nan,
            "event_id": part["event_id"],
        }
    )
    if not interactions["timestamp"].is_monotonic_increasing:  # exports are usually in order
        interactions = interactions.sort_values("timestamp", kind="stable", ignore_index=True)
    return interactions


def _reference_date(as_of, interactions: pd.DataFrame, users: pd.DataFrame,
                    timezone: str) -> dt.date:
    if as_of is not None:
        try:
            return pd.Timestamp(as_of).date()
        except (ValueError, TypeError):
            raise ValueError(f"as_of must be a date or ISO date string, got {as_of!r}") from None
    candidates = [interactions["timestamp"].max()]
    if "registered_at" in users:
        candidates.append(users["registered_at"].max())
    known = [c for c in candidates if pd.notna(c)]
    return max(known).date() if known else district_now(timezone).date()

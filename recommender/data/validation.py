"""The one validator of the district tables: every value checked against `domain.TABLES`.

Three paths use it, so a row means the same wherever it comes from:

* the importer (:mod:`recommender.data.ingest`) hands it chunks of raw text cells (or typed
  Parquet columns): :func:`validate_chunk`;
* the dataset loader (:mod:`recommender.data.bundle`) hands it whole tables read from a folder
  or the store, and raises on the first bad row: :func:`validate_chunk` too;
* the events and residents endpoints (:mod:`recommender.serving.intake`) hand it JSON records:
  :func:`validate_records`, which checks the JSON types (strictly: no value is converted) and
  the keys, then runs the same column checks.

The per-value rules live here once. Text is accepted only in its canonical form (``12``, not
``12.0`` or `` 12``; ``2025-03-01``); an id is a string of at most
:data:`~recommender.domain.MAX_ID_LENGTH` characters without control characters or surrounding
spaces; an enum is one of its choices; a number is finite and within the column's range; dates
and date-times are ISO 8601 and not before :data:`~recommender.domain.EARLIEST_DATE`. Typed
columns (Parquet, store frames) are checked by value: a float column may hold an ``int`` column
if every value is whole, a timestamp may fill a date column at midnight.

Time stamps follow one rule, :func:`recommender.data.timestamps.to_district_time`: a value with
a UTC offset is converted to the district time zone and stored without one; a value without an
offset is district time.

Checks run field by field in the table's column order, and a row is reported once, for the
first field that fails; rules that involve two fields (a course's ``end_date`` against its
``start_date``, a rating's ``value`` against its ``event``: a rating needs one and nothing
else has one) run at the later field; a birth year in the future is judged by the district's
date, not the machine's. The work is
vectorised with pyarrow compute and pandas, so a chunk of 200k events takes a fraction of a
second.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.bands import BAND_NAMES
from recommender.data.arrow import as_bytes
from recommender.data.arrow import np_bool as _np_bool
from recommender.data.keys import KnownKeys, SeenKeys
from recommender.data.timestamps import district_now, to_district_time, within_range
from recommender.domain import (
    DISTRICT_TIMEZONE,
    EARLIEST_DATE,
    MAX_ID_LENGTH,
    TABLES,
    Column,
    TableSpec,
)

__all__ = ["ChunkResult", "MAX_TEXT", "MAX_VALUE_CHARS", "validate_chunk", "validate_records"]

# Widths of the store's VARCHAR columns (see recommender.data.store.schema._SQL_TYPES): PostgreSQL
# refuses longer values, so they are rejected here rather than failing a whole insert.
MAX_TEXT = {"id": MAX_ID_LENGTH, "enum": 32, "bands": 128}
MAX_VALUE_CHARS = 200  # a rejected cell is quoted in the report up to this length
_INT32 = (-(2**31), 2**31 - 1)  # the store's INTEGER columns are 32-bit on PostgreSQL
_INT_RE = r"^[+-]?[0-9]+$"  # size is checked against the range, with its own reason
_FLOAT_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME_RE = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
                r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$")
_CONTROL_RE = r"[\x00-\x1f]"


# -- results and failures -----------------------------------------------------------------
@dataclass
class ChunkResult:
    """The outcome of one validated chunk.

    ``frame`` holds the valid rows with typed columns (the form ``Store.insert`` takes: text as
    object arrays with ``None`` for missing, ``Int64`` integers, ``float64`` numbers with NaN,
    ``datetime64[ns]`` dates and date-times); ``rejects`` has one row per rejected row:
    ``line``, ``field``, ``reason``, ``value``.
    """

    frame: pd.DataFrame
    rejects: pd.DataFrame


class _Failures:
    """The first failing field of each row, filled check by check.

    The per-row text arrays are made at the first failure: a clean table of 10M rows (the
    loader validates whole tables) then costs one boolean array, not three of objects.
    """

    def __init__(self, n: int) -> None:
        self.failed = np.zeros(n, dtype=bool)
        self.field = self.reason = self.value = np.full(0, None, dtype=object)

    @property
    def ok(self) -> np.ndarray:
        return ~self.failed

    def add(self, mask: np.ndarray, field: str, reason, raw: pa.Array | None) -> None:
        """Mark rows in ``mask`` that have not failed yet; ``reason`` is a str or f(index)."""
        idx = np.flatnonzero(mask & ~self.failed)
        if not len(idx):
            return
        if len(self.field) != len(self.failed):
            n = len(self.failed)
            self.field, self.reason, self.value = (np.full(n, None, dtype=object)
                                                   for _ in range(3))
        self.failed[idx] = True
        self.field[idx] = field
        self.reason[idx] = reason(idx) if callable(reason) else reason
        if raw is not None:
            taken = raw.take(pa.array(idx))
            if not pa.types.is_string(taken.type):
                taken = pc.cast(taken, pa.string())
            self.value[idx] = [v if v is None or len(v) <= MAX_VALUE_CHARS
                               else v[:MAX_VALUE_CHARS] + "…" for v in taken.to_pylist()]


def _matches(raw: pa.Array, pattern: str) -> np.ndarray:
    return _np_bool(pc.match_substring_regex(raw, pattern))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _has_control(raw: pa.Array) -> np.ndarray:
    """Which cells hold a control character (below U+0020)."""
    # Printable ASCII cannot hold one; the regex runs only on the rest (typically none).
    suspect = ~_np_bool(pc.ascii_is_printable(raw))
    found = np.zeros(len(raw), dtype=bool)
    if suspect.any():
        found[suspect] = _matches(raw.filter(pa.array(suspect)), _CONTROL_RE)
    return found


def _as_text(raw: pa.Array) -> pa.Array:
    """Cells as text, ``""`` where missing (typed values in their plain text form)."""
    if not pa.types.is_string(raw.type):
        raw = pc.cast(raw, pa.string())
    return raw.fill_null("")


# -- the per-value rules, one function per kind of column ----------------------------------
def _check_text(col: Column, raw: pa.Array, fail: _Failures) -> tuple[pa.Array, np.ndarray]:
    """Ids, enums, band lists and free text: presence, width, and the rules of the kind."""
    name = col.name
    raw = _as_text(raw)
    present = ~_np_bool(pc.equal(raw, ""))
    if col.required:
        fail.add(~present, name, f"{name} is required", raw)
    if col.kind in MAX_TEXT:
        too_long = _np_bool(pc.greater(pc.utf8_length(raw), MAX_TEXT[col.kind]))
        fail.add(too_long, name, f"{name} is longer than {MAX_TEXT[col.kind]} characters", raw)
    if col.kind == "id":
        fail.add(_has_control(raw), name, f"{name} contains control characters", raw)
        padded = _np_bool(pc.not_equal(pc.utf8_trim_whitespace(raw), raw))
        fail.add(padded, name, f"{name} has spaces around it", raw)
    elif col.kind == "enum":
        ok = _np_bool(pc.is_in(raw, value_set=pa.array(col.choices)))
        fail.add(present & ~ok, name, f"{name} must be one of: {', '.join(col.choices)}", raw)
    elif col.kind == "bands":
        parts = pc.split_pattern(raw, "|")
        bad_part = ~_np_bool(pc.is_in(pc.list_flatten(parts), value_set=pa.array(BAND_NAMES)))
        bad = np.zeros(len(raw), dtype=bool)
        bad[pc.list_parent_indices(parts).to_numpy(zero_copy_only=False)[bad_part]] = True
        fail.add(present & bad, name,
                 f"{name} must be '|'-separated band names from: {', '.join(BAND_NAMES)}", raw)
    return raw, present


def _check_number(col: Column, raw: pa.Array, fail: _Failures):
    """Integers and numbers: well formed (text) or whole (typed floats), finite, in range."""
    name = col.name
    what = "an integer" if col.kind == "int" else "a number"
    if pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type) or pa.types.is_decimal(
            raw.type):
        values = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
        present = ~np.isnan(values)  # a typed NaN is a missing value (pandas writes gaps so)
        finite = np.isfinite(np.where(present, values, 0.0))
        well_formed = finite & ((values == np.floor(values)) if col.kind == "int" else True)
        well_formed &= present
    else:
        raw = _as_text(raw)
        present = ~_np_bool(pc.equal(raw, ""))
        well_formed = present & _matches(raw, _INT_RE if col.kind == "int" else _FLOAT_RE)
        text = pc.if_else(pa.array(well_formed), raw, "0")
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        well_formed &= np.isfinite(values)  # 1e999 is well formed text but no finite number
    if col.required:
        fail.add(~present, name, f"{name} is required", raw)
    fail.add(present & ~well_formed, name, f"{name} is not {what}", raw)
    lo, hi = col.min, col.max
    if col.kind == "int":
        lo = _INT32[0] if lo is None else max(lo, _INT32[0])
        hi = _INT32[1] if hi is None else min(hi, _INT32[1])
    if lo is not None:
        fail.add(well_formed & (values < lo), name, f"{name} must be at least {_fmt(lo)}", raw)
    if hi is not None:
        fail.add(well_formed & (values > hi), name, f"{name} must be at most {_fmt(hi)}", raw)
    if col.kind == "int":
        return pd.arrays.IntegerArray(np.where(well_formed, values, 0).astype(np.int64),
                                      ~well_formed)
    return np.where(well_formed, values, np.nan)


def _check_time(col: Column, raw: pa.Array, fail: _Failures, timezone: str) -> pd.Series:
    """Dates and date-times: ISO 8601 text or typed values, through :func:`to_district_time`."""
    name = col.name
    if pa.types.is_date(raw.type):
        raw = pc.cast(raw, pa.timestamp("s"))
    if pa.types.is_timestamp(raw.type):
        present = ~_np_bool(pc.is_null(raw))
        parsed = to_district_time(raw, timezone)
        well_formed = present & parsed.notna().to_numpy()
        if col.kind == "date":  # a date column filled with timestamps: only midnights are dates
            well_formed &= (parsed.dt.normalize() == parsed).to_numpy()
    else:
        raw = _as_text(raw)
        present = ~_np_bool(pc.equal(raw, ""))
        shaped = present & _matches(raw, _DATE_RE if col.kind == "date" else _DATETIME_RE)
        text = pc.if_else(pa.array(shaped), raw, pa.scalar(None, pa.string()))
        if col.kind == "date":
            parsed = within_range(pd.to_datetime(
                pd.Series(text.to_numpy(zero_copy_only=False), dtype=object), format="%Y-%m-%d",
                errors="coerce", cache=False))
        else:
            parsed = to_district_time(text, timezone)
        well_formed = shaped & parsed.notna().to_numpy()
    if col.required:
        fail.add(~present, name, f"{name} is required", raw)
    what = "a date (YYYY-MM-DD)" if col.kind == "date" else "an ISO 8601 date-time"
    fail.add(present & ~well_formed, name, f"{name} is not {what}", raw)
    early = well_formed & (parsed < pd.Timestamp(EARLIEST_DATE)).to_numpy(dtype=bool)
    fail.add(early, name, f"{name} is before {EARLIEST_DATE}, the earliest date accepted", raw)
    return parsed.where(well_formed).astype("datetime64[ns]")


def _check_keys(col: Column, spec: TableSpec, raw: pa.Array, present: np.ndarray,
                fail: _Failures, known: KnownKeys | None, seen: SeenKeys | None,
                lines: np.ndarray) -> None:
    """Foreign keys must point at known rows; a table's key must not repeat in a file."""
    name = col.name
    if col.references and known is not None:
        ok = known.contains(col.references, raw)
        fail.add(present & ~ok, name, f"unknown {name}: not in {col.references}", raw)
    if name == spec.key and seen is not None:
        _check_duplicates(name, raw, fail, seen, lines)


def _check_duplicates(name: str, raw: pa.Array, fail: _Failures, seen: SeenKeys,
                      lines: np.ndarray) -> None:
    """Later rows with a key met earlier in the file (this chunk or a previous one) fail."""
    candidates = np.flatnonzero(fail.ok)
    keys = as_bytes(raw.take(pa.array(candidates)))
    earlier = seen.first_lines(keys)
    # Within the chunk: sort stably, so each run of equal keys starts with its first line.
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    run_first = lines[candidates][order][np.flatnonzero(starts)[np.cumsum(starts) - 1]]
    first_line = np.empty(len(keys), dtype=np.int64)
    first_line[order] = run_first
    first = np.where(earlier > 0, earlier, first_line)
    dup = first != lines[candidates]
    mask = np.zeros(len(raw), dtype=bool)
    mask[candidates[dup]] = True
    by_row = np.zeros(len(raw), dtype=np.int64)
    by_row[candidates] = first
    fail.add(mask, name, lambda idx: [f"duplicate {name} (first on line {by_row[i]})"
                                      for i in idx], raw)
    new = (earlier == 0) & ~dup
    seen.add(keys[new], lines[candidates][new])


# Rules that involve two fields, run right after the later one (keyed by table and field);
# ``today`` is the district's date, for rules about the present.
def _end_after_start(typed, raw, fail: _Failures, today: dt.date) -> None:
    start, end = typed["start_date"], typed["end_date"]
    before = (end < start).fillna(False).to_numpy(dtype=bool)
    starts = _as_text(raw["start_date"])
    fail.add(before, "end_date",
             lambda idx: [f"end_date is before start_date ({starts[int(i)].as_py()})"
                          for i in idx], raw["end_date"])


def _value_for_rate(typed, raw, fail: _Failures, today: dt.date) -> None:
    """A rating needs its value, and only a rating has one (a value on a view means nothing)."""
    is_rate = _np_bool(pc.equal(_as_text(raw["event"]), "rate"))
    given = ~np.isnan(typed["value"])
    fail.add(is_rate & ~given, "value",
             "value (a rating 1-5) is required when event is 'rate'", raw["value"])
    fail.add(~is_rate & given, "value", "value is allowed only when event is 'rate'",
             raw["value"])


def _birth_year_not_future(typed, raw, fail: _Failures, today: dt.date) -> None:
    year = typed["birth_year"]
    future = (year > today.year).fillna(False).to_numpy(dtype=bool)
    fail.add(future, "birth_year", "birth_year is in the future", raw["birth_year"])


ROW_RULES: dict[tuple[str, str], Callable] = {
    ("courses", "end_date"): _end_after_start,
    ("participations", "value"): _value_for_rate,
    ("residents", "birth_year"): _birth_year_not_future,
}


# -- the two entry points -------------------------------------------------------------------
def validate_chunk(spec: TableSpec | str, columns: Mapping[str, pa.Array], lines,
                   known: KnownKeys | None, seen: SeenKeys | None = None, *,
                   timezone: str = DISTRICT_TIMEZONE, arrow_text: bool = False,
                   today: dt.date | None = None) -> ChunkResult:
    """Validate one chunk of a district table, column by column.

    Parameters
    ----------
    spec : TableSpec or str
        The table (or its name in :data:`recommender.domain.TABLES`).
    columns : mapping of str to pyarrow.Array
        Cells by column name: text (``""`` or null for an empty cell) or typed values (Parquet,
        store frames). A missing optional column may be left out. All arrays have the length of
        ``lines``.
    lines : array of int
        The file line (or row) number of each row, used in reasons and the report.
    known : KnownKeys or None
        Keys that foreign keys may point at (the caller adds the keys this chunk accepts);
        ``None`` skips the foreign-key check.
    seen : SeenKeys, optional
        Keys met earlier in the same file, updated in place; later duplicates are rejected.
    timezone : str
        District time zone that date-times with an offset are converted to.
    arrow_text : bool
        Give text columns of the result as pandas' Arrow-backed ``str`` dtype (what an in-memory
        bundle wants) instead of Python objects (what ``Store.insert`` converts fastest).
    today : date, optional
        The district's date, for the rules about the present (a birth year in the future);
        default: today in ``timezone``, whatever the zone of the machine.

    Returns
    -------
    ChunkResult
        The valid rows, typed, and one rejection per invalid row.
    """
    return _validate(spec, dict(columns), lines, known, seen, timezone, {}, arrow_text,
                     today or district_now(timezone).date())


def validate_records(spec: TableSpec | str, records: Sequence[Mapping], *,
                     known: KnownKeys | None = None, timezone: str = DISTRICT_TIMEZONE,
                     today: dt.date | None = None) -> ChunkResult:
    """Validate JSON-like records (one dict per row) with the same rules as :func:`validate_chunk`.

    A JSON value is taken only in the type its column needs, never converted: ``true`` is no
    rating, ``"5"`` no number and ``1740819600`` no time. A value of the wrong type (a number
    for an id, text, a boolean, NaN or an infinity for a number) fails with its own reason, at
    its place in the column order; a key that is not a column of the table fails the record
    before any column (``rating`` for ``value`` is a mistake to show, not a field to ignore);
    everything else is checked by the column rules.
    ``line`` in the rejections is the record's 0-based position in ``records``. Datetime fields
    may also be given as ``datetime`` objects (aware ones follow the offset rule).
    """
    spec = TABLES[spec] if isinstance(spec, str) else spec
    columns: dict[str, pa.Array] = {}
    wrong_type: dict[str, tuple[np.ndarray, str]] = {}
    for name, bad in _unknown_keys(spec, records).items():
        # quoted: a key may hold anything, a newline included, and a reason is one line
        wrong_type[name] = (bad, f"{name!r} is not a field of {spec.name} (expected: "
                                 f"{', '.join(spec.column_names)})")
    for col in spec.columns:
        values = [record.get(col.name) for record in records]
        columns[col.name], bad, what = _record_cells(col, values)
        if bad.any():
            wrong_type[col.name] = (bad, f"{col.name} must be {what}")
    return _validate(spec, columns, np.arange(len(records)), known, None, timezone, wrong_type,
                     False, today or district_now(timezone).date())


def _unknown_keys(spec: TableSpec, records: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """Per key that is no column of ``spec``: the records whose first such key it is."""
    names = set(spec.column_names)
    found: dict[str, np.ndarray] = {}
    for i, record in enumerate(records):
        # a key is quoted in the answer: a long one is cut like a long value
        extra = [str(key)[:MAX_ID_LENGTH] for key in record if key not in names]
        if extra:
            first = sorted(extra)[0]
            found.setdefault(first, np.zeros(len(records), dtype=bool))[i] = True
    return found


def _record_cells(col: Column, values: list) -> tuple[pa.Array, np.ndarray, str]:
    """One column of JSON values as cells the column checks read, and where the type is wrong."""
    if col.kind in ("int", "float"):
        # NaN and infinities are no JSON numbers (a typed column's NaN would mean "missing").
        ok = [v is None or (isinstance(v, int | float | np.number)
                            and not isinstance(v, bool | np.bool_) and math.isfinite(v))
              for v in values]
        cells = [float(v) if good and v is not None else None for v, good in zip(values, ok)]
        what = "an integer" if col.kind == "int" else "a number"
        return pa.array(cells, type=pa.float64()), ~np.asarray(ok), what
    if col.kind in ("date", "datetime"):
        ok = [v is None or isinstance(v, str | dt.date) for v in values]
        cells = [v.isoformat() if isinstance(v, dt.date) else v if good else None
                 for v, good in zip(values, ok)]
        return (pa.array(cells, type=pa.string()), ~np.asarray(ok),
                "an ISO 8601 date-time string" if col.kind == "datetime"
                else "a date string (YYYY-MM-DD)")
    ok = [v is None or isinstance(v, str) for v in values]
    cells = [v if good else None for v, good in zip(values, ok)]
    return pa.array(cells, type=pa.string()), ~np.asarray(ok), "a string"


def _validate(spec: TableSpec | str, columns: dict[str, pa.Array], lines, known, seen,
              timezone: str, wrong_type: dict[str, tuple[np.ndarray, str]],
              arrow_text: bool, today: dt.date) -> ChunkResult:
    spec = TABLES[spec] if isinstance(spec, str) else spec
    lines = np.asarray(lines, dtype=np.int64)
    n = len(lines)
    fail = _Failures(n)
    for name in set(wrong_type) - set(spec.column_names):  # keys that are no column: first
        bad, reason = wrong_type[name]
        fail.add(bad, name, reason, None)
    raw: dict[str, pa.Array] = {}
    typed: dict[str, object] = {}
    for col in spec.columns:
        arr = columns.get(col.name)
        if arr is None:
            arr = pa.nulls(n, type=pa.string())
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if pa.types.is_null(arr.type) or pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        if len(arr) != n:
            raise ValueError(f"column {col.name!r} has {len(arr)} cells for {n} lines")
        if col.name in wrong_type:
            bad, reason = wrong_type[col.name]
            fail.add(bad, col.name, reason, None)
        raw[col.name] = arr
        typed[col.name] = _check_column(col, spec, arr, fail, known, seen, lines, timezone)
        rule = ROW_RULES.get((spec.name, col.name))
        if rule is not None:
            rule(typed, raw, fail, today)
    ok = fail.ok
    frame = pd.DataFrame({col.name: _take(typed[col.name], ok, arrow_text)
                          for col in spec.columns})
    bad = np.flatnonzero(~ok)
    rejects = pd.DataFrame({"line": lines[bad], "field": fail.field[bad],
                            "reason": fail.reason[bad], "value": fail.value[bad]})
    return ChunkResult(frame, rejects)


def _check_column(col: Column, spec: TableSpec, raw: pa.Array, fail: _Failures,
                  known: KnownKeys | None, seen: SeenKeys | None, lines: np.ndarray,
                  timezone: str):
    """Validate one column; return its typed values (NaN/null/NaT where empty)."""
    if col.kind in ("int", "float"):
        return _check_number(col, raw, fail)
    if col.kind in ("date", "datetime"):
        return _check_time(col, raw, fail, timezone)
    text, present = _check_text(col, raw, fail)
    _check_keys(col, spec, text, present, fail, known, seen, lines)
    if col.required:
        return text
    return pc.if_else(pa.array(present), text, pa.scalar(None, pa.string()))


def _take(values, mask: np.ndarray, arrow_text: bool):
    """The kept rows of one typed column (text as Python objects unless ``arrow_text``)."""
    if isinstance(values, pd.Series):
        return pd.Series(values.to_numpy()[mask])
    if isinstance(values, pa.Array):
        kept = values if mask.all() else values.filter(pa.array(mask))
        if arrow_text:
            return kept.to_pandas()
        # Python objects: Arrow strings would reach the store, which converts them back to
        # Python str cell by cell.
        return pd.Series(kept.to_numpy(zero_copy_only=False), dtype=object)
    return values[mask]

"""Row validation for district imports: every cell checked against `domain.TABLES`.

The importer (:mod:`recommender.data.ingest`) reads a file in chunks of raw text cells and hands each
chunk to :func:`validate_chunk`, which returns the rows that may be stored (typed, ready for
:meth:`recommender.data.store.Store.insert`) and one rejection per bad row. Nothing is coerced: a cell
is accepted only in its canonical text form (``12``, not ``12.0`` or `` 12``; ``2025-03-01``;
ISO 8601 date-times without a timezone offset, because the store keeps the district's local
time and an offset would have to be silently dropped or converted).

Checks run field by field in the table's column order, and a row is reported once, for the
first field that fails; rules that involve two fields (a course's ``end_date`` against its
``start_date``, a rating's ``value`` against its ``event``) run at the later field. The work is
vectorised with pyarrow compute and pandas, so a chunk of 200k events takes a fraction of a
second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.bands import BAND_NAMES
from recommender.domain import TABLES, Column, TableSpec

__all__ = ["KnownKeys", "SeenKeys", "ChunkResult", "validate_chunk", "MAX_TEXT"]

# Widths of the store's VARCHAR columns (see recommender.data.store._SQL_TYPES): PostgreSQL refuses
# longer values, so they are rejected here rather than failing a whole insert.
MAX_TEXT = {"id": 64, "enum": 32, "bands": 128}
_INT32 = (-(2**31), 2**31 - 1)  # the store's INTEGER columns are 32-bit on PostgreSQL
_INT_RE = r"^[+-]?[0-9]+$"  # size is checked against the range, with its own reason
_FLOAT_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?$"
_OFFSET_RE = r"[T ][0-9:.]+(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
MAX_VALUE_CHARS = 200  # a rejected cell is quoted in the report up to this length


class KnownKeys:
    """Keys a foreign key may point at: rows accepted in this import plus keys already stored.

    Keys accepted from the files are added as they are validated; a value not among them is
    looked up in the store once and remembered, so an import of new events that refer to
    residents stored by an earlier import is valid.
    """

    def __init__(self, store) -> None:
        self.store = store
        self._keys: dict[str, list[pa.Array]] = {}
        self._combined: dict[str, pa.Array] = {}

    def add(self, table: str, keys) -> None:
        """Remember ``keys`` (any sequence of str) as existing in ``table``."""
        arr = pa.array(np.asarray(keys, dtype=object), type=pa.string())
        if len(arr):
            self._keys.setdefault(table, []).append(arr)
            self._combined.pop(table, None)

    def _value_set(self, table: str) -> pa.Array:
        if table not in self._combined:
            chunks = self._keys.get(table) or [pa.array([], type=pa.string())]
            self._combined[table] = pa.concat_arrays(chunks).unique()
        return self._combined[table]

    def contains(self, table: str, values: pa.Array) -> np.ndarray:
        """Boolean mask: which ``values`` are keys of ``table`` (empty strings count as absent)."""
        found = _np_bool(pc.is_in(values, value_set=self._value_set(table)))
        missing = ~found & _np_bool(pc.not_equal(values, ""))
        if missing.any():
            unknown = pc.unique(values.filter(pa.array(missing))).to_pylist()
            stored = self.store.existing_keys(table, unknown)
            if stored:
                self.add(table, sorted(stored))
                found |= _np_bool(pc.is_in(values, value_set=pa.array(sorted(stored))))
        return found


class SeenKeys:
    """The keys met so far in one file and the line of each first occurrence.

    Held as a sorted fixed-width byte array rather than a Python set: for 10M event ids this
    is ~0.2 GB instead of over 1 GB, and lookups stay vectorised (``np.searchsorted``).
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype="S1")
        self._lines = np.empty(0, dtype=np.int64)

    def first_lines(self, keys: np.ndarray) -> np.ndarray:
        """For byte-string ``keys``: the line where each was first seen, or 0 if new."""
        if not len(self._keys) or not len(keys):
            return np.zeros(len(keys), dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, len(self._keys) - 1)
        hit = (pos < len(self._keys)) & (self._keys[pos_c] == keys)
        return np.where(hit, self._lines[pos_c], 0)

    def add(self, keys: np.ndarray, lines: np.ndarray) -> None:
        """Record new, mutually distinct byte-string ``keys`` first seen on ``lines``."""
        if not len(keys):
            return
        width = max(self._keys.dtype.itemsize, keys.dtype.itemsize)
        keys = keys.astype(f"S{width}")
        order = np.argsort(keys, kind="stable")
        keys, lines = keys[order], lines[order]
        base = self._keys.astype(f"S{width}")
        pos = np.searchsorted(base, keys)
        self._keys = np.insert(base, pos, keys)
        self._lines = np.insert(self._lines, pos, lines)


@dataclass
class ChunkResult:
    """The outcome of one validated chunk.

    ``frame`` holds the valid rows with typed columns (the form ``Store.insert`` takes);
    ``rejects`` has one row per rejected row: ``line``, ``field``, ``reason``, ``value``.
    """

    frame: pd.DataFrame
    rejects: pd.DataFrame


class _Failures:
    """The first failing field of each row, filled check by check."""

    def __init__(self, n: int) -> None:
        self.field = np.full(n, None, dtype=object)
        self.reason = np.full(n, None, dtype=object)
        self.value = np.full(n, None, dtype=object)
        self.failed = np.zeros(n, dtype=bool)

    @property
    def ok(self) -> np.ndarray:
        return ~self.failed

    def add(self, mask: np.ndarray, field: str, reason, raw: pa.Array | None) -> None:
        """Mark rows in ``mask`` that have not failed yet; ``reason`` is a str or f(index)."""
        idx = np.flatnonzero(mask & ~self.failed)
        if not len(idx):
            return
        self.failed[idx] = True
        self.field[idx] = field
        self.reason[idx] = reason(idx) if callable(reason) else reason
        if raw is not None:
            vals = raw.take(pa.array(idx)).to_pylist()
            self.value[idx] = [v if len(v) <= MAX_VALUE_CHARS else v[:MAX_VALUE_CHARS] + "…"
                               for v in vals]


def _np_bool(arr) -> np.ndarray:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _matches(raw: pa.Array, pattern: str) -> np.ndarray:
    return _np_bool(pc.match_substring_regex(raw, pattern))


def _as_bytes(raw: pa.Array) -> np.ndarray:
    """UTF-8 keys as a fixed-width numpy byte array (exact, compact, sortable)."""
    values = raw.cast(pa.binary()).to_numpy(zero_copy_only=False)
    return values.astype("S") if len(values) else np.empty(0, dtype="S1")


def _check_column(col: Column, spec: TableSpec, raw: pa.Array, fail: _Failures,
                  known: KnownKeys, seen: SeenKeys | None, lines: np.ndarray):
    """Validate one column; return its typed values (NaN/None where empty)."""
    n = len(raw)
    name = col.name
    empty = _np_bool(pc.equal(raw, ""))
    present = ~empty
    if col.required:
        fail.add(empty, name, f"{name} is required", raw)
    if col.kind in MAX_TEXT:
        too_long = _np_bool(pc.greater(pc.utf8_length(raw), MAX_TEXT[col.kind]))
        fail.add(too_long, name, f"{name} is longer than {MAX_TEXT[col.kind]} characters", raw)

    if col.kind == "enum":
        ok = _np_bool(pc.is_in(raw, value_set=pa.array(col.choices)))
        fail.add(present & ~ok, name, f"{name} must be one of: {', '.join(col.choices)}", raw)
    elif col.kind == "bands":
        parts = pc.split_pattern(raw, "|")
        bad_part = ~_np_bool(pc.is_in(pc.list_flatten(parts), value_set=pa.array(BAND_NAMES)))
        bad = np.zeros(n, dtype=bool)
        bad[_np_parents(parts)[bad_part]] = True
        fail.add(present & bad, name,
                 f"{name} must be '|'-separated band names from: {', '.join(BAND_NAMES)}", raw)

    if col.kind in ("int", "float"):
        pattern, what = (_INT_RE, "an integer") if col.kind == "int" else (_FLOAT_RE, "a number")
        well_formed = _matches(raw, pattern)
        fail.add(present & ~well_formed, name, f"{name} is not {what}", raw)
        usable = present & well_formed
        text = pc.if_else(pa.array(usable), raw, "0")
        values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        lo, hi = col.min, col.max
        if col.kind == "int":
            lo = _INT32[0] if lo is None else max(lo, _INT32[0])
            hi = _INT32[1] if hi is None else min(hi, _INT32[1])
        if lo is not None:
            fail.add(usable & (values < lo), name, f"{name} must be at least {_fmt(lo)}", raw)
        if hi is not None:
            fail.add(usable & (values > hi), name, f"{name} must be at most {_fmt(hi)}", raw)
        if col.kind == "int":
            return pd.arrays.IntegerArray(np.where(usable, values, 0).astype(np.int64), ~usable)
        return np.where(usable, values, np.nan)

    if col.kind in ("date", "datetime"):
        shape = _DATE_RE if col.kind == "date" else _DATETIME_RE
        if col.kind == "datetime":
            offset = _matches(raw, _OFFSET_RE)
            fail.add(present & offset, name,
                     f"{name} has a timezone offset; give the local time without one", raw)
        well_formed = _matches(raw, shape)
        text = pd.Series(np.where(present & well_formed, raw.to_numpy(zero_copy_only=False),
                                  None), dtype=object)
        fmt = "%Y-%m-%d" if col.kind == "date" else "ISO8601"
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", cache=False)
        what = "a date (YYYY-MM-DD)" if col.kind == "date" else "an ISO 8601 date-time"
        fail.add(present & parsed.isna().to_numpy(), name, f"{name} is not {what}", raw)
        return parsed

    values = raw.to_numpy(zero_copy_only=False)
    if col.references:
        ok = known.contains(col.references, raw)
        fail.add(present & ~ok, name,
                 f"unknown {name}: not in {col.references} (this import or the store)", raw)
    if name == spec.key and seen is not None:
        _check_duplicates(name, raw, fail, seen, lines)
    if not col.required:
        values = np.where(present, values, None)
    return values


def _check_duplicates(name: str, raw: pa.Array, fail: _Failures, seen: SeenKeys,
                      lines: np.ndarray) -> None:
    """Later rows with a key met earlier in the file (this chunk or a previous one) fail."""
    candidates = np.flatnonzero(fail.ok)
    keys = _as_bytes(raw.take(pa.array(candidates)))
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


def _np_parents(parts: pa.Array) -> np.ndarray:
    return pc.list_parent_indices(parts).to_numpy(zero_copy_only=False)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# Rules that involve two fields, run right after the later one (keyed by table and field).
def _end_after_start(typed, raw, fail: _Failures) -> None:
    start, end = typed["start_date"], typed["end_date"]
    before = (end < start).fillna(False).to_numpy(dtype=bool)
    starts = raw["start_date"]
    fail.add(before, "end_date",
             lambda idx: [f"end_date is before start_date ({starts[int(i)].as_py()})"
                          for i in idx], raw["end_date"])


def _value_for_rate(typed, raw, fail: _Failures) -> None:
    is_rate = _np_bool(pc.equal(raw["event"], "rate"))
    fail.add(is_rate & np.isnan(typed["value"]), "value",
             "value (a rating 1-5) is required when event is 'rate'", raw["value"])


def _birth_year_not_future(typed, raw, fail: _Failures) -> None:
    year = typed["birth_year"]
    future = (year > dt.date.today().year).fillna(False).to_numpy(dtype=bool)
    fail.add(future, "birth_year", "birth_year is in the future", raw["birth_year"])


ROW_RULES: dict[tuple[str, str], Callable] = {
    ("courses", "end_date"): _end_after_start,
    ("participations", "value"): _value_for_rate,
    ("residents", "birth_year"): _birth_year_not_future,
}


def validate_chunk(spec: TableSpec | str, columns: dict[str, pa.Array], lines: np.ndarray,
                   known: KnownKeys, seen: SeenKeys | None = None) -> ChunkResult:
    """Validate one chunk of raw text cells of a district table.

    Parameters
    ----------
    spec : TableSpec or str
        The table (or its name in :data:`recommender.domain.TABLES`).
    columns : dict of str to pyarrow.StringArray
        Raw cells by column name, ``""`` for an empty cell; a missing optional column may be
        left out. All arrays have the length of ``lines``.
    lines : numpy.ndarray of int
        The file line (or Parquet row) number of each row, used in reasons and the report.
    known : KnownKeys
        Keys that foreign keys may point at; the caller adds the keys this chunk accepts.
    seen : SeenKeys, optional
        Keys met earlier in the same file, updated in place; later duplicates are rejected.

    Returns
    -------
    ChunkResult
        The valid rows, typed, and one rejection per invalid row.
    """
    spec = TABLES[spec] if isinstance(spec, str) else spec
    lines = np.asarray(lines, dtype=np.int64)
    n = len(lines)
    fail = _Failures(n)
    raw: dict[str, pa.Array] = {}
    typed: dict[str, object] = {}
    for col in spec.columns:
        arr = columns.get(col.name)
        if arr is None:
            arr = pa.array([""] * n, type=pa.string())
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        if len(arr) != n:
            raise ValueError(f"column {col.name!r} has {len(arr)} cells for {n} lines")
        raw[col.name] = arr
        typed[col.name] = _check_column(col, spec, arr, fail, known, seen, lines)
        rule = ROW_RULES.get((spec.name, col.name))
        if rule is not None:
            rule(typed, raw, fail)
    ok = fail.ok
    frame = pd.DataFrame({col.name: _take(typed[col.name], ok, col.kind) for col in spec.columns})
    bad = ~ok
    rejects = pd.DataFrame({"line": lines[bad], "field": fail.field[bad],
                            "reason": fail.reason[bad], "value": fail.value[bad]})
    return ChunkResult(frame, rejects)


def _take(values, mask: np.ndarray, kind: str):
    """The kept rows of one typed column, in the form ``Store.insert`` converts fastest."""
    if isinstance(values, pd.Series):
        kept = values.to_numpy()[mask]
        if kind == "date":  # datetime.date objects take the store's no-conversion path
            return pd.Series(kept).dt.date.to_numpy()
        return pd.Series(kept)
    if isinstance(values, np.ndarray) and values.dtype == object:
        # Kept as object: pandas 3 would otherwise copy text into Arrow strings, which the
        # store then converts back to Python str cell by cell.
        return pd.Series(values[mask], dtype=object)
    return values[mask]

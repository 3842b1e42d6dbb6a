"""Validated import of a district folder into the store (``recommender import``).

A district folder holds one file per table of :data:`recommender.domain.TABLES`:
``communities``, ``residents``, ``courses`` and ``participations``, each as ``<name>.csv``
(UTF-8, header row, an optional byte-order mark) or ``<name>.parquet``. Tables are loaded in
:data:`recommender.domain.TABLE_ORDER`, so foreign keys may point at rows of this import or at
rows already in the store.

What the report says (data is precious: nothing is dropped or coerced silently):

- every rejected row appears once in ``ImportReport.rejected`` as ``{"file", "line", "field",
  "reason", "value"}``, for the **first** field that fails in column order (fix it and re-import:
  the row is then checked again from the start). ``field`` is ``None`` for problems with the row
  itself (invalid UTF-8, wrong number of fields, malformed quoting);
- ``line`` is the 1-based line of the file, the header being line 1 (for a quoted value that
  spans lines, the line where the row starts); for Parquet files it is the 1-based row number;
- per table, ``accepted`` rows were newly stored, ``duplicate`` rows were valid but their key
  was already stored (so re-importing a folder changes nothing), ``rejected`` rows failed;
- a key repeated inside a file keeps its first row; later rows are rejected as duplicates;
- unknown extra columns are ignored with a warning; a missing file or required column makes
  the whole folder unusable (:class:`UnusableInput`, exit code 2 in the CLI).

CSV files are read in chunks of lines. A chunk whose lines are all valid UTF-8 with balanced
quotes is parsed by pyarrow (fast); any other chunk goes through the ``csv`` module line by line,
so a broken UTF-8 line rejects that row only and a quoted value may contain newlines.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from recommender.data.files import TableFileError, find_table_files
from recommender.data.keys import KnownKeys, SeenKeys
from recommender.data.validation import MAX_VALUE_CHARS, validate_chunk
from recommender.domain import DISTRICT_TIMEZONE, TABLE_ORDER, TABLES, TableSpec

__all__ = ["UnusableInput", "TableSummary", "ImportReport", "import_folder"]

EXIT_OK, EXIT_REJECTED = 0, 3
_REJECT_COLUMNS = ["file", "line", "field", "reason", "value"]
# Tables that foreign keys point at: only their accepted keys need remembering.
_REFERENCED = {c.references for spec in TABLES.values() for c in spec.columns if c.references}


class UnusableInput(ValueError):
    """The folder cannot be imported at all (missing file or required column, unreadable file)."""


@dataclass
class TableSummary:
    """Counts for one table: newly stored, already stored, rejected rows; the file and time."""

    file: str
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicate + self.rejected


@dataclass
class ImportReport:
    """What :func:`import_folder` did.

    Attributes
    ----------
    folder : str
        The imported folder.
    tables : dict of str to TableSummary
        Per table, in load order.
    rejected : list of dict
        One ``{"file", "line", "field", "reason", "value"}`` per rejected row, file by file in
        load order, by line.
    warnings : list of str
        Things that did not stop the import (unknown columns).
    """

    folder: str
    tables: dict[str, TableSummary] = field(default_factory=dict)
    rejected: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every row was accepted (or already stored), 3 when some rows were rejected."""
        return EXIT_REJECTED if any(t.rejected for t in self.tables.values()) else EXIT_OK

    def to_dict(self) -> dict:
        """The JSON form written to ``report_path``."""
        return {
            "folder": self.folder,
            "tables": {
                name: {"accepted": t.accepted, "duplicate": t.duplicate, "rejected": t.rejected}
                for name, t in self.tables.items()
            },
            "rejected": self.rejected,
            "warnings": self.warnings,
        }

    def write(self, path) -> None:
        """Write the report as UTF-8 JSON (Chinese text kept readable)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n",
                        encoding="utf-8")

    def summary_text(self, max_rejects: int = 10) -> str:
        """A short human summary: a table of counts, warnings and the first rejected rows."""
        out = [f"{'table':<16}{'accepted':>10}{'duplicate':>11}{'rejected':>10}"]
        for name, t in self.tables.items():
            out.append(f"{name:<16}{t.accepted:>10}{t.duplicate:>11}{t.rejected:>10}")
        out += [f"warning: {w}" for w in self.warnings]
        for r in self.rejected[:max_rejects]:
            where = f"{r['file']}:{r['line']}"
            what = f" {r['field']}" if r["field"] else ""
            out.append(f"rejected {where}{what}: {r['reason']} (value {r['value']!r})")
        if len(self.rejected) > max_rejects:
            out.append(f"... and {len(self.rejected) - max_rejects} more rejected rows "
                       "(see the JSON report)")
        return "\n".join(out)


# -- locating files ---------------------------------------------------------------------------
def _table_files(folder) -> dict[str, Path]:
    """The file of each district table in ``folder``; an unusable folder raises."""
    try:
        return find_table_files(folder, TABLE_ORDER)
    except TableFileError as exc:
        raise UnusableInput(str(exc)) from None


def _check_header(spec: TableSpec, path: Path, names: list[str]) -> list[str]:
    """Raise on missing required / repeated columns; return warnings for unknown ones."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UnusableInput(f"{path.name}: column {repeated[0]!r} appears more than once")
    missing = [c for c in spec.required if c not in names]
    if missing:
        raise UnusableInput(f"{path.name}: missing required column {missing[0]!r} "
                            f"(required: {', '.join(spec.required)})")
    return [f"{path.name}: unknown column {n!r} ignored" for n in names
            if n not in spec.column_names]


# -- reading ----------------------------------------------------------------------------------
@dataclass
class _RawChunk:
    """Raw text cells of some rows, their line numbers, and rows rejected while parsing."""

    columns: dict[str, pa.Array]
    lines: np.ndarray
    problems: list[dict]
    progress: int  # bytes (CSV) or rows (Parquet) consumed


def _header(path: Path) -> list[str]:
    """The column names of a CSV or Parquet file."""
    if path.suffix == ".parquet":
        try:
            return pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowException, OSError) as exc:
            raise UnusableInput(f"{path.name}: not a readable Parquet file ({exc})") from exc
    with open(path, "rb") as fh:
        head = fh.readline()
    if not head.strip():
        raise UnusableInput(f"{path.name}: the file is empty (no header line)")
    try:
        text = head.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise UnusableInput(f"{path.name}: the header line is not valid UTF-8") from exc
    try:
        return [h.strip() for h in next(csv.reader([text], strict=True))]
    except csv.Error as exc:
        raise UnusableInput(f"{path.name}: the header line is malformed ({exc})") from exc


def _read_csv(spec: TableSpec, path: Path, header: list[str], chunk_rows: int
              ) -> Iterator[_RawChunk]:
    with open(path, "rb") as fh:
        pending = len(fh.readline())  # the header (checked by _header), for the progress bar
        wanted = [n for n in header if n in spec.column_names]
        line = 1
        while True:
            lines = list(islice(fh, chunk_rows))
            if not lines:
                return
            size, pending = sum(map(len, lines)) + pending, 0
            chunk = _parse_fast(header, wanted, lines, line + 1)
            if chunk is None:
                chunk, extra = _parse_slow(header, wanted, lines, fh, line + 1, path.name)
                size += extra[1]
                line += extra[0]
            line += len(lines)
            chunk.progress = size
            yield chunk


def _parse_fast(header: list[str], wanted: list[str], lines: list[bytes], first: int
                ) -> _RawChunk | None:
    """Parse a chunk with pyarrow when each line is exactly one row; else return None."""
    block = b"".join(lines)
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) < len(lines):  # the last line of the file has no newline
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1))
    if ((ends - starts == 0) | ((ends - starts == 1) & (buf[starts] == 13))).any():
        return None  # blank lines: pyarrow skips them, which would shift line numbers
    quotes = np.flatnonzero(buf == 34)
    if len(quotes) and (np.diff(np.searchsorted(quotes, np.append(-1, ends))) % 2).any():
        return None  # a quoted value may span lines (or a stray quote): parse line by line
    try:
        block.decode("utf-8")
        table = pa_csv.read_csv(
            io.BytesIO(block),
            read_options=pa_csv.ReadOptions(column_names=header, block_size=1 << 26),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in header}, include_columns=wanted,
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (UnicodeDecodeError, pa.ArrowInvalid):
        return None  # a broken line or a wrong number of fields: the slow path names it
    if table.num_rows != len(lines):
        return None
    columns = {n: table.column(n).combine_chunks() for n in wanted}
    return _RawChunk(columns, np.arange(first, first + len(lines), dtype=np.int64), [], 0)


def _parse_slow(header, wanted, lines, fh, first: int, file: str) -> tuple[_RawChunk, tuple]:
    """Parse a chunk with the csv module, tracking lines; may read on into ``fh``.

    Returns the chunk and ``(extra_lines, extra_bytes)`` read past the chunk to finish a row
    whose quoted value spans the chunk boundary.
    """
    state = {"line": first - 1, "bytes": 0}
    bad: dict[int, bytes] = {}
    chunk_end = first - 1 + len(lines)

    def source():
        for i, raw in enumerate(chain(lines, fh)):
            state["line"] += 1
            if i >= len(lines):
                state["bytes"] += len(raw)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                bad[state["line"]] = raw
                # Replacing keeps the quotes and delimiters, so the row's extent stays right.
                yield raw.decode("utf-8", errors="replace")

    reader = csv.reader(source(), strict=True)
    rows, row_lines, problems = [], [], []
    while state["line"] < chunk_end:
        start = state["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            span = f"line {start}" if state["line"] == start else f"lines {start}-{state['line']}"
            problems.append(_problem(file, start, f"malformed CSV ({exc}) in {span}", None))
            continue
        broken = [n for n in range(start, state["line"] + 1) if n in bad]
        if broken:
            raw = bad[broken[0]]
            problems.append(_problem(file, broken[0], "invalid UTF-8",
                                     raw.decode("utf-8", errors="backslashreplace").rstrip()))
            continue
        if not row:
            continue  # a blank line holds no row
        if len(row) != len(header):
            problems.append(_problem(file, start, f"expected {len(header)} fields, found "
                                     f"{len(row)}", ",".join(row)))
            continue
        rows.append(row)
        row_lines.append(start)
    index = [header.index(n) for n in wanted]
    columns = {n: pa.array([r[i] for r in rows], type=pa.string()) for n, i in zip(wanted, index)}
    chunk = _RawChunk(columns, np.asarray(row_lines, dtype=np.int64), problems, 0)
    return chunk, (max(0, state["line"] - chunk_end), state["bytes"])


def _problem(file: str, line: int, reason: str, value) -> dict:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        value = value[:MAX_VALUE_CHARS] + "…"
    return {"file": file, "line": int(line), "field": None, "reason": reason, "value": value}


def _read_parquet(spec: TableSpec, path: Path, header: list[str], chunk_rows: int
                  ) -> Iterator[_RawChunk]:
    pf = pq.ParquetFile(path)
    wanted = [n for n in header if n in spec.column_names]
    row = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
        # Typed columns go to the validator as they are: it checks values, not their text.
        columns = {n: batch.column(n) for n in wanted}
        lines = np.arange(row + 1, row + 1 + batch.num_rows, dtype=np.int64)
        row += batch.num_rows
        yield _RawChunk(columns, lines, [], batch.num_rows)


# -- orchestration ----------------------------------------------------------------------------
def import_folder(folder, store, report_path=None, progress: bool = False,
                  chunk_rows: int = 200_000, timezone: str = DISTRICT_TIMEZONE) -> ImportReport:
    """Validate a district folder and store its valid rows.

    Parameters
    ----------
    folder : str or Path
        Folder with ``communities``, ``residents``, ``courses`` and ``participations`` as
        ``.csv`` (UTF-8) or ``.parquet``.
    store : recommender.data.store.Store
        Where valid rows go (its schema must exist: :func:`recommender.data.store.open_store`).
        Keys already stored are counted as ``duplicate`` and left untouched.
    report_path : str or Path, optional
        Where to write the JSON report (``ImportReport.to_dict``).
    progress : bool
        Show a tqdm progress bar per table (on stderr).
    chunk_rows : int
        Rows validated and inserted at a time; bounds memory on large files.
    timezone : str
        District time zone: a date-time with a UTC offset is converted to it and stored without
        the offset; one without an offset is taken as district time.

    Returns
    -------
    ImportReport
        Counts per table, every rejected row, warnings; ``exit_code`` is 0 or 3.

    Raises
    ------
    UnusableInput
        A file or a required column is missing, or a file cannot be read at all. Tables
        before the unusable file may already be stored (re-importing is harmless).
    """
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows!r}")
    files = _table_files(folder)
    report = ImportReport(folder=str(folder))
    # Every header is checked before anything is stored: an unusable folder stores nothing.
    headers = {name: _header(path) for name, path in files.items()}
    for name, path in files.items():
        report.warnings += _check_header(TABLES[name], path, headers[name])
    known = KnownKeys(store)
    announce = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else None
    for name in TABLE_ORDER:
        with store.bulk_load(name, announce):
            report.tables[name] = _import_table(TABLES[name], files[name], headers[name],
                                                store, known, report, progress, int(chunk_rows),
                                                timezone)
    if report_path is not None:
        report.write(report_path)
    return report


def _import_table(spec: TableSpec, path: Path, header: list[str], store, known: KnownKeys,
                  report: ImportReport, progress: bool, chunk_rows: int,
                  timezone: str) -> TableSummary:
    t0 = time.perf_counter()
    summary = TableSummary(file=path.name)
    csv_file = path.suffix == ".csv"
    reader = (_read_csv if csv_file else _read_parquet)(spec, path, header, chunk_rows)
    total = path.stat().st_size if csv_file else pq.ParquetFile(path).metadata.num_rows
    bar = tqdm(total=total, desc=spec.name, unit="B" if csv_file else " rows",
               unit_scale=True, disable=not progress, leave=True)
    seen = SeenKeys()
    rejects = []
    not_utf8 = 0
    try:
        for chunk in reader:
            result = validate_chunk(spec, chunk.columns, chunk.lines, known, seen,
                                    timezone=timezone)
            if len(result.frame):
                inserted = store.insert(spec.name, result.frame)
                summary.accepted += inserted.inserted
                summary.duplicate += inserted.duplicates
                if spec.name in _REFERENCED:
                    known.add(spec.name, result.frame[spec.key].to_numpy())
            found = result.rejects.assign(file=path.name)[_REJECT_COLUMNS]
            found = pd.concat([pd.DataFrame(chunk.problems, columns=_REJECT_COLUMNS), found]
                              ) if chunk.problems else found
            summary.rejected += len(found)
            not_utf8 += sum(p["reason"] == "invalid UTF-8" for p in chunk.problems)
            if len(found):
                rejects.append(found.sort_values("line", kind="stable"))
            bar.update(chunk.progress)
    finally:
        bar.close()
    if not_utf8 and not_utf8 >= summary.rows / 2:
        report.warnings.append(f"{path.name}: {not_utf8} of {summary.rows} rows are not valid "
                               "UTF-8; was the file saved in another encoding (e.g. GBK)? "
                               "Save it as UTF-8 and import again")
    for frame in rejects:
        frame = frame.astype(object).where(frame.notna(), None)
        report.rejected += [
            {"file": f, "line": int(ln), "field": fd, "reason": r, "value": v}
            for f, ln, fd, r, v in frame.itertuples(index=False, name=None)
        ]
    summary.seconds = time.perf_counter() - t0
    return summary

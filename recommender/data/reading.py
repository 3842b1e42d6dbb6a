"""What the dataset loaders share: their error, the CSV reader and the row -> line mapping.

The generic benchmark loader (:mod:`recommender.data.generic`), the district loader
(:mod:`recommender.data.bundle`) and the OULAD adapter (:mod:`recommender.data.oulad`) report
bad input the same way: a :class:`DatasetError` naming the file, the column, the reason and the
first few line numbers (CSV lines count the header as line 1; Parquet and store frames are
reported by 1-based row).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.data.files import TableFileError, find_table_file

__all__ = ["DatasetError", "Source", "locate", "numbers", "read_csv", "require_columns"]

# How many offending line numbers an error message lists before summarising the rest.
_SHOWN = 5


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
class Source:
    """Where a frame came from, to turn row positions into the line numbers a person can find."""

    file: str
    unit: str = "line"  # "line" for CSV (header = line 1), "row" for Parquet and store frames
    offset: int = 2

    @classmethod
    def of(cls, path: Path) -> Source:
        """The source of a file: CSV lines (after the header) or Parquet rows."""
        return cls(str(path), "line", 2) if path.suffix == ".csv" else cls(str(path), "row", 1)

    def fail(self, column: str | None, reason: str, bad) -> DatasetError:
        """An error for the rows where ``bad`` is true (a boolean array over the frame)."""
        positions = np.flatnonzero(np.asarray(bad, dtype=bool))
        return self.fail_lines(column, reason, positions + self.offset)

    def fail_lines(self, column: str | None, reason: str, lines) -> DatasetError:
        """An error for the given line (or row) numbers."""
        lines = [int(n) for n in lines]
        shown = ", ".join(str(n) for n in lines[:_SHOWN])
        more = f" (and {len(lines) - _SHOWN} more of {len(lines)})" if len(lines) > _SHOWN else ""
        unit = self.unit if len(lines) == 1 else self.unit + "s"
        return DatasetError(self.file, f"{reason} on {unit} {shown}{more}", column, lines)

    def check(self, column: str | None, reason: str, bad) -> None:
        if np.any(np.asarray(bad, dtype=bool)):
            raise self.fail(column, reason, bad)


def locate(folder, name: str, formats=("csv",), required: bool = True) -> Path | None:
    """:func:`recommender.data.files.find_table_file`, its errors as :class:`DatasetError`."""
    try:
        return find_table_file(folder, name, formats, required=required)
    except TableFileError as exc:
        raise DatasetError(exc.path, exc.reason) from None


def read_csv(path: Path, text_columns=()) -> pd.DataFrame:
    """A CSV as a frame: ``text_columns`` stay text; only an empty cell counts as missing.

    ``keep_default_na=False`` keeps ids such as ``NA`` or ``null`` as the strings they are.
    """
    try:
        frame = pd.read_csv(
            path,
            dtype={c: str for c in text_columns},
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


def require_columns(frame: pd.DataFrame, columns, src: Source) -> None:
    """Raise naming the first of ``columns`` that ``frame`` lacks."""
    for col in columns:
        if col not in frame.columns:
            raise DatasetError(
                src.file,
                f"missing required column (found: {', '.join(map(str, frame.columns))})",
                col,
            )


def numbers(frame: pd.DataFrame, column: str, src: Source, what: str) -> pd.Series:
    """A numeric column; non-empty cells that are not finite numbers are errors."""
    raw = frame[column]
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    src.check(column, f"{what} is not a number", (raw.notna() & ~np.isfinite(num)).to_numpy())
    return num

"""Finding a table's file in a folder: the one place that knows ``<table>.csv`` / ``.parquet``.

The importer, the dataset loaders and the OULAD adapter all look for a table by its name; each
turns a :class:`TableFileError` into its own error type (``UnusableInput`` / ``DatasetError``)
so the wording of a missing or doubled file is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["TABLE_FORMATS", "TableFileError", "find_table_file", "find_table_files"]

# The formats a table may come in, in the order they are named in messages.
TABLE_FORMATS: tuple[str, ...] = ("csv", "parquet")


class TableFileError(ValueError):
    """A folder without a table's file, with two files for one table, or not a folder at all.

    ``path`` is the file (or folder) at fault and ``reason`` says what is wrong with it.
    """

    def __init__(self, path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def find_table_file(folder, name: str, formats: Iterable[str] = TABLE_FORMATS, *,
                    required: bool = True) -> Path | None:
    """The file of table ``name`` in ``folder``: ``<name>.<format>`` for one of ``formats``.

    Parameters
    ----------
    folder : path-like
        The folder to look in (it must exist).
    name : str
        The table's file stem, e.g. ``"participations"`` or ``"interactions"``.
    formats : iterable of str
        File extensions (without the dot) the table may have.
    required : bool
        Raise when the table has no file; otherwise return ``None``.

    Returns
    -------
    Path or None
        The one file of the table.

    Raises
    ------
    TableFileError
        If ``folder`` is not a folder, the table has files in two formats (which one is meant
        is unclear), or it has none and ``required`` is true.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TableFileError(folder, "not a folder (or it does not exist)")
    formats = tuple(formats)
    found = [folder / f"{name}.{ext}" for ext in formats if (folder / f"{name}.{ext}").is_file()]
    if len(found) > 1:
        raise TableFileError(found[0], f"both {found[0].name} and {found[1].name} are present; "
                                       "keep one")
    if not found:
        if required:
            others = " or ".join(f"{name}.{ext}" for ext in formats[1:])
            also = f" (nor {others})" if others else ""
            raise TableFileError(folder / f"{name}.{formats[0]}", f"file not found{also}")
        return None
    return found[0]


def find_table_files(folder, names: Iterable[str], formats: Iterable[str] = TABLE_FORMATS
                     ) -> dict[str, Path]:
    """The file of each table in ``names`` (all required), keyed by table name.

    See :func:`find_table_file` for the rules and the error raised.
    """
    formats = tuple(formats)
    return {name: find_table_file(folder, name, formats) for name in names}

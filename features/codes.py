"""Values -> their position in a vocabulary: the one lookup behind every categorical code.

Age bands, course categories, communities, profile attributes and the external ids of
:class:`features.ids.IdMapping` are all coded by :class:`Codebook`: a value's code is its position
in the vocabulary, and -1 marks a missing value (None, NaN, NA, an empty string) or one the
vocabulary does not hold. Serving codes one request's values at a time, so a handful of values
is looked up in a dict; a column of millions hashes each distinct value once.
:class:`Vocabulary` holds the codebooks that training and serving share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.bands import BAND_NAMES

__all__ = [
    "MAX_ATTRIBUTE_VALUES",
    "Codebook",
    "Vocabulary",
    "as_str_array",
    "band_codes",
    "codes",
    "distinct",
    "profile_attributes",
]

# Up to this many values a Python dict answers faster than pandas' index machinery, whose fixed
# cost per call (~0.5 ms) dominates a serving request.
_DICT_LOOKUP_MAX = 1_000
# Users' columns that are identifiers or dates, never profile attributes.
_NOT_ATTRIBUTES = {"user_id", "resident_id", "household_id", "registered_at"}
# A profile attribute has a few values (gender, region, education band), not one per user.
MAX_ATTRIBUTE_VALUES = 64


def as_str_array(values) -> np.ndarray:
    """Unicode numpy array (never an object array, so it can be saved without pickle)."""
    arr = np.asarray(values)
    if arr.dtype.kind != "U":
        arr = arr.astype(str)
    return arr


def distinct(values) -> np.ndarray:
    """Sorted distinct values as a unicode array, without missing values and empty strings."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.remove_unused_categories().cat.categories
    uniq = pd.unique(pd.Series(values).dropna())
    if not len(uniq):
        return np.array([], dtype="<U1")
    out = np.unique(as_str_array(uniq))
    return out[out != ""]


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float | np.floating) and value != value)


class Codebook:
    """A fixed vocabulary and the lookup of values in it.

    Parameters
    ----------
    vocabulary : sequence of str
        Distinct values; the value at position ``k`` gets code ``k``.

    Attributes
    ----------
    vocabulary : ndarray of str
    """

    def __init__(self, vocabulary):
        self.vocabulary = as_str_array(vocabulary)
        self._index = pd.Index(self.vocabulary)
        self._position: dict[str, int] | None = None  # built on the first small lookup

    def __len__(self) -> int:
        return len(self.vocabulary)

    def codes(self, values) -> np.ndarray:
        """Code (int64) of each value: its position in the vocabulary, -1 if missing or unknown.

        Parameters
        ----------
        values : str, sequence, ndarray, Series or Index
            Non-text values are compared by their text (``5`` matches ``"5"``).

        Returns
        -------
        ndarray of int64, one code per value (a single str gives one code).
        """
        if isinstance(values, str):
            values = [values]
        if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype,
                                                                   pd.CategoricalDtype):
            cat = values.array
            known = self._index.get_indexer(as_str_array(cat.categories)).astype(np.int64)
            known = np.append(known, -1)  # code -1 (missing) picks the appended -1
            return known[np.asarray(cat.codes, dtype=np.int64)]
        if len(values) <= _DICT_LOOKUP_MAX:
            return self._small(values)
        return self._large(values)

    def _small(self, values) -> np.ndarray:
        if self._position is None:
            self._position = {v: k for k, v in enumerate(self.vocabulary.tolist())}
        get = self._position.get
        return np.fromiter(
            (get(v if isinstance(v, str) else str(v), -1) if not _is_missing(v) else -1
             for v in values), dtype=np.int64, count=len(values))

    def _large(self, values) -> np.ndarray:
        # Few distinct values repeat over many rows: encode once (Arrow's dictionary encoding,
        # else pandas' factorize) and look up only the distinct values.
        try:
            arr = pa.array(values.array if isinstance(values, pd.Series) else values)
            if isinstance(arr, pa.ChunkedArray):  # e.g. a column read from Parquet
                arr = arr.combine_chunks()
            if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                enc = pc.dictionary_encode(arr)
                uniques = enc.dictionary.to_numpy(zero_copy_only=False)
                index = enc.indices
                if index.null_count:
                    index = pc.fill_null(index, len(uniques))  # points at the appended -1
                return self._at(uniques, index.to_numpy(zero_copy_only=False))
        except (TypeError, ValueError, pa.ArrowException):
            pass
        index, uniques = pd.factorize(np.asarray(values, dtype=object))
        return self._at(uniques, np.where(index < 0, len(uniques), index))

    def _at(self, uniques, index: np.ndarray) -> np.ndarray:
        """Codes of ``uniques[index]``; an index equal to ``len(uniques)`` means missing."""
        known = (self._index.get_indexer(as_str_array(uniques)) if len(uniques)
                 else np.array([], dtype=np.int64))
        return np.append(known.astype(np.int64), -1)[index]


def codes(values, vocabulary) -> np.ndarray:
    """Position (int64) of each value in ``vocabulary``; -1 for a missing or unknown value.

    ``vocabulary`` is a :class:`Codebook` (reused across calls) or a sequence of distinct values.
    """
    book = vocabulary if isinstance(vocabulary, Codebook) else Codebook(vocabulary)
    return book.codes(values)


_BANDS = Codebook(BAND_NAMES)


def band_codes(bands) -> np.ndarray:
    """Band names -> their position in ``BAND_NAMES`` (-1 for an unknown or missing band)."""
    return _BANDS.codes(bands)


def profile_attributes(users: pd.DataFrame) -> dict[str, np.ndarray]:
    """The users' categorical profile columns and their values: text columns other than ids
    and dates with 2 to ``MAX_ATTRIBUTE_VALUES`` distinct values (gender, region, ...)."""
    out = {}
    for column in users.columns:
        values = users[column]
        if column in _NOT_ATTRIBUTES or pd.api.types.is_numeric_dtype(values) or (
                pd.api.types.is_datetime64_any_dtype(values)) or pd.api.types.is_bool_dtype(
                values):
            continue
        found = distinct(values)
        if 2 <= len(found) <= MAX_ATTRIBUTE_VALUES:
            out[str(column)] = found
    return out


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    return distinct(frame[column]) if column in frame else np.array([], dtype="<U1")


@dataclass
class Vocabulary:
    """Codes shared by training and serving: category and community names <-> ints, and the
    values of the users' categorical profile columns (``attributes``: column -> sorted values).
    """

    categories: np.ndarray
    communities: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._categories = Codebook(self.categories)
        self._communities = Codebook(self.communities)
        self._attributes = {k: Codebook(v) for k, v in self.attributes.items()}

    @classmethod
    def from_bundle(cls, bundle) -> Vocabulary:
        """The vocabularies of a :class:`features.frames.DataBundle`'s users and items tables."""
        comms = np.union1d(_column(bundle.users, "community_id"),
                           _column(bundle.items, "community_id"))
        return cls(_column(bundle.items, "category"), comms, profile_attributes(bundle.users))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Vocabulary:
        """The inverse of :meth:`to_arrays`."""
        attributes = {k[len("attr__"):]: v for k, v in arrays.items() if k.startswith("attr__")}
        return cls(arrays["categories"], arrays["communities"], attributes)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``categories``, ``communities`` and ``attr__<column>`` arrays, for ``np.savez``."""
        return {"categories": self.categories, "communities": self.communities,
                **{f"attr__{k}": v for k, v in self.attributes.items()}}

    def category_codes(self, values) -> np.ndarray:
        return self._categories.codes(values)

    def community_codes(self, values) -> np.ndarray:
        return self._communities.codes(values)

    def attribute_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, n_attributes) codes of ``frame``'s attribute columns (-1: missing/unknown)."""
        out = np.full((len(frame), len(self._attributes)), -1, dtype=np.int64)
        for a, (name, book) in enumerate(self._attributes.items()):
            if name in frame:
                out[:, a] = book.codes(frame[name])
        return out

    def profile_codes(self, profile: dict) -> np.ndarray:
        """(1, n_attributes) codes of one profile (column -> value), for a serving request."""
        out = np.full((1, len(self._attributes)), -1, dtype=np.int64)
        for a, (name, book) in enumerate(self._attributes.items()):
            out[0, a] = book.codes([profile.get(name)])[0]
        return out

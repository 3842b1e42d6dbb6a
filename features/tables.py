"""Helpers that align the users and items tables to an :class:`IdMapping` (one row per index)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.bands import AgeBands
from features.codes import band_codes, codes
from features.ids import IdMapping

__all__ = ["aligned", "multi_hot", "one_hot", "split_multi", "user_ages"]


def aligned(frame: pd.DataFrame, key: str, index_of) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows of ``frame`` whose ``key`` the mapping knows, first occurrence of each id only.

    Returns
    -------
    idx : ndarray of int64
        Mapping index of each kept row.
    rows : DataFrame
        The kept rows, in the same order as ``idx``.
    """
    idx = index_of(frame[key])
    keep = idx >= 0
    keep &= ~pd.Series(idx).duplicated().to_numpy()
    return idx[keep], frame.loc[keep]


def split_multi(values: pd.Series) -> pd.Series:
    """Lists from ``|``-separated strings (stripped, empties dropped; NA gives an empty list)."""
    return values.fillna("").astype(str).map(
        lambda s: [t.strip() for t in s.split("|") if t.strip()]
    )


def one_hot(code: np.ndarray, width: int) -> sp.csr_matrix:
    """``len(code) x width`` 0/1 matrix (float64 CSR): row ``r`` has a 1 at column
    ``code[r]``, none where the code is -1 (unknown)."""
    code = np.asarray(code)
    ok = code >= 0
    return sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float64), (np.flatnonzero(ok), code[ok])),
        shape=(len(code), width),
    )


def multi_hot(lists: pd.Series, vocab) -> sp.csr_matrix:
    """Rows x ``vocab`` 0/1 matrix (float64 CSR) of the vocabulary values in each list."""
    lengths = lists.map(len).to_numpy(dtype=np.int64)
    col = codes([v for values in lists for v in values], vocab)
    row = np.repeat(np.arange(len(lists)), lengths)
    ok = col >= 0
    m = sp.csr_matrix((np.ones(int(ok.sum())), (row[ok], col[ok])), shape=(len(lists), len(vocab)))
    m.data[:] = 1.0  # a value listed twice in one row counts once
    return m


def user_ages(
    users: pd.DataFrame, mapping: IdMapping, cutoff: pd.Timestamp, bands: AgeBands
) -> tuple[np.ndarray, np.ndarray]:
    """Age (float, NaN unknown) and band code (int8 into ``BAND_NAMES``, -1 unknown) per user.

    The age is taken at the cut-off date from ``birth_year`` (a resident born in year Y is
    treated as born on 1 January Y, see :meth:`AgeBands.age`), else from an ``age`` column,
    else only the band from an ``age_band`` column. A birth year after the cut-off (not yet
    born at that date) gives an unknown age rather than an error, so a cut in the past works.
    """
    n = mapping.n_users
    age = np.full(n, np.nan)
    code = np.full(n, -1, dtype=np.int8)
    idx, rows = aligned(users, "user_id", mapping.user_index)
    if "birth_year" in rows:
        years = pd.to_numeric(rows["birth_year"], errors="coerce").to_numpy(dtype=np.float64)
        age[idx] = cutoff.year - years
    elif "age" in rows:
        age[idx] = pd.to_numeric(rows["age"], errors="coerce").to_numpy(dtype=np.float64)
    age[age < 0] = np.nan
    known = ~np.isnan(age)
    code[known] = band_codes(bands.bands_of_ages(age[known]))
    if "age_band" in rows:
        # A declared band fills in where no age is known; it never overrides a birth year.
        dcode = band_codes(rows["age_band"]).astype(np.int8)
        fill = (code[idx] < 0) & (dcode >= 0)
        code[idx[fill]] = dcode[fill]
    return age, code

"""One object that owns external user/item ids <-> matrix indices (as LightFM's ``Dataset``).

Every matrix and feature frame in ``features`` and ``models`` is indexed by these indices; the
service converts ids at its edge with :class:`IdMapping` and nowhere else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.frames import DataBundle

__all__ = ["IdMapping", "lookup"]


def _as_str_array(values) -> np.ndarray:
    """Unicode numpy array of ids (never an object array, so it can be saved without pickle)."""
    arr = np.asarray(values)
    if arr.dtype.kind != "U":
        arr = arr.astype(str)
    return arr


def lookup(index: pd.Index, values) -> np.ndarray:
    """Positions of ``values`` in ``index`` (int64, -1 for unknown), fast on millions of rows.

    Large columns repeat few distinct ids, so the ids are hashed once (categorical codes, or
    Arrow's dictionary encoding when the column is Arrow-backed) and only the distinct values
    are looked up in ``index``.
    """
    if isinstance(values, str):
        values = [values]
    if isinstance(values, pd.Series | pd.Index) and isinstance(values.dtype, pd.CategoricalDtype):
        cats = index.get_indexer(values.cat.categories.astype(str))
        codes = np.asarray(values.cat.codes, dtype=np.int64)
        out = np.where(codes >= 0, cats[codes], -1)
        return out.astype(np.int64)
    if len(values) < 100_000:
        return index.get_indexer(pd.Index(_as_str_array(values))).astype(np.int64)
    try:
        arr = pa.array(values.array if isinstance(values, pd.Series) else values)
        if isinstance(arr, pa.ChunkedArray):  # e.g. a column read from Parquet
            arr = arr.combine_chunks()
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            enc = pc.dictionary_encode(arr)
            distinct = enc.dictionary.to_numpy(zero_copy_only=False).astype(str)
            pos = index.get_indexer(distinct).astype(np.int64)
            codes = enc.indices.to_numpy(zero_copy_only=False)
            return pos[codes]
    except (TypeError, ValueError, pa.ArrowException):
        pass
    codes, uniques = pd.factorize(np.asarray(values))
    pos = index.get_indexer(pd.Index(np.asarray(uniques).astype(str))).astype(np.int64)
    return pos[codes]


def _distinct(values) -> np.ndarray:
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.remove_unused_categories().cat.categories
    uniq = pd.unique(pd.Series(values).dropna())
    return _as_str_array(uniq) if len(uniq) else np.array([], dtype="<U1")


class IdMapping:
    """External user and item ids <-> contiguous indices.

    Fitted ids are sorted, so the same data always gives the same indices. Users added later
    with :meth:`add_users` are appended after the fitted ones (existing indices never move).

    Attributes
    ----------
    user_ids_ : ndarray of str, shape (n_users,)
        External user id of each user index.
    item_ids_ : ndarray of str, shape (n_items,)
        External item id of each item index.
    """

    def fit(self, bundle: DataBundle, until=None) -> IdMapping:
        """Learn ids from ``bundle.users``, ``bundle.items`` and ``bundle.interactions``.

        Parameters
        ----------
        bundle : DataBundle
            Source of the ids.
        until : timestamp-like, optional
            Only interactions at or before this time contribute ids (users and items tables
            always do), so that a mapping built at a cut-off ignores ids seen only later.

        Returns
        -------
        self
        """
        inter = bundle.interactions
        if until is not None:
            keep = (inter["timestamp"] <= pd.Timestamp(until)).to_numpy()
            if not keep.all():  # copying ten million rows for nothing costs seconds and memory
                inter = inter.loc[keep]
        users = np.union1d(_distinct(bundle.users["user_id"]), _distinct(inter["user_id"]))
        items = np.union1d(_distinct(bundle.items["item_id"]), _distinct(inter["item_id"]))
        self._set(users, items)
        return self

    def _set(self, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        self.user_ids_ = _as_str_array(user_ids)
        self.item_ids_ = _as_str_array(item_ids)
        self._user_index = pd.Index(self.user_ids_)
        self._item_index = pd.Index(self.item_ids_)

    @property
    def n_users(self) -> int:
        return len(self.user_ids_)

    @property
    def n_items(self) -> int:
        return len(self.item_ids_)

    def user_index(self, ids) -> np.ndarray:
        """Indices (int64) of external user ids; -1 for an unknown id."""
        return lookup(self._user_index, ids)

    def item_index(self, ids) -> np.ndarray:
        """Indices (int64) of external item ids; -1 for an unknown id."""
        return lookup(self._item_index, ids)

    def user_ids(self, idx) -> np.ndarray:
        """External ids of user indices."""
        return self.user_ids_[np.asarray(idx, dtype=np.int64)]

    def item_ids(self, idx) -> np.ndarray:
        """External ids of item indices."""
        return self.item_ids_[np.asarray(idx, dtype=np.int64)]

    def add_users(self, ids) -> np.ndarray:
        """Append unknown user ids (e.g. residents registered after training).

        Returns
        -------
        ndarray of int64
            The indices of all of ``ids`` (old and new), in the given order.
        """
        new = _distinct(np.asarray(ids))
        new = new[self.user_index(new) < 0] if len(new) else new
        if len(new):
            self._set(np.concatenate([self.user_ids_, np.sort(new)]), self.item_ids_)
        return self.user_index(ids)

    def add_items(self, ids) -> np.ndarray:
        """Append unknown item ids (new courses); returns the indices of all of ``ids``."""
        new = _distinct(np.asarray(ids))
        new = new[self.item_index(new) < 0] if len(new) else new
        if len(new):
            self._set(self.user_ids_, np.concatenate([self.item_ids_, np.sort(new)]))
        return self.item_index(ids)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``{"user_ids", "item_ids"}`` as unicode arrays, for ``np.savez`` (no pickle)."""
        return {"user_ids": self.user_ids_.copy(), "item_ids": self.item_ids_.copy()}

    @classmethod
    def from_arrays(cls, arrays) -> IdMapping:
        """Rebuild from :meth:`to_arrays` output (or an ``np.load`` result holding it)."""
        for key in ("user_ids", "item_ids"):
            if key not in arrays:
                raise ValueError(f"arrays lacks {key!r}; got keys {sorted(arrays)}")
        users, items = _as_str_array(arrays["user_ids"]), _as_str_array(arrays["item_ids"])
        for name, arr in (("user_ids", users), ("item_ids", items)):
            if len(pd.unique(arr)) != len(arr):
                raise ValueError(f"{name} holds duplicate ids")
        mapping = cls()
        mapping._set(users, items)
        return mapping

    def __repr__(self) -> str:
        if not hasattr(self, "user_ids_"):
            return "IdMapping(unfitted)"
        return f"IdMapping(n_users={self.n_users}, n_items={self.n_items})"

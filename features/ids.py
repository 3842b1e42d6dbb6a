"""One object that owns external user/item ids <-> matrix indices (as LightFM's ``Dataset``).

Every matrix and feature frame in ``features`` and ``models`` is indexed by these indices; the
service converts ids at its edge with :class:`IdMapping` and nowhere else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.codes import Codebook, as_str_array, distinct
from features.frames import DataBundle

__all__ = ["IdMapping"]


class IdMapping:
    """External user and item ids <-> contiguous indices.

    Fitted ids are sorted, so the same data always gives the same indices.

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
        users = np.union1d(distinct(bundle.users["user_id"]), distinct(inter["user_id"]))
        items = np.union1d(distinct(bundle.items["item_id"]), distinct(inter["item_id"]))
        self._set(users, items)
        return self

    def _set(self, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        self._users = Codebook(user_ids)
        self._items = Codebook(item_ids)
        self.user_ids_ = self._users.vocabulary
        self.item_ids_ = self._items.vocabulary

    @property
    def n_users(self) -> int:
        return len(self.user_ids_)

    @property
    def n_items(self) -> int:
        return len(self.item_ids_)

    def user_index(self, ids) -> np.ndarray:
        """Indices (int64) of external user ids; -1 for an unknown id."""
        return self._users.codes(ids)

    def item_index(self, ids) -> np.ndarray:
        """Indices (int64) of external item ids; -1 for an unknown id."""
        return self._items.codes(ids)

    def user_ids(self, idx) -> np.ndarray:
        """External ids of user indices."""
        return self.user_ids_[np.asarray(idx, dtype=np.int64)]

    def item_ids(self, idx) -> np.ndarray:
        """External ids of item indices."""
        return self.item_ids_[np.asarray(idx, dtype=np.int64)]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """``{"user_ids", "item_ids"}`` as unicode arrays, for ``np.savez`` (no pickle)."""
        return {"user_ids": self.user_ids_.copy(), "item_ids": self.item_ids_.copy()}

    @classmethod
    def from_arrays(cls, arrays) -> IdMapping:
        """Rebuild from :meth:`to_arrays` output (or an ``np.load`` result holding it)."""
        for key in ("user_ids", "item_ids"):
            if key not in arrays:
                raise ValueError(f"arrays lacks {key!r}; got keys {sorted(arrays)}")
        users, items = as_str_array(arrays["user_ids"]), as_str_array(arrays["item_ids"])
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

"""What every model ranks on a split: the same candidates for all, as the service would offer them.

Where the items table dates its items (``end_date``), the candidates of a time-cut protocol
(temporal, cold-user) are the items available at its cut
(:func:`features.availability.items_available`), as the service would have offered them then.
Random and cold-item have no cut in time (their test pairs come from the whole period, each at
its own moment), so they rank the full catalogue: judging availability at the end of the data
would rule out most of their test positives, and at each pair's own time it would hand every
model the answer. Cold-item keeps only the held-out items. Relevance is not touched: a test
positive outside the candidates simply cannot be a hit, and :func:`describe` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.availability import AVAILABLE_AT_CUT, FULL_CATALOGUE, items_available
from features.ids import IdMapping
from recommender.evaluation.protocols import Split

__all__ = ["Candidates", "describe", "split_candidates"]

HELD_OUT = "held-out items"


@dataclass
class Candidates:
    """The items a split's lists are drawn from.

    Attributes
    ----------
    indices : ndarray of int64 or None
        Item indices of the mapping, sorted; None when every item is a candidate.
    rule : str
        :data:`features.availability.AVAILABLE_AT_CUT` or ``FULL_CATALOGUE``; on cold-item
        ``"held-out items"``.
    cut : pandas.Timestamp or None
        The moment availability was judged at (None when no date applied).
    n_items : int
        Size of the catalogue the indices come from.
    """

    indices: np.ndarray | None
    rule: str
    cut: pd.Timestamp | None
    n_items: int

    @property
    def size(self) -> int:
        """Number of candidate items."""
        return self.n_items if self.indices is None else int(self.indices.size)

    def mask(self) -> np.ndarray | None:
        """The candidates as a boolean mask over the catalogue (None: all)."""
        if self.indices is None:
            return None
        out = np.zeros(self.n_items, dtype=bool)
        out[self.indices] = True
        return out


def split_candidates(split: Split, mapping: IdMapping, items: pd.DataFrame) -> Candidates:
    """The candidates of ``split``: available at its cut, and held out on cold-item.

    Parameters
    ----------
    split : Split
        A test or validation split.
    mapping : IdMapping
        The ids every model is indexed by.
    items : DataFrame
        The items table (its ``end_date`` decides availability at a time cut).
    """
    cut = split.cut
    available = None if cut is None else items_available(items, mapping.item_ids_, cut)
    rule = FULL_CATALOGUE if available is None else AVAILABLE_AT_CUT
    keep = np.ones(mapping.n_items, dtype=bool) if available is None else available
    if split.protocol == "cold-item" and split.cold_items is not None:
        held = np.zeros(mapping.n_items, dtype=bool)
        index = mapping.item_index(split.cold_items)
        held[index[index >= 0]] = True
        keep &= held
        rule = HELD_OUT  # cold-item has no cut in time, so no date rule applied
    indices = None if keep.all() and available is None else np.flatnonzero(keep)
    return Candidates(indices, rule, None if available is None else pd.Timestamp(cut),
                      mapping.n_items)


def describe(candidates: Candidates, relevant: sp.csr_matrix) -> dict:
    """The JSON record of the candidates, with the relevant pairs they leave out.

    ``relevant`` is the split's relevance matrix (evaluated users x catalogue).
    """
    mask = candidates.mask()
    positives = int(relevant.nnz)
    outside = 0 if mask is None else int((~mask[relevant.indices]).sum())
    return {"rule": candidates.rule, "items": candidates.size,
            "cut": None if candidates.cut is None else candidates.cut.isoformat(),
            "positives": positives, "positives_outside": outside}

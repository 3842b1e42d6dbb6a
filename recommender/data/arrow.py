"""Small pyarrow <-> numpy conversions the validator, the key sets and the time rule share."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["as_bytes", "np_bool"]


def np_bool(arr) -> np.ndarray:
    """A pyarrow boolean array (or chunked array) as numpy, nulls as False."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def as_bytes(raw: pa.Array) -> np.ndarray:
    """UTF-8 keys as a fixed-width numpy byte array (exact, compact, sortable)."""
    values = raw.cast(pa.binary()).to_numpy(zero_copy_only=False)
    return values.astype("S") if len(values) else np.empty(0, dtype="S1")

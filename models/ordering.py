"""Integer keys that order as float32 values do: many short sorted rows then become one sorted
array (a row's number in the high bits), searched with a single ``searchsorted``."""

from __future__ import annotations

import numpy as np


def float32_keys(x: np.ndarray) -> np.ndarray:
    """Integers (int64, within int32's range) ordered as the float32 values ``x`` compare:
    ``-0.0`` gets the key of ``0.0`` and every NaN the largest key (NaN sorts last, as in
    ``np.sort``).

    The bits of a non-negative float order as the float does, those of a negative one in
    reverse, so a negative float's low 31 bits are flipped. ``key + (row << 32)`` then keeps
    rows apart: keys of a sorted row, row after row, are one ascending array.
    """
    bits = (x + np.float32(0.0)).view(np.int32)  # adding 0 turns -0.0 into 0.0
    keys = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits).astype(np.int64)
    keys[np.isnan(x)] = np.iinfo(np.int32).max
    return keys

"""How a collaborative model reads the values of the users x items matrix: ``weighting``.

A cell of the matrix is the sum of a pair's weighted events (features/interactions.py). On the
district that is a small number, a few events a pair; a real export can carry anything: play
counts in the thousands, durations, prices, or one row per view. Models that multiply the
values (EASE's Gram matrix, item-kNN's cosines, ALS's confidences) are then led by a few huge
cells. On MovieLens-100k with log-normal weights EASE fell from nDCG@10 0.476 to 0.113, while
the same data read as 0/1 gave 0.476 again. So EASE, item-kNN and ALS take a ``weighting``:

- ``"raw"``: the values as given (the default, and what every model saved before read);
- ``"binary"``: 1 for every interaction, whatever its value;
- ``"log"``: ``log2(1 + value / m)``, with ``m`` the median of the values the model was
  fitted on (:attr:`ValueWeighting.value_scale_`): the median reads as 1, a hundred times
  it as 6.7, so large values still count for more but cannot swamp the rest.

Which one suits a dataset is a question for its validation users, so the benchmark tunes it
like any other parameter (docs/decisions.md).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

WEIGHTINGS = ("raw", "binary", "log")


def check_weighting(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name=value`` unless it is one of :data:`WEIGHTINGS`."""
    if value not in WEIGHTINGS:
        raise ValueError(f"{name}={value!r}: must be one of {', '.join(WEIGHTINGS)}")


def value_scale(X: sp.csr_matrix) -> float:
    """The median of ``X``'s positive stored values (1.0 when it has none): what ``"log"``
    reads as 1."""
    positive = X.data[X.data > 0]
    return float(np.median(positive)) if positive.size else 1.0


def weighed(X: sp.csr_matrix, weighting: str, scale: float) -> sp.csr_matrix:
    """``X`` with its values read as ``weighting`` says (``X`` itself for ``"raw"``).

    The stored entries stay where they are (a stored value of 0 stays 0), so a row's seen
    items are the same whatever the weighting.
    """
    if weighting == "raw":
        return X
    out = X.copy()
    positive = out.data > 0
    if weighting == "binary":
        out.data = positive.astype(out.dtype)
    else:
        out.data = np.where(positive, np.log2(1.0 + np.maximum(out.data, 0) / scale),
                            0.0).astype(out.dtype)
    return out


class ValueWeighting:
    """Mixin of the models that take ``weighting``: they call :meth:`_weigh_fit` first in
    ``_fit`` and :meth:`_weigh` first in ``_score``, so the rows they score are read as the
    matrix they learned from was.

    Attributes
    ----------
    value_scale_ : float or None
        :func:`value_scale` of the fit matrix (None in a file saved before ``weighting``
        existed, whose models read raw values).
    """

    weighting: str
    value_scale_: float | None

    def _check_weighting(self) -> None:
        check_weighting("weighting", self.weighting)

    def _weigh_fit(self, X: sp.csr_matrix) -> sp.csr_matrix:
        self.value_scale_ = value_scale(X)
        return self._weigh(X)

    def _weigh(self, X: sp.csr_matrix) -> sp.csr_matrix:
        if self.weighting == "raw" or self.value_scale_ is None:
            return X
        return weighed(X, self.weighting, self.value_scale_)

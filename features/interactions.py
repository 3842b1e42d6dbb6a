"""Resident x course confidence weights from the event log, as of a cut-off time."""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.sparse as sp

from features.event_log import (
    DEFAULT_EVENT_WEIGHTS,
    RATING_CENTER,
    EncodedEvents,
    coded_event_values,
    encode_events,
    resolve_cutoff,
)
from features.frames import GENERIC_EVENT, DataBundle
from features.ids import IdMapping

__all__ = ["InteractionMatrix"]

log = logging.getLogger(__name__)


class InteractionMatrix:
    """Turn an event log into a users x items confidence matrix (CSR, float32).

    Each event at or before the cut-off adds ``event_weights[event] * weight * decay`` to its
    (user, item) cell, where ``weight`` is the row's ``weight`` column and ``decay`` is
    ``0.5 ** (days before the cut-off / half_life_days)``. A ``rate`` event adds
    ``event_weights["rate"] * (value - rating_center)``. Negative evidence (cancel, no-show, a
    low rating) lowers the cell; cells are clipped at 0 and zeros are removed.

    Parameters
    ----------
    event_weights : dict of str to float, optional
        Overrides of :data:`features.event_log.DEFAULT_EVENT_WEIGHTS`.
    half_life_days : float, optional
        Time-decay half-life; None means no decay.
    cutoff : timestamp-like, optional
        Only events at or before it count. None: the latest timestamp seen in ``fit``.
    rating_center : float, default :data:`features.event_log.RATING_CENTER`
        Rating that adds nothing.
    unknown_event_weight : float, optional
        Weight of an event name that ``event_weights`` does not list; None: it counts as the
        generic interaction (``event_weights_["interact"]``). Such names are listed in
        ``unknown_events_``.
    id_mapping : IdMapping, optional
        Shared mapping to index by; None: fit one on the bundle (ids seen up to the cut-off).

    Attributes
    ----------
    cutoff_ : pd.Timestamp
    id_mapping_ : IdMapping
    event_weights_ : dict of str to float
        The full table used.
    unknown_event_weight_ : float
    unknown_events_ : list of str
        Event names seen in ``fit`` that had no weight.
    """

    def __init__(
        self,
        event_weights: dict[str, float] | None = None,
        half_life_days: float | None = None,
        cutoff=None,
        rating_center: float = RATING_CENTER,
        unknown_event_weight: float | None = None,
        id_mapping: IdMapping | None = None,
    ):
        self.event_weights = event_weights
        self.half_life_days = half_life_days
        self.cutoff = cutoff
        self.rating_center = rating_center
        self.unknown_event_weight = unknown_event_weight
        self.id_mapping = id_mapping

    def _validate(self) -> None:
        hl = self.half_life_days
        if hl is not None and not (isinstance(hl, int | float) and math.isfinite(hl) and hl > 0):
            raise ValueError(f"half_life_days must be a positive number or None, got {hl!r}")
        weights = dict(DEFAULT_EVENT_WEIGHTS)
        for name, w in (self.event_weights or {}).items():
            if not isinstance(w, int | float) or not math.isfinite(w):
                raise ValueError(f"event_weights[{name!r}] must be a finite number, got {w!r}")
            weights[str(name)] = float(w)
        for param in ("rating_center", "unknown_event_weight"):
            value = getattr(self, param)
            if value is None and param == "unknown_event_weight":
                continue
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{param} must be a finite number, got {value!r}")
        self.event_weights_ = weights
        self.unknown_event_weight_ = (weights[GENERIC_EVENT] if self.unknown_event_weight is None
                                      else float(self.unknown_event_weight))

    def fit(self, bundle: DataBundle, events: EncodedEvents | None = None) -> InteractionMatrix:
        """Fix the cut-off, the id mapping and the weight table.

        Parameters
        ----------
        bundle : DataBundle
        events : EncodedEvents, optional
            Pre-encoded events (from :func:`features.event_log.encode_events` with this
            transformer's cut-off and mapping), to avoid encoding the log twice.

        Returns
        -------
        self
        """
        self._fit(bundle, events)
        return self

    def _fit(self, bundle: DataBundle, events: EncodedEvents | None) -> EncodedEvents:
        self._validate()
        self.cutoff_ = resolve_cutoff(bundle.interactions, self.cutoff)
        self.id_mapping_ = (
            self.id_mapping if self.id_mapping is not None
            else IdMapping().fit(bundle, until=self.cutoff_)
        )
        events = self._events(bundle, events)
        self.unknown_events_ = sorted(n for n in events.event_names if n not in self.event_weights_)
        if self.unknown_events_:
            log.info("events without a weight, counted as %s: %s",
                     self.unknown_event_weight_, self.unknown_events_)
        return events

    def _events(self, bundle: DataBundle, events: EncodedEvents | None) -> EncodedEvents:
        if events is None:
            return encode_events(bundle.interactions, self.id_mapping_, self.cutoff_)
        events.check(self.cutoff_, self.id_mapping_)
        return events

    def row_values(self, events: EncodedEvents) -> np.ndarray:
        """Signed contribution (float64) of each encoded event to its cell."""
        values = coded_event_values(events.event, events.event_names, events.value,
                                    self.event_weights_, self.rating_center,
                                    self.unknown_event_weight_)
        values *= events.weight
        if self.half_life_days is not None:
            values *= events.decay(self.half_life_days)
        return values

    def transform(self, bundle: DataBundle, events: EncodedEvents | None = None) -> sp.csr_matrix:
        """Users x items confidence matrix (float32 CSR, no explicit zeros, no negatives)."""
        events = self._events(bundle, events)
        shape = (events.n_users, events.n_items)
        m = sp.csr_matrix(
            (self.row_values(events), (events.user, events.item)), shape=shape, dtype=np.float64
        )
        m.sum_duplicates()
        # Sums of opposite evidence (enrol 2 + cancel -2) must vanish, not leave 1e-17 crumbs.
        m.data[m.data < 1e-9] = 0.0
        m.eliminate_zeros()
        return m.astype(np.float32)

    def fit_transform(self, bundle: DataBundle, events: EncodedEvents | None = None):
        """``fit(bundle).transform(bundle)``, encoding the event log once."""
        return self.transform(bundle, self._fit(bundle, events))

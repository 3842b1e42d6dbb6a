"""The event log as integer arrays cut at one time, and what each event counts for.

:data:`DEFAULT_EVENT_WEIGHTS` is the one table of how much an event adds to a (resident, course)
pair; :func:`coded_event_values` applies it to an encoded log (the interaction matrix) and
:func:`event_values` to a few events as they arrive (serving).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.frames import GENERIC_EVENT
from features.ids import IdMapping

__all__ = [
    "DAY_NS",
    "DEFAULT_EVENT_WEIGHTS",
    "RATING_CENTER",
    "EncodedEvents",
    "coded_event_values",
    "encode_events",
    "event_values",
    "pair_age_matrix",
    "resolve_cutoff",
]

DAY_NS = 86_400 * 10**9
# The age stored for a pair whose latest event is at the cut-off itself: a sparse matrix cannot
# hold an age of 0 (it would read as "no event"), and a second is below any window of interest.
_MIN_AGE_DAYS = 1.0 / 86_400

# Confidence each event adds to a (resident, course) pair. A completion says more than an
# enrolment, which says more than a view; cancellations and no-shows are negative evidence.
# "rate" is multiplied by (value - RATING_CENTER), so a 5 adds and a 1 subtracts. An event the
# table does not list counts as the generic interaction.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 0.5,
    "enroll": 2.0,
    "attend": 1.0,
    "complete": 4.0,
    "rate": 1.0,
    "cancel": -2.0,
    "no_show": -1.0,
    GENERIC_EVENT: 1.0,
}
# The rating that adds nothing to a pair.
RATING_CENTER = 3.0


def _event_codes(events) -> tuple[np.ndarray, tuple[str, ...]]:
    """Events as int16 codes into a tuple of names; a missing event is the generic one."""
    codes, names = pd.factorize(events, use_na_sentinel=False)
    names = tuple(GENERIC_EVENT if pd.isna(n) else str(n) for n in names)
    return codes.astype(np.int16), names


def coded_event_values(
    codes: np.ndarray,
    names,
    value: np.ndarray,
    weights: dict[str, float] = DEFAULT_EVENT_WEIGHTS,
    rating_center: float = RATING_CENTER,
    unknown_weight: float | None = None,
) -> np.ndarray:
    """Signed contribution (float64) of each event to its pair, before row weights and decay.

    Parameters
    ----------
    codes : ndarray of int
        Each event's position in ``names``.
    names : sequence of str
    value : ndarray of float
        The rating of ``rate`` events (NaN adds nothing); ignored for other events.
    weights : dict of str to float
        The full weight table (default :data:`DEFAULT_EVENT_WEIGHTS`).
    rating_center : float
        The rating that adds nothing.
    unknown_weight : float, optional
        Weight of a name ``weights`` does not list; None: the generic event's weight.
    """
    if unknown_weight is None:
        unknown_weight = weights[GENERIC_EVENT]
    per_name = np.array([weights.get(n, unknown_weight) for n in names], dtype=np.float64)
    values = per_name[codes] if len(per_name) else np.zeros(len(codes))
    if "rate" in names:
        is_rate = codes == list(names).index("rate")
        if is_rate.any():
            stars = np.nan_to_num(value[is_rate].astype(np.float64) - rating_center)
            values[is_rate] *= stars
    return values


def event_values(events, values=None) -> np.ndarray:
    """What each of ``events`` (names) adds to its pair under :data:`DEFAULT_EVENT_WEIGHTS`.

    ``values`` gives the ratings of ``rate`` events (missing or NaN: the rating adds nothing).
    The same rule as the interaction matrix without row weights or decay, for events that
    arrive one request at a time.
    """
    codes, names = _event_codes(np.asarray(events, dtype=object))
    value = (np.full(len(codes), np.nan) if values is None
             else pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
             .to_numpy(dtype=np.float64, na_value=np.nan))
    return coded_event_values(codes, names, value)


def _naive(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert(None) if ts.tzinfo is not None else ts


def resolve_cutoff(interactions: pd.DataFrame, cutoff=None) -> pd.Timestamp:
    """The cut-off as a naive ``pd.Timestamp``: ``cutoff`` if given, else the latest timestamp.

    Raises
    ------
    ValueError
        If ``cutoff`` cannot be parsed, or is None while there are no interactions.
    """
    if cutoff is not None:
        try:
            ts = pd.Timestamp(cutoff)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"cutoff must be a timestamp, got {cutoff!r}") from exc
        if pd.isna(ts):
            raise ValueError(f"cutoff must be a timestamp, got {cutoff!r}")
        return _naive(ts)
    if len(interactions) == 0 or interactions["timestamp"].isna().all():
        raise ValueError("cutoff=None needs at least one interaction timestamp; pass a cutoff")
    return _naive(pd.Timestamp(interactions["timestamp"].max()))


@dataclass
class EncodedEvents:
    """Interactions at or before ``cutoff`` whose user and item are known to the mapping.

    ``event`` holds codes into ``event_names``; ``time`` is nanoseconds since the epoch;
    ``n_dropped_unknown`` counts rows whose user or item the mapping did not know.
    """

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    event: np.ndarray
    event_names: tuple[str, ...]
    weight: np.ndarray
    value: np.ndarray
    cutoff: pd.Timestamp
    n_users: int
    n_items: int
    n_dropped_unknown: int = 0

    def __len__(self) -> int:
        return len(self.user)

    def age_days(self) -> np.ndarray:
        """Days from each event to the cut-off (>= 0)."""
        return (self.cutoff.value - self.time) / DAY_NS

    def decay(self, half_life_days: float | None) -> np.ndarray:
        """``0.5 ** (age / half_life)`` per event (all ones when ``half_life_days`` is None)."""
        if half_life_days is None:
            return np.ones(len(self), dtype=np.float64)
        return np.exp2(-self.age_days() / float(half_life_days))

    def check(self, cutoff: pd.Timestamp, mapping: IdMapping, param: str = "events") -> None:
        """Raise if these events were encoded at another cut-off or for another mapping."""
        if self.cutoff != cutoff or self.n_users != mapping.n_users or (
            self.n_items != mapping.n_items
        ):
            raise ValueError(
                f"{param} were encoded at cutoff {self.cutoff} for {self.n_users} users x "
                f"{self.n_items} items, but the transformer uses cutoff {cutoff} and "
                f"{mapping.n_users} x {mapping.n_items}"
            )


def _time_ns(ts: pd.Series) -> np.ndarray:
    if getattr(ts.dtype, "tz", None) is not None:
        ts = ts.dt.tz_convert(None)
    return ts.to_numpy(dtype="datetime64[ns]").view(np.int64)


def encode_events(interactions: pd.DataFrame, mapping: IdMapping, cutoff) -> EncodedEvents:
    """Encode the interactions at or before ``cutoff`` as arrays indexed by ``mapping``.

    Parameters
    ----------
    interactions : DataFrame
        ``user_id, item_id, timestamp`` and optionally ``event`` (missing: every row is the
        generic ``"interact"``), ``weight`` (missing: 1) and ``value`` (missing: NaN).
    mapping : IdMapping
        Fitted mapping; rows with ids it does not know are dropped and counted.
    cutoff : timestamp-like
        Rows strictly after it are ignored, so nothing later can leak into features.

    Returns
    -------
    EncodedEvents
    """
    cutoff = resolve_cutoff(interactions, cutoff)
    time = _time_ns(interactions["timestamp"])
    # NaT is the minimum int64: drop it explicitly rather than treat it as "long ago".
    keep = (time <= cutoff.value) & (time != np.iinfo(np.int64).min)
    if not keep.all():
        interactions = interactions.loc[keep]
        time = time[keep]
    user = mapping.user_index(interactions["user_id"])
    item = mapping.item_index(interactions["item_id"])
    known = (user >= 0) & (item >= 0)
    n_unknown = int(len(known) - known.sum())

    if "event" in interactions:
        event, names = _event_codes(interactions["event"])
    else:
        names, event = (GENERIC_EVENT,), np.zeros(len(interactions), dtype=np.int16)
    if "weight" in interactions:
        weight = interactions["weight"].to_numpy(dtype=np.float32, na_value=1.0)
    else:
        weight = np.ones(len(interactions), dtype=np.float32)
    if "value" in interactions:
        value = interactions["value"].to_numpy(dtype=np.float32, na_value=np.nan)
    else:
        value = np.full(len(interactions), np.nan, dtype=np.float32)

    sel = slice(None) if n_unknown == 0 else known
    return EncodedEvents(
        user=user[sel].astype(np.int32),
        item=item[sel].astype(np.int32),
        time=time[sel],
        event=event[sel],
        event_names=names,
        weight=weight[sel],
        value=value[sel],
        cutoff=cutoff,
        n_users=mapping.n_users,
        n_items=mapping.n_items,
        n_dropped_unknown=n_unknown,
    )


def pair_age_matrix(events: EncodedEvents) -> sp.csr_matrix:
    """Days from each (user, item) pair's latest event to the cut-off, as a users x items matrix.

    A pair is stored wherever it has an event (of any type, so also where negative evidence
    cancelled its confidence); an event at the cut-off is stored as one second
    (``_MIN_AGE_DAYS``), never as an implicit zero. float32 CSR, sorted indices.
    """
    key = events.user.astype(np.int64) * max(events.n_items, 1) + events.item
    pairs, inverse = np.unique(key, return_inverse=True)
    latest = np.full(pairs.size, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, inverse.ravel(), events.time)
    age = np.maximum((events.cutoff.value - latest) / DAY_NS, _MIN_AGE_DAYS)
    n_items = max(events.n_items, 1)
    return sp.csr_matrix((age.astype(np.float32), (pairs // n_items, pairs % n_items)),
                         shape=(events.n_users, events.n_items))

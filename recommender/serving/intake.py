"""Participation events posted to the service: validated like the importer, stored, folded in.

:func:`validate_events` checks a batch of events with the importer's validator
(:func:`recommender.data.validation.validate_records`: the same value rules, foreign keys looked
up in the store, the same time-zone rule), each event on its own, plus one rule of a live
stream: an event may not lie more than a day after the district's current time. That time is
a clock's instant seen in the district's zone
(:func:`recommender.data.timestamps.district_now`), never the machine's wall clock (a server
kept in UTC is eight hours behind Asia/Shanghai). :func:`ingest` validates a batch, stores the
new events durably and then folds them into the current model (its enrolment counts and the
engine's histories) at once. :func:`register_resident` checks and stores a resident the
platform registers (their ``residents`` row and their declared profile), so that their events
are accepted and their lists start from the profile.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.data.keys import KnownKeys
from recommender.data.profiles import ProfileError, check_profile
from recommender.data.timestamps import Clock, district_now, utc_clock
from recommender.data.validation import validate_records
from recommender.domain import DISTRICT_TIMEZONE, TABLES, AgeBands
from recommender.serving.errors import InvalidInput

if TYPE_CHECKING:
    from recommender.data.store import Store
    from recommender.serving.holder import ModelHolder

log = logging.getLogger(__name__)

# How far ahead of the district clock an event time may lie (clocks of devices drift).
FUTURE_TOLERANCE = pd.Timedelta(days=1)


def validate_events(events: Sequence[Mapping[str, Any]], now: dt.datetime | None = None,
                    timezone: str = DISTRICT_TIMEZONE, store: Store | None = None
                    ) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Check a batch of events like the importer does.

    Parameters
    ----------
    events : sequence of mapping
        The events, each with the columns of ``TABLES["participations"]``.
    now : datetime, optional
        Naive district time the future check measures against (default: :func:`district_now`).
    timezone : str
        District time zone that event times with a UTC offset are converted to.
    store : Store, optional
        Where ``resident_id`` and ``course_id`` must exist; without it they are not looked up.

    Returns
    -------
    valid : DataFrame
        The valid events, typed (``occurred_at`` naive district time), with their batch
        position as the index.
    rejected : list of (int, str, str)
        ``(position, field, reason)`` of every invalid event, for the first field that fails.
    """
    now = district_now(timezone) if now is None else now
    known = KnownKeys(store) if store is not None else None
    result = validate_records(TABLES["participations"], events, known=known, timezone=timezone,
                              today=now.date())
    rejects = result.rejects
    rejected = list(zip(rejects["line"].tolist(), rejects["field"], rejects["reason"]))
    valid = result.frame.set_axis(np.flatnonzero(~np.isin(np.arange(len(events)),
                                                          rejects["line"])))
    future = (valid["occurred_at"] > pd.Timestamp(now) + FUTURE_TOLERANCE).to_numpy()
    rejected += [(int(i), "occurred_at", "occurred_at lies more than a day in the future")
                 for i in valid.index[future]]
    return valid[~future], sorted(rejected)


def validate_event(raw: Mapping[str, Any], now: dt.datetime | None = None,
                   timezone: str = DISTRICT_TIMEZONE
                   ) -> tuple[dict | None, str | None, str | None]:
    """Check one event: ``(row, None, None)`` or ``(None, field, reason)``.

    :func:`validate_events` for a batch of one, without the store lookups. ``row`` holds the
    typed values (``value`` ``None`` when absent, ``occurred_at`` a naive ``Timestamp``).
    """
    valid, rejected = validate_events([raw], now, timezone)
    if rejected:
        _, field_name, reason = rejected[0]
        return None, field_name, reason
    row = valid.iloc[0].to_dict()
    row["value"] = None if pd.isna(row["value"]) else float(row["value"])
    return row, None, None


def register_resident(store: Store, resident_id: str, profile: Mapping[str, Any],
                      timezone: str = DISTRICT_TIMEZONE, clock: Clock | None = None,
                      bands: AgeBands | None = None) -> tuple[dict, bool]:
    """Register a resident, or update a registered one, from a profile the platform sends.

    The profile holds ``birth_year`` or ``age_band`` (one is required; both must agree),
    ``community_id``, and optionally ``gender``, ``household_id`` and ``interests``. The
    declared band and interests are checked by :func:`recommender.data.profiles.check_profile`;
    the rest goes through the importer's validator as a ``residents`` row (the community must
    be stored, a birth year in the district's future is refused). A resident registered by band
    alone keeps a stored birth year that still falls in the band and otherwise gets the band's
    stand-in year (:meth:`AgeBands.central_birth_year`); their profile records the band, which
    says their birth year may not be their own. ``registered_at`` is the district's date when the
    resident is created and stays as stored afterwards. Sending the same profile twice leaves
    the same rows. The ``residents`` row and the profile are written in one transaction.

    Returns
    -------
    resident : dict
        The stored ``residents`` row plus ``age_band`` (their band today), ``interests`` and
        ``birth_year_estimated``.
    created : bool
        Whether the resident was new.

    Raises
    ------
    InvalidInput
        Naming the first field that fails and why.
    """
    bands = bands or AgeBands()
    today = district_now(timezone, clock).date()
    fields = dict(profile)
    declared_band, interests = fields.pop("age_band", None), fields.pop("interests", None)
    try:
        declared = check_profile(declared_band, interests)
    except ProfileError as exc:
        raise InvalidInput(exc.field, exc.reason) from None
    if fields.get("birth_year") is None and declared.age_band is None:
        raise InvalidInput("birth_year", "birth_year or age_band is required")
    estimated = fields.get("birth_year") is None
    if estimated:
        fields["birth_year"] = _birth_year_in_band(store, resident_id, declared.age_band,
                                                   bands, today)
    record = {**fields, "resident_id": resident_id, "registered_at": today.isoformat()}
    result = validate_records(TABLES["residents"], [record], known=KnownKeys(store),
                              timezone=timezone, today=today)
    if len(result.rejects):
        first = result.rejects.iloc[0]
        raise InvalidInput(str(first["field"]), str(first["reason"]))
    row = result.frame.iloc[0].to_dict()
    row["birth_year"] = int(row["birth_year"])
    row["registered_at"] = row["registered_at"].date()
    band = bands.band(row["birth_year"], today)
    if declared.age_band is not None and declared.age_band != band:
        raise InvalidInput("age_band", f"{declared.age_band!r} does not match birth_year "
                                       f"{row['birth_year']} ({band})")
    created = store.upsert_resident(row, profile={
        "age_band": declared.age_band if estimated else None,
        "interests": declared.interests})
    return {**store.resident(resident_id), "age_band": band,
            "interests": list(declared.interests), "birth_year_estimated": estimated}, created


def _birth_year_in_band(store: Store, resident_id: str, band: str, bands: AgeBands,
                        today: dt.date) -> int:
    """The stored birth year when it is in ``band`` today (re-sending a band keeps the year),
    otherwise the band's stand-in year."""
    stored = store.resident(resident_id)
    year = stored["birth_year"] if stored else None
    if year is not None and year <= today.year and bands.band(year, today) == band:
        return int(year)
    return bands.central_birth_year(band, today)


@dataclass
class IngestReport:
    """What one batch did: counts and, per rejected event, its index, field and reason."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: list[dict] = field(default_factory=list)

    def reject(self, index: int, event_id: Any, field_name: str, reason: str) -> None:
        self.rejected += 1
        self.rejections.append({"index": index, "event_id": event_id if isinstance(
            event_id, str) else None, "field": field_name, "reason": reason})


def ingest(store: Store, holder: ModelHolder, events: list[Mapping[str, Any]],
           timezone: str = DISTRICT_TIMEZONE, clock: Clock | None = None,
           also: Sequence[ModelHolder] = ()) -> IngestReport:
    """Validate, store durably, then fold a batch of participation events into the model.

    Returns only after the accepted events are committed to the store. An event whose id is
    already stored (or repeated in the batch) counts as a duplicate and changes nothing.

    Parameters
    ----------
    store : Store
        Where events are stored and residents and courses are looked up.
    holder : ModelHolder
        Its current snapshot (if any) takes the new events: enrolment counts and the engine.
    events : list of mapping
        The posted events, each with the columns of ``TABLES["participations"]``.
    timezone : str
        District time zone that time-zone-aware event times are converted to.
    clock : callable, optional
        The current instant (:func:`district_now`); default the machine's clock.
    also : sequence of ModelHolder
        Other models being served (an A/B test's variants) that take the new events too.

    Returns
    -------
    IngestReport
        Counts, and the index, field and reason of each rejected event.
    """
    report = IngestReport(received=len(events))
    valid, rejected = validate_events(events, district_now(timezone, clock), timezone, store)
    for i, field_name, reason in rejected:
        report.reject(i, events[i].get("event_id"), field_name, reason)
    repeated = valid["event_id"].duplicated(keep="first")
    report.duplicates += int(repeated.sum())
    rows = valid[~repeated].reset_index(drop=True)
    if len(rows):
        _store_and_fold(store, holder, rows, report, also)
    report.rejections.sort(key=lambda r: r["index"])
    return report


def _store_and_fold(store: Store, holder: ModelHolder, rows: pd.DataFrame,
                    report: IngestReport, also: Sequence[ModelHolder] = ()) -> None:
    with holder.ingest_lock:  # check-then-insert and the in-memory fold stay in step
        stored = store.existing_keys("participations", rows["event_id"])
        new = rows[~rows["event_id"].isin(stored)].reset_index(drop=True)
        report.duplicates += len(rows) - len(new)
        if new.empty:
            return
        # Durable when it returns; every worker's feed hears of the new rows.
        result = store.insert("participations", new, announce=True)
        report.accepted += result.inserted
        report.duplicates += result.duplicates  # another process stored them meanwhile
        holder.fold(new, own=True)
        for other in also:  # an A/B test's other model; its own lock guards its swaps
            with other.ingest_lock:
                other.fold(new, own=True)


__all__ = ["FUTURE_TOLERANCE", "Clock", "IngestReport", "district_now", "ingest",
           "register_resident", "utc_clock", "validate_event", "validate_events"]

"""Participation events posted to the service: validated like the importer, stored, folded in.

:func:`validate_event` checks one event against :data:`recommender.domain.TABLES` (the importer's
rules); :func:`ingest` validates a batch, stores the new events durably and then folds them into
the current model (its enrolment counts and the engine's histories) at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from recommender.domain import TABLES

if TYPE_CHECKING:
    from recommender.data.store import Store
    from recommender.serving.holder import ModelHolder

log = logging.getLogger(__name__)

# The store keys are VARCHAR(64) (recommender.data.store); longer ids can never match a stored row.
MAX_ID_LENGTH = 64


def _check_value(col, value: Any, tz: str) -> tuple[Any, str | None]:
    """One event field checked against its domain column: (clean value, reason or None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, ("is required" if col.required else None)
    if col.kind in ("id", "enum", "text"):
        if not isinstance(value, str):
            return None, "must be a string"
        if any(ord(ch) < 32 for ch in value):
            return None, "contains control characters"
        if col.kind == "id" and (len(value) > MAX_ID_LENGTH or value != value.strip()):
            return None, f"must be at most {MAX_ID_LENGTH} characters without surrounding spaces"
        if col.kind == "enum" and value not in col.choices:
            return None, f"{value!r} is not one of {', '.join(col.choices)}"
        return value, None
    if col.kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            return None, "must be a finite number"
        if (col.min is not None and value < col.min) or (col.max is not None and value > col.max):
            return None, f"{value} is outside {col.min:g}..{col.max:g}"
        return float(value), None
    if col.kind in ("datetime", "date"):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            return None, f"{value!r} is not an ISO date-time"
        if pd.isna(ts):
            return None, "is required"
        if ts.tzinfo is not None:  # stored naive in district time, like the imported data
            ts = ts.tz_convert(tz).tz_localize(None)
        return ts, None
    return value, None  # pragma: no cover - no other kinds in participations


def validate_event(raw: Mapping[str, Any], now: dt.datetime,
                   tz: str = "Asia/Shanghai") -> tuple[dict | None, str | None, str | None]:
    """Check one event like the importer does: ``(row, None, None)`` or ``(None, field, reason)``.

    Rules come from ``TABLES["participations"]`` (required columns, event vocabulary, the 1–5
    range of ``value``), plus: a ``rate`` event needs its rating, and an event may not lie more
    than a day in the future.
    """
    row: dict[str, Any] = {}
    for col in TABLES["participations"].columns:
        value, reason = _check_value(col, raw.get(col.name), tz)
        if reason:
            return None, col.name, reason
        row[col.name] = value
    if row["event"] == "rate" and row["value"] is None:
        return None, "value", "a rate event needs a rating 1..5"
    if row["occurred_at"] > pd.Timestamp(now) + pd.Timedelta(days=1):
        return None, "occurred_at", "lies in the future"
    return row, None, None


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
           timezone: str = "Asia/Shanghai") -> IngestReport:
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

    Returns
    -------
    IngestReport
        Counts, and the index, field and reason of each rejected event.
    """
    report = IngestReport(received=len(events))
    now = dt.datetime.now()
    rows: list[tuple[int, dict]] = []
    batch_ids: set[str] = set()
    for i, raw in enumerate(events):
        row, field_name, reason = validate_event(raw, now, timezone)
        if row is None:
            report.reject(i, raw.get("event_id"), field_name, reason)
        elif row["event_id"] in batch_ids:
            report.duplicates += 1
        else:
            batch_ids.add(row["event_id"])
            rows.append((i, row))
    if rows:
        residents = store.existing_keys("residents", (r["resident_id"] for _, r in rows))
        courses = store.existing_keys("courses", (r["course_id"] for _, r in rows))
        valid = []
        for i, row in rows:
            if row["resident_id"] not in residents:
                report.reject(i, row["event_id"], "resident_id", "unknown resident")
            elif row["course_id"] not in courses:
                report.reject(i, row["event_id"], "course_id", "unknown course")
            else:
                valid.append(row)
        if valid:
            _store_and_fold(store, holder, valid, report)
    report.rejections.sort(key=lambda r: r["index"])
    return report


def _store_and_fold(store: Store, holder: ModelHolder, rows: list[dict],
                    report: IngestReport) -> None:
    with holder.ingest_lock:  # check-then-insert and the in-memory fold stay in step
        stored = store.existing_keys("participations", (r["event_id"] for r in rows))
        new = pd.DataFrame([r for r in rows if r["event_id"] not in stored])
        report.duplicates += len(rows) - len(new)
        if new.empty:
            return
        result = store.insert("participations", new)  # durable when it returns
        report.accepted += result.inserted
        report.duplicates += result.duplicates  # another process stored them meanwhile
        snap = holder._snapshot
        if snap is None:
            return
        delta = new["event"].map({"enroll": 1, "cancel": -1}).fillna(0).astype(int)
        pos = snap.catalogue.ids.get_indexer(new["course_id"])
        np.add.at(snap.enrolled, pos[pos >= 0], delta.to_numpy()[pos >= 0])
        started = time.perf_counter()
        try:
            snap.engine.add_events(new[["resident_id", "course_id", "event", "value",
                                        "occurred_at"]])
        except Exception:  # the events are stored; a failed fold only delays their effect
            log.exception("engine.add_events failed for %d stored events", len(new))
        log.debug("folded %d events in %.1f ms", len(new),
                  1000 * (time.perf_counter() - started))


__all__ = ["MAX_ID_LENGTH", "IngestReport", "ingest", "validate_event"]

"""One clock, read in the district's zone: a server kept in UTC judges times like one in Shanghai.

The machine's zone is set to UTC for these tests (``TZ`` and ``time.tzset``), and the service is
given a clock fixed at an instant where the UTC date and the district's date differ. Every "now"
(the future rule of posted events) and every "today" (the service's day, a birth year in the
future) must be the district's.
"""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import pytest

from recommender.data.ingest import import_folder
from recommender.serving.errors import InvalidInput
from recommender.serving.holder import ModelHolder
from recommender.serving.intake import FUTURE_TOLERANCE, district_now
from recommender.serving.service import RecommendationService
from tests.recommender.data.tiny_district import write_tiny_district

# 23:00 UTC on 28 February is 07:00 on 1 March in Asia/Shanghai (+08:00).
INSTANT = dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC)
DISTRICT_NOW = dt.datetime(2026, 3, 1, 7, 0)


@pytest.fixture
def utc_machine(monkeypatch):
    """The machine's own zone is UTC, as on most servers."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def service(store, tmp_path, utc_machine):
    import_folder(write_tiny_district(tmp_path / "d"), store)
    return RecommendationService(store, ModelHolder(tmp_path / "artifacts", store),
                                 clock=lambda: INSTANT)


def _event(eid: str, when: str) -> dict:
    return {"event_id": eid, "resident_id": "R1", "course_id": "K1", "event": "view",
            "occurred_at": when}


def test_the_district_clock_is_the_instant_in_the_district_zone(utc_machine):
    assert district_now(clock=lambda: INSTANT) == DISTRICT_NOW
    assert district_now("UTC", clock=lambda: INSTANT) == INSTANT.replace(tzinfo=None)
    with pytest.raises(ValueError, match="clock: must return a time-zone-aware datetime"):
        district_now(clock=lambda: dt.datetime(2026, 3, 1, 7))


def test_events_up_to_a_day_ahead_of_district_time_are_accepted(service, store):
    # 23 hours ahead of the district's clock, 31 ahead of the UTC wall clock: accepted.
    ahead = (DISTRICT_NOW + FUTURE_TOLERANCE - pd.Timedelta(hours=1)).isoformat()
    beyond = (DISTRICT_NOW + FUTURE_TOLERANCE + pd.Timedelta(minutes=1)).isoformat()
    same_instant = "2026-03-01T22:00:00Z"  # = 2026-03-02 06:00 in the district: accepted
    report = service.ingest([_event("E-ahead", ahead), _event("E-beyond", beyond),
                             _event("E-utc", same_instant)])
    assert [(r["index"], r["field"], r["reason"]) for r in report.rejections] == [
        (1, "occurred_at", "occurred_at lies more than a day in the future")]
    assert report.accepted == 2
    stored = store.read("participations").set_index("event_id")["occurred_at"].to_dict()
    assert stored == {"E-ahead": pd.Timestamp("2026-03-02 06:00"),
                      "E-utc": pd.Timestamp("2026-03-02 06:00")}


def test_today_is_the_district_date_not_the_machine_date(service):
    assert INSTANT.date() == dt.date(2026, 2, 28)  # the date a UTC wall clock shows
    assert service.today() == dt.date(2026, 3, 1)


def test_a_birth_year_is_in_the_future_by_the_district_date(store, tmp_path, utc_machine):
    import_folder(write_tiny_district(tmp_path / "d"), store)
    new_year = dt.datetime(2025, 12, 31, 17, 30, tzinfo=dt.UTC)  # 01:30 on 1 January 2026
    service = RecommendationService(store, ModelHolder(tmp_path / "artifacts", store),
                                    clock=lambda: new_year)
    row, created = service.register_resident("R-newborn", {"birth_year": 2026,
                                                           "community_id": "C1"})
    assert created and row["birth_year"] == 2026
    assert row["registered_at"] == dt.date(2026, 1, 1)
    with pytest.raises(InvalidInput) as info:
        service.register_resident("R-later", {"birth_year": 2027, "community_id": "C1"})
    assert (info.value.field, info.value.reason) == ("birth_year",
                                                     "birth_year is in the future")

"""The validator is strict by value on every path: the importer, the loader and JSON records.

A rating's value belongs to a rating only, no date lies before the earliest one accepted, a
JSON value is never converted to the type its column needs, and a record's key that is no field
is named rather than ignored.
"""

from __future__ import annotations

import datetime as dt

import pytest

from recommender.data.datasets import DatasetError, load_district
from recommender.data.ingest import import_folder
from recommender.data.validation import validate_records
from recommender.domain import EARLIEST_DATE
from tests.recommender.data.tiny_district import write_tiny_district

EARLY = f"occurred_at is before {EARLIEST_DATE}, the earliest date accepted"
ON_VIEW = "value is allowed only when event is 'rate'"
OK = {"event_id": "E1", "resident_id": "R1", "course_id": "K1", "event": "view",
      "occurred_at": "2025-03-01T09:00:00"}


def _reasons(records) -> list[tuple[int, str, str]]:
    rejects = validate_records("participations", records).rejects
    return list(zip(rejects["line"], rejects["field"], rejects["reason"]))


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"value": True}, "value", "value must be a number"),
    ({"event": "rate", "value": True}, "value", "value must be a number"),
    ({"event": "rate", "value": "5"}, "value", "value must be a number"),
    ({"value": 3}, "value", ON_VIEW),
    ({"event": "enroll", "value": 5.0}, "value", ON_VIEW),
    ({"occurred_at": 1740819600}, "occurred_at",
     "occurred_at must be an ISO 8601 date-time string"),
    ({"occurred_at": "1900-01-01T00:00:00"}, "occurred_at", EARLY),
    ({"occurred_at": "1999-12-31T23:59:59"}, "occurred_at", EARLY),
    ({"rating": 5}, "rating", "'rating' is not a field of participations (expected: event_id, "
                              "resident_id, course_id, event, value, occurred_at)"),
])
def test_a_json_record_is_judged_strictly(change, field, reason):
    assert _reasons([OK, {**OK, "event_id": "E2", **change}]) == [(1, field, reason)]


def test_what_stays_valid():
    records = [{**OK, "event": "rate", "value": 4}, {**OK, "event": "rate", "value": 4.5},
               {**OK, "value": None}, {**OK, "occurred_at": f"{EARLIEST_DATE}T00:00:00"},
               {**OK, "occurred_at": dt.datetime(2025, 3, 1, 9)}]
    result = validate_records("participations", records)
    assert result.rejects.empty and len(result.frame) == len(records)


def test_an_unknown_key_is_named_before_the_columns():
    # the typo is what to fix first: a 'rate' without 'value' is only its consequence
    assert _reasons([{**OK, "event": "rate", "rating": 5}]) == [
        (0, "rating", "'rating' is not a field of participations (expected: event_id, "
                      "resident_id, course_id, event, value, occurred_at)")]


def test_the_importer_refuses_the_same_rows_and_keeps_the_rest(store, tmp_path):
    rows = ("E1,R1,K1,view,,2025-03-01 09:00\n"
            "E2,R1,K1,view,4,2025-03-01 09:00\n"
            "E3,R1,K1,rate,4,1900-01-01 00:00\n"
            "E4,R1,K1,rate,4,2025-03-01 10:00\n")
    folder = write_tiny_district(tmp_path / "d", rows,
                                 extra={"residents": "R2,1950,F,C1,,1900-01-01\n"})
    report = import_folder(folder, store)
    assert [(r["file"], r["line"], r["field"], r["reason"], r["value"])
            for r in report.rejected] == [
        ("residents.csv", 3, "registered_at",
         f"registered_at is before {EARLIEST_DATE}, the earliest date accepted", "1900-01-01"),
        ("participations.csv", 3, "value", ON_VIEW, "4"),
        ("participations.csv", 4, "occurred_at", EARLY, "1900-01-01 00:00")]
    assert sorted(store.read("participations")["event_id"]) == ["E1", "E4"]


def test_the_loader_stops_at_a_value_on_a_view(tmp_path):
    folder = write_tiny_district(tmp_path / "d", "E1,R1,K1,view,4,2025-03-01 09:00\n")
    with pytest.raises(DatasetError, match="value is allowed only when event is 'rate'"):
        load_district(folder)

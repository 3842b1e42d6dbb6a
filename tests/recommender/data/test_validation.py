"""The one validator: the same value gives the same verdict on every path.

Text cells (CSV, the importer), typed columns (Parquet, store frames), JSON records (the events
endpoint) and whole tables (the dataset loader) all go through ``recommender.data.validation``.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recommender.data.datasets import DatasetError, load_district
from recommender.data.ingest import import_folder
from recommender.data.validation import validate_chunk, validate_records
from recommender.domain import EVENTS, MAX_ID_LENGTH
from recommender.serving.intake import validate_event
from tests.recommender.data.tiny_district import write_tiny_district

OK = {"event_id": "E1", "resident_id": "R1", "course_id": "K1", "event": "view", "value": "",
      "occurred_at": "2025-03-01 09:00:00"}
# (field, bad value, the reason every path gives)
BAD = [
    ("event_id", "E\x01", "event_id contains control characters"),
    ("event_id", " E1", "event_id has spaces around it"),
    ("event_id", "E1\t", "event_id contains control characters"),
    ("event_id", "E" * (MAX_ID_LENGTH + 1), f"event_id is longer than {MAX_ID_LENGTH} characters"),
    ("event_id", "", "event_id is required"),
    ("resident_id", "R 1 ", "resident_id has spaces around it"),
    ("event", "like", f"event must be one of: {', '.join(EVENTS)}"),
    ("event", "", "event is required"),
    ("value", "7", "value must be at most 5"),
    ("value", "0.5", "value must be at least 1"),
    ("occurred_at", "yesterday", "occurred_at is not an ISO 8601 date-time"),
    ("occurred_at", "2025-02-30 09:00", "occurred_at is not an ISO 8601 date-time"),
    ("occurred_at", "0001-01-01 09:00", "occurred_at is not an ISO 8601 date-time"),  # too early
]


def _json(field: str, text: str):
    """The JSON form of a text cell: numbers as numbers, empty as null."""
    if text == "":
        return None
    return float(text) if field == "value" else text


def _text_columns(rows: list[dict]) -> dict[str, pa.Array]:
    return {k: pa.array([r[k] for r in rows], type=pa.string()) for k in OK}


def test_text_cells_and_json_records_get_the_same_verdict():
    rows = [{**OK, "event_id": f"E{i}", field: bad} if field != "event_id" else {**OK, field: bad}
            for i, (field, bad, _) in enumerate(BAD)]
    rows.append({**OK, "event_id": "E-rate", "event": "rate"})  # a rating needs its value
    expected = [(f, r) for f, _, r in BAD]
    expected.append(("value", "value (a rating 1-5) is required when event is 'rate'"))

    chunk = validate_chunk("participations", _text_columns(rows), np.arange(len(rows)), None)
    records = validate_records("participations",
                               [{k: _json(k, v) for k, v in r.items()} for r in rows])
    for result in (chunk, records):
        assert result.frame.empty
        got = list(zip(result.rejects["field"], result.rejects["reason"]))
        assert got == expected
    # the single-event form of the endpoint answers with the same field and reason
    for row, (field, reason) in zip(rows, expected):
        assert validate_event({k: _json(k, v) for k, v in row.items()},
                              dt.datetime(2025, 3, 2))[1:] == (field, reason)


def test_a_valid_row_is_typed_alike_on_both_paths():
    row = {**OK, "event": "rate", "value": "4.5", "occurred_at": "2025-03-01T09:00:00Z"}
    chunk = validate_chunk("participations", _text_columns([row]), [2], None)
    record = validate_records("participations", [{k: _json(k, v) for k, v in row.items()}])
    pd.testing.assert_frame_equal(chunk.frame, record.frame)
    assert record.frame["occurred_at"].tolist() == [pd.Timestamp("2025-03-01 17:00")]
    assert record.frame["value"].tolist() == [4.5]


def test_numbers_must_be_finite_and_dates_representable():
    rows = [{**OK, "event": "rate", "value": v} for v in ("1e400", "-1e999", "5e0")]
    result = validate_chunk("participations", _text_columns(rows), [2, 3, 4], None)
    assert list(zip(result.rejects["line"], result.rejects["reason"])) == [
        (2, "value is not a number"), (3, "value is not a number")]
    residents = {"resident_id": pa.array(["R1", "R2"]), "birth_year": pa.array(["1950", "1950"]),
                 "community_id": pa.array(["C1", "C1"]),
                 "registered_at": pa.array(["9999-12-31", "2024-01-02"])}
    result = validate_chunk("residents", residents, [2, 3], None)
    assert result.rejects["reason"].tolist() == ["registered_at is not a date (YYYY-MM-DD)"]


def test_longest_id_is_accepted():
    row, field, _ = validate_event({**OK, "event_id": "E" * MAX_ID_LENGTH, "value": None},
                                   dt.datetime(2025, 3, 2))
    assert field is None and row["event_id"] == "E" * MAX_ID_LENGTH and row["value"] is None


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("event_id", 123, "event_id must be a string"),
    ("event", ["view"], "event must be a string"),
    ("value", "4", "value must be a number"),
    ("value", True, "value must be a number"),
    ("value", math.nan, "value must be a number"),
    ("value", math.inf, "value must be a number"),
    ("occurred_at", 1740819600, "occurred_at must be an ISO 8601 date-time string"),
])
def test_json_values_of_the_wrong_type(field, value, reason):
    record = {**OK, "value": None, field: value}
    result = validate_records("participations", [record])
    assert list(zip(result.rejects["field"], result.rejects["reason"])) == [(field, reason)]


def test_typed_columns_are_checked_by_value():
    """Parquet and store frames: a whole float may fill an int column, a midnight a date."""
    n = 4
    columns = {
        "resident_id": pa.array(["R1", "R2", "R3", "R4"]),
        "birth_year": pa.array([1950.0, 1980.5, np.nan, 2200.0]),
        "community_id": pa.array(["C1"] * n),
        "registered_at": pa.array(pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-02 10:00",
                                                  "2024-01-02"], format="ISO8601")),
    }
    result = validate_chunk("residents", columns, np.arange(1, n + 1), None)
    assert list(zip(result.rejects["line"], result.rejects["field"], result.rejects["reason"])) == [
        (2, "birth_year", "birth_year is not an integer"),
        (3, "birth_year", "birth_year is required"),
        (4, "birth_year", "birth_year must be at most 2100"),
    ]
    assert result.frame["birth_year"].tolist() == [1950]
    dates = pa.array([dt.date(2024, 1, 2), None])
    typed = validate_chunk("residents", {"resident_id": pa.array(["R1", "R2"]),
                                         "birth_year": pa.array([1950, 1960]),
                                         "community_id": pa.array(["C1", "C1"]),
                                         "registered_at": dates}, [1, 2], None)
    assert typed.rejects["reason"].tolist() == ["registered_at is required"]
    late = validate_chunk("residents", {**columns, "birth_year": pa.array([1950] * n)},
                          np.arange(1, n + 1), None)
    assert late.rejects["reason"].tolist() == ["registered_at is not a date (YYYY-MM-DD)"]


@pytest.mark.parametrize(("table", "line", "field", "reason"), [
    ("residents", "R2 ,1950,F,C1,,2024-01-02", "resident_id", "resident_id has spaces around it"),
    ("residents", "R2,1950.0,F,C1,,2024-01-02", "birth_year", "birth_year is not an integer"),
    ("residents", "R2,1950,F,C9,,2024-01-02", "community_id", "unknown community_id: not in "
                                                              "communities"),
    ("residents", "R1,1960,F,C1,,2024-01-02", "resident_id", "duplicate resident_id (first on "
                                                             "line 2)"),
    ("courses", "K2,t,,skills,adults,,C1,inclusive,5,2025-01-01,2025-06-30,,,open",
     "target_bands", "target_bands must be '|'-separated band names from: preschool, "
                     "school_age, working_age, elderly"),
    ("courses", "K2,t,,skills,elderly,,C1,inclusive,5,2025-06-30,2025-01-01,,,open",
     "end_date", "end_date is before start_date (2025-06-30)"),
])
def test_importer_and_loader_refuse_a_row_for_the_same_reason(store, tmp_path, table, line,
                                                               field, reason):
    folder = write_tiny_district(tmp_path / "d", "E1,R1,K1,view,,2025-03-01 09:00:00\n",
                                 {table: line + "\n"})
    report = import_folder(folder, store)
    assert [(r["file"], r["line"], r["field"], r["reason"]) for r in report.rejected] == [
        (f"{table}.csv", 3, field, reason)]
    with pytest.raises(DatasetError) as info:
        load_district(folder)
    assert (info.value.column, info.value.lines) == (field, [3])
    assert info.value.reason == f"{reason} on line 3"

"""Hostile input, generated: the event validator and the importer never crash on it, reject every
bad row with a field and a reason, and never drop a valid row mixed in with the bad ones.

Example counts are kept small (the suite stays fast); each run draws new examples.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recommender.data.ingest import import_folder
from recommender.data.store import open_store
from recommender.data.validation import validate_records
from recommender.domain import EVENTS, MAX_ID_LENGTH, TABLES
from recommender.serving.intake import validate_events
from tests.recommender.data.tiny_district import write_tiny_district

COLUMNS = TABLES["participations"].column_names
NOW = dt.datetime(2026, 3, 1, 12)
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)
hostile_records = st.dictionaries(
    st.sampled_from(COLUMNS) | st.text(max_size=12), json_values, max_size=8)


@st.composite
def valid_events(draw, resident="R1", course="K1"):
    """An event the validator must accept as it is (ids unique to the draw)."""
    event = draw(st.sampled_from(EVENTS))
    when = draw(st.datetimes(min_value=dt.datetime(2000, 1, 2),
                             max_value=dt.datetime(2026, 2, 27)))
    text = draw(st.sampled_from([when.isoformat(), when.strftime("%Y-%m-%d %H:%M:%S"),
                                 when.strftime("%Y-%m-%dT%H:%M:%S+08:00")]))
    value = draw(st.integers(1, 5) | st.floats(1, 5)) if event == "rate" else None
    suffix = draw(st.text("abcXYZ0123456789_.:-", min_size=1, max_size=20))
    return {"event_id": f"V-{uuid.uuid4().hex}-{suffix}"[:MAX_ID_LENGTH],
            "resident_id": resident, "course_id": course, "event": event, "value": value,
            "occurred_at": text}


def _check_rejections(rejects: pd.DataFrame, records: list[dict]) -> None:
    assert rejects["line"].is_unique  # one rejection per record
    for line, field, reason in zip(rejects["line"], rejects["field"], rejects["reason"]):
        keys = set(COLUMNS) | {str(k)[:MAX_ID_LENGTH] for k in records[line]}
        assert isinstance(field, str) and field in keys
        assert isinstance(reason, str) and "\n" not in reason
        assert field in reason if field in COLUMNS else reason.startswith(repr(field))


@FAST
@given(st.lists(hostile_records, min_size=1, max_size=12))
@example([{"\n": None}])  # found by this test: a key with a newline made a two-line reason
def test_random_records_never_crash_the_validator(records):
    result = validate_records("participations", records)
    assert len(result.frame) + len(result.rejects) == len(records)
    _check_rejections(result.rejects, records)


@FAST
@given(st.lists(st.tuples(st.booleans(), hostile_records, valid_events()), min_size=1,
                max_size=12))
def test_valid_events_among_hostile_ones_are_all_kept(mixed):
    records = [bad if is_bad else good for is_bad, bad, good in mixed]
    valid, rejected = validate_events(records, NOW)
    kept = {int(i) for i in valid.index}
    good = {i for i, (is_bad, _, _) in enumerate(mixed) if not is_bad}
    assert good <= kept
    assert kept | {i for i, _, _ in rejected} == set(range(len(records)))
    for i in good:
        row = valid.loc[i]
        assert row["event_id"] == records[i]["event_id"] and row["event"] == records[i]["event"]
        assert (pd.isna(row["value"]) if records[i]["value"] is None
                else row["value"] == float(records[i]["value"]))


# -- the importer ---------------------------------------------------------------------------
cells = (st.text(max_size=30) | st.sampled_from(["", "view", "rate", "R1", "K1", "1e999", "NaN",
                                                 "1900-01-01", "2025-03-01 09:00", "5", "true"]))
hostile_rows = st.lists(cells, min_size=1, max_size=8)


def _csv_line(cells_: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells_)
    return out.getvalue()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}")
    yield store
    store.dispose()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), hostile_rows, valid_events()), min_size=1,
                max_size=10),
       st.lists(st.binary(max_size=40).filter(lambda b: not set(b) & set(b'\n\r"')),
                max_size=3))
def test_the_importer_never_crashes_and_keeps_every_valid_row(shared_store, tmp_path_factory,
                                                              mixed, raw_lines):
    lines = [(_csv_line(bad) if is_bad else _csv_line(
        [good[c] if good[c] is not None else "" for c in COLUMNS])).encode("utf-8")
        for is_bad, bad, good in mixed]
    folder = write_tiny_district(tmp_path_factory.mktemp("d"))
    with open(folder / "participations.csv", "ab") as out:
        out.write(b"".join(lines[:1] + [r + b"\n" for r in raw_lines] + lines[1:]))
    report = import_folder(folder, shared_store)
    for r in report.rejected:
        assert r["reason"] and "\n" not in r["reason"]
        assert r["field"] in COLUMNS or (r["field"] is None and r["file"] == "participations.csv")
    good = [g["event_id"] for is_bad, _, g in mixed if not is_bad]
    assert shared_store.existing_keys("participations", good) == set(good)
    summary = report.tables["participations"]
    assert summary.rows >= len(mixed)

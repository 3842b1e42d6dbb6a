"""One timestamp rule on all three paths: the importer, the dataset loader and the events endpoint.

A time with a UTC offset is converted to the district time zone (Asia/Shanghai, +08:00, by
default) and stored without it; a time without an offset is district time already; anything
that is not ISO 8601 is refused. The same inputs go through every path and must come out the
same.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from recommender.data.datasets import DatasetError, bundle_from_tables, load_district
from recommender.data.ingest import import_folder
from recommender.data.timestamps import to_district_time
from recommender.domain import DISTRICT_TIMEZONE
from recommender.serving.holder import ModelHolder
from recommender.serving.intake import ingest, validate_event
from tests.recommender.data.tiny_district import BASE, write_tiny_district

# (event id, occurred_at as sent, stored naive district time or None when refused)
CASES = [
    ("E-naive", "2025-03-01T09:00:00", "2025-03-01 09:00:00"),
    ("E-space", "2025-03-01 09:00", "2025-03-01 09:00:00"),
    ("E-plus8", "2025-03-01T09:00:00+08:00", "2025-03-01 09:00:00"),
    ("E-zulu", "2025-03-01T09:00:00Z", "2025-03-01 17:00:00"),
    ("E-utc", "2025-03-01T09:00:00+00:00", "2025-03-01 17:00:00"),
    ("E-minus5", "2025-03-01T23:30:00-05:00", "2025-03-02 12:30:00"),
    ("E-garbage", "2025-03-01T09:00:00+banana", None),
    ("E-words", "yesterday", None),
]
VALID = {eid: pd.Timestamp(stored) for eid, _, stored in CASES if stored is not None}
REFUSED = {eid for eid, _, stored in CASES if stored is None}


def _folder(path, cases):
    rows = "".join(f"{eid},R1,K1,view,,{when}\n" for eid, when, _ in cases)
    return write_tiny_district(path, rows)


def test_the_rule_itself():
    sent = pd.Series([when for _, when, _ in CASES] + [None, ""])
    got = to_district_time(sent)
    expected = [pd.Timestamp(s) if s else pd.NaT for _, _, s in CASES] + [pd.NaT, pd.NaT]
    assert got.dtype == "datetime64[ns]"
    assert got.tolist() == expected
    # the zone is a parameter; typed values follow the same rule
    assert to_district_time(["2025-03-01T09:00:00Z", "2025-03-01T09:00"], "UTC").tolist() == [
        pd.Timestamp("2025-03-01 09:00"), pd.Timestamp("2025-03-01 09:00")]
    aware = pd.Series(pd.to_datetime(["2025-03-01 09:00"]).tz_localize("UTC"))
    assert to_district_time(aware).tolist() == [pd.Timestamp("2025-03-01 17:00")]
    naive = pd.Series(pd.to_datetime(["2025-03-01 09:00"]))
    assert to_district_time(naive).tolist() == [pd.Timestamp("2025-03-01 09:00")]
    assert DISTRICT_TIMEZONE == "Asia/Shanghai"  # the expectations above assume +08:00


def test_importer(store, tmp_path):
    report = import_folder(_folder(tmp_path / "d", CASES), store)
    rejected = {r["value"]: (r["field"], r["reason"]) for r in report.rejected}
    assert {v for v in rejected} == {when for eid, when, _ in CASES if eid in REFUSED}
    assert all(field == "occurred_at" and "ISO 8601" in reason
               for field, reason in rejected.values())
    stored = store.read("participations").set_index("event_id")["occurred_at"]
    assert stored.to_dict() == VALID


def test_dataset_loader(tmp_path):
    valid = [c for c in CASES if c[0] not in REFUSED]
    bundle = load_district(_folder(tmp_path / "ok", valid))
    got = bundle.interactions.set_index("event_id")["timestamp"]
    assert got.to_dict() == VALID
    for n, case in enumerate(c for c in CASES if c[0] in REFUSED):
        folder = _folder(tmp_path / f"bad{n}", [*valid, case])
        with pytest.raises(DatasetError, match="ISO 8601") as info:
            load_district(folder)
        assert info.value.column == "occurred_at"
        assert info.value.lines == [len(valid) + 2]  # the header is line 1


def test_dataset_loader_from_typed_frames(tmp_path):
    """Store frames and Parquet carry datetimes: an aware one is converted, a naive one kept."""
    base = _folder(tmp_path / "d", [])
    tables = {n: pd.read_csv(base / f"{n}.csv", dtype=str, keep_default_na=False,
                             na_values=[""]) for n in BASE}
    stamps = pd.to_datetime(["2025-03-01 09:00", "2025-03-01 01:00"])
    for when, expected in ((stamps.tz_localize("UTC"), ["2025-03-01 17:00", "2025-03-01 09:00"]),
                           (stamps, ["2025-03-01 09:00", "2025-03-01 01:00"])):
        tables["participations"] = pd.DataFrame({
            "event_id": ["E1", "E2"], "resident_id": ["R1", "R1"], "course_id": ["K1", "K1"],
            "event": ["view", "view"], "value": [None, None], "occurred_at": when})
        got = bundle_from_tables(tables).interactions.set_index("event_id")["timestamp"]
        assert got.to_dict() == {"E1": pd.Timestamp(expected[0]), "E2": pd.Timestamp(expected[1])}


def test_events_endpoint(store, tmp_path):
    import_folder(_folder(tmp_path / "d", []), store)
    events = [{"event_id": eid, "resident_id": "R1", "course_id": "K1", "event": "view",
               "occurred_at": when} for eid, when, _ in CASES]
    report = ingest(store, ModelHolder(tmp_path / "artifacts", store), events)
    assert {(CASES[r["index"]][0], r["field"]) for r in report.rejections} == {
        (eid, "occurred_at") for eid in REFUSED}
    assert all("ISO 8601" in r["reason"] for r in report.rejections)
    assert report.accepted == len(VALID)
    stored = store.read("participations").set_index("event_id")["occurred_at"]
    assert stored.to_dict() == VALID
    # the single-event form says the same, and takes datetime objects by the same rule
    now = dt.datetime(2025, 3, 2)
    for eid, when, expected in CASES:
        row, field, _ = validate_event({**events[0], "occurred_at": when}, now)
        assert (row["occurred_at"] if row else field) == (
            pd.Timestamp(expected) if expected else "occurred_at"), eid
    utc = dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)
    row, _, _ = validate_event({**events[0], "occurred_at": utc}, now)
    assert row["occurred_at"] == pd.Timestamp("2025-03-01 17:00")


def test_every_path_takes_the_configured_zone(store, tmp_path):
    cases = [("E-zulu", "2025-03-01T09:00:00Z", None), ("E-plus8", "2025-03-01T09:00+08:00", None),
             ("E-naive", "2025-03-01T09:00:00", None)]
    expected = {"E-zulu": pd.Timestamp("2025-03-01 09:00"),
                "E-plus8": pd.Timestamp("2025-03-01 01:00"),
                "E-naive": pd.Timestamp("2025-03-01 09:00")}
    folder = _folder(tmp_path / "d", cases)
    import_folder(folder, store, timezone="UTC")
    assert store.read("participations").set_index("event_id")["occurred_at"].to_dict() == expected
    loaded = load_district(folder, timezone="UTC").interactions
    assert loaded.set_index("event_id")["timestamp"].to_dict() == expected
    for eid, when, _ in cases:
        row, _, _ = validate_event({"event_id": eid, "resident_id": "R1", "course_id": "K1",
                                    "event": "view", "occurred_at": when},
                                   dt.datetime(2025, 3, 2), timezone="UTC")
        assert row["occurred_at"] == expected[eid]


def test_the_cli_converts_with_the_configured_time_zone(tmp_path, monkeypatch):
    """``RECOMMENDER_TIMEZONE`` reaches the importer and the loaders, not only the service."""
    from typer.testing import CliRunner

    from recommender.cli import app
    from recommender.data.store import open_store
    from tests.recommender.data.tiny_district import write_tiny_district

    folder = write_tiny_district(tmp_path / "d", "E1,R1,K1,enroll,,2025-03-01T09:00:00+08:00\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("RECOMMENDER_TIMEZONE", "UTC")
    result = CliRunner().invoke(app, ["import", str(folder), "--db", db])
    assert result.exit_code == 0, result.output
    store = open_store(db, create=False)
    try:
        stored = store.read("participations")["occurred_at"].tolist()
    finally:
        store.dispose()
    assert [pd.Timestamp(t) for t in stored] == [pd.Timestamp("2025-03-01 01:00")]

"""The validated importer: every test that stores runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from recommender.data.ingest import UnusableInput, import_folder

COMMUNITIES = (
    "community_id,name,street,kind\n"
    "C01,文康社区,东港街道,leading\n"
    "C02,中昌社区,沈家门街道,inclusive\n"
    "C03,Bad kind,X,village\n"  # line 4: kind not in the vocabulary
)
RESIDENTS = (
    "resident_id,birth_year,gender,community_id,household_id,registered_at\n"
    "R1,1950,F,C01,H1,2024-01-02\n"
    "R2,2021,,C01,H1,2024-01-02\n"
    "R3,1988,M,C02,,2024-02-30\n"  # line 4: no such date
    "R4,,F,C01,,2024-01-02\n"  # line 5: birth_year missing
    "R5,1990,F,C09,,2024-01-02\n"  # line 6: unknown community
)
COURSES = (
    "course_id,title,description,category,target_bands,tags,community_id,fee_tier,capacity,"
    "start_date,end_date,weekday,start_time,status,room\n"
    # lines 2-3: a quoted description with a comma and a newline
    'K1,剪纸入门,"学习传统剪纸, 第一课\n第二课",intangible_heritage,school_age|elderly,剪纸|非遗,'
    "C01,inclusive,20,2025-03-01,2025-06-30,2,09:30,open,A\n"
    "K2,Tea culture 茶艺,,interest,elderly,,C02,upgraded,0,2025-03-01,2025-06-30,,,full,B\n"
    "K3,Negative seats,,skills,working_age,,C01,inclusive,-5,2025-03-01,2025-06-30,,,open,C\n"
    "K4,Bad bands,,skills,adults,,C01,inclusive,5,2025-03-01,2025-06-30,,,open,D\n"
    "K5,Backwards,,skills,working_age,,C01,inclusive,5,2025-06-30,2025-03-01,,,open,E\n"
)
PARTICIPATIONS = (
    b"event_id,resident_id,course_id,event,value,occurred_at\n"
    b"E1,R1,K1,enroll,,2025-03-01 09:00:00\n"
    b"E2,R1,K1,rate,5,2025-06-30T18:30:15\n"
    b"E3,R2,K2,view,,2025-03-02 10:00:00\n"
    b"E4,R1,K99,view,,2025-03-02 10:00:00\n"  # line 5: unknown course
    b"E5,R1,K1,rate,7,2025-03-02 10:00:00\n"  # line 6: rating out of range
    b"E2,R2,K2,view,,2025-03-03 10:00:00\n"  # line 7: duplicate event id
    b"E6,R2,K2,vi\xffew,,2025-03-03 10:00:00\n"  # line 8: broken UTF-8
    b"E7,R2,K2,rate,,2025-03-03 10:00:00\n"  # line 9: rating without a value
    b"E8,R2,K2,like,,2025-03-03 10:00:00\n"  # line 10: unknown event
    b"E9,R3,K1,view,,2025-03-03 10:00:00\n"  # line 11: R3 was rejected
    b"E10,R2,K2,view,,2025-13-03 10:00:00\n"  # line 12: no 13th month
    b"E11,R2,K2,attend,,2025-03-04 10:00:00\n"
)
EXPECTED_REJECTS = {
    ("communities.csv", 4, "kind"),
    ("residents.csv", 4, "registered_at"),
    ("residents.csv", 5, "birth_year"),
    ("residents.csv", 6, "community_id"),
    ("courses.csv", 5, "capacity"),
    ("courses.csv", 6, "target_bands"),
    ("courses.csv", 7, "end_date"),
    ("participations.csv", 5, "course_id"),
    ("participations.csv", 6, "value"),
    ("participations.csv", 7, "event_id"),
    ("participations.csv", 8, None),
    ("participations.csv", 9, "value"),
    ("participations.csv", 10, "event"),
    ("participations.csv", 11, "resident_id"),
    ("participations.csv", 12, "occurred_at"),
}
EXPECTED_KEYS = {
    "communities": {"C01", "C02"},
    "residents": {"R1", "R2"},
    "courses": {"K1", "K2"},
    "participations": {"E1", "E2", "E3", "E11"},
}


def _write_malformed(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "communities.csv").write_text(COMMUNITIES, encoding="utf-8")
    (folder / "residents.csv").write_text(RESIDENTS, encoding="utf-8")
    (folder / "courses.csv").write_text(COURSES, encoding="utf-8")
    (folder / "participations.csv").write_bytes(PARTICIPATIONS)
    return folder


@pytest.mark.parametrize("chunk_rows", [1, 3, 200_000])
def test_malformed_folder_stores_exactly_the_valid_rows(store, tmp_path, chunk_rows):
    folder = _write_malformed(tmp_path / "district")
    report_path = tmp_path / "out" / "report.json"
    report = import_folder(folder, store, report_path=report_path, chunk_rows=chunk_rows)

    assert {name: store.keys(name) for name in EXPECTED_KEYS} == EXPECTED_KEYS
    found = {(r["file"], r["line"], r["field"]) for r in report.rejected}
    assert found == EXPECTED_REJECTS
    assert len(report.rejected) == len(EXPECTED_REJECTS)  # one entry per rejected row
    assert report.exit_code == 3
    counts = {n: (t.accepted, t.duplicate, t.rejected) for n, t in report.tables.items()}
    assert counts == {"communities": (2, 0, 1), "residents": (2, 0, 3), "courses": (2, 0, 3),
                      "participations": (4, 0, 8)}
    assert report.warnings == ["courses.csv: unknown column 'room' ignored"]

    by_line = {(r["file"], r["line"]): r for r in report.rejected}
    assert by_line["participations.csv", 7]["reason"] == "duplicate event_id (first on line 3)"
    assert by_line["participations.csv", 8]["reason"] == "invalid UTF-8"
    assert "vi\\xffew" in by_line["participations.csv", 8]["value"]
    assert by_line["participations.csv", 6]["value"] == "7"
    assert by_line["courses.csv", 5]["reason"] == "capacity must be at least 0"
    assert by_line["courses.csv", 7]["reason"] == "end_date is before start_date (2025-06-30)"
    assert by_line["communities.csv", 4]["value"] == "village"

    saved = json.loads(report_path.read_text(encoding="utf-8"))
    assert saved["folder"] == str(folder)
    assert saved["tables"]["participations"] == {"accepted": 4, "duplicate": 0, "rejected": 8}
    assert {(r["file"], r["line"], r["field"]) for r in saved["rejected"]} == EXPECTED_REJECTS
    assert set(saved["rejected"][0]) == {"file", "line", "field", "reason", "value"}

    courses = store.read("courses").set_index("course_id")
    assert courses.loc["K1", "description"] == "学习传统剪纸, 第一课\n第二课"
    assert courses.loc["K1", "title"] == "剪纸入门"
    assert courses.loc["K2", "capacity"] == 0 and pd.isna(courses.loc["K2", "weekday"])
    events = store.read("participations").set_index("event_id")
    assert events.loc["E2", "value"] == 5.0 and np.isnan(events.loc["E1", "value"])
    assert events.loc["E2", "occurred_at"] == pd.Timestamp("2025-06-30 18:30:15")


def test_reimport_changes_nothing(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    first = import_folder(folder, store)
    before = store.read_all()
    again = import_folder(folder, store)
    for name, frame in store.read_all().items():
        pd.testing.assert_frame_equal(frame, before[name])
    assert {n: t.accepted for n, t in again.tables.items()} == dict.fromkeys(EXPECTED_KEYS, 0)
    assert {n: t.duplicate for n, t in again.tables.items()} == {
        n: t.accepted for n, t in first.tables.items()}
    assert again.rejected == first.rejected


def test_clean_folder_exits_zero_and_new_rows_may_refer_to_stored_ones(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    import_folder(folder, store)
    # A later export: only new events, referring to residents and courses stored before.
    later = tmp_path / "later"
    later.mkdir()
    for name in ("communities", "residents", "courses"):
        header = (folder / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        (later / f"{name}.csv").write_text(header + "\n", encoding="utf-8")
    (later / "participations.csv").write_text(
        "\ufeffevent_id,resident_id,course_id,event,value,occurred_at\r\n"
        "E20,R1,K2,complete,,2025-07-01 08:00\r\n"
        "\r\n"
        "E21,R2,K1,rate,4.5,2025-07-02\r\n", encoding="utf-8")
    report = import_folder(later, store, chunk_rows=2)
    assert report.exit_code == 0 and report.rejected == []
    assert report.tables["participations"].accepted == 2
    assert {"E20", "E21"} <= store.keys("participations")


def test_strict_text_forms(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    import_folder(folder, store)
    (folder / "participations.csv").write_text(
        "event_id,resident_id,course_id,event,value,occurred_at\n"
        "E30,R1,K1,rate,5.0,2025-03-01 09:00:00\n"  # 5.0 is a fine rating
        "E31,R1,K1,view,,2025-03-01T09:00:00Z\n"  # an offset is converted to district time
        "E32,R1,K1,view,, 2025-03-01 09:00:00\n"  # no silent stripping
        "E33,R1,K1,rate,NaN,2025-03-01 09:00:00\n"
        "E34,R1,K1,view,,2025-03-01 09:00:00,extra\n"
        '"E35,R1,K1,view,,2025-03-01 09:00:00\n', encoding="utf-8")
    (folder / "residents.csv").write_text(
        "resident_id,birth_year,gender,community_id,household_id,registered_at\n"
        "R40,1950.0,F,C01,,2024-01-02\n"
        "R41,123456789012,F,C01,,2024-01-02\n", encoding="utf-8")
    report = import_folder(folder, store)
    reasons = {(r["file"], r["line"]): (r["field"], r["reason"]) for r in report.rejected}
    assert reasons[("residents.csv", 2)] == ("birth_year", "birth_year is not an integer")
    assert reasons[("residents.csv", 3)] == ("birth_year", "birth_year must be at most 2100")
    assert reasons[("participations.csv", 4)][0] == "occurred_at"
    assert reasons[("participations.csv", 5)] == ("value", "value is not a number")
    assert reasons[("participations.csv", 6)] == (None, "expected 6 fields, found 7")
    assert reasons[("participations.csv", 7)][1].startswith("malformed CSV")
    assert ("participations.csv", 3) not in reasons
    events = store.read("participations").set_index("event_id")
    assert events.loc["E31", "occurred_at"] == pd.Timestamp("2025-03-01 17:00:00")
    assert "E30" in store.keys("participations")


def test_a_file_in_another_encoding_is_named(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    (folder / "communities.csv").write_bytes(COMMUNITIES.encode("gbk"))
    report = import_folder(folder, store)
    assert [(r["line"], r["field"], r["reason"]) for r in report.rejected
            if r["file"] == "communities.csv"][:2] == [(2, None, "invalid UTF-8"),
                                                       (3, None, "invalid UTF-8")]
    assert store.keys("communities") == set()  # line 4 has a bad kind
    assert any("GBK" in w for w in report.warnings)


def test_missing_file_is_unusable_and_stores_nothing(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    (folder / "courses.csv").unlink()
    with pytest.raises(UnusableInput, match=r"courses\.csv"):
        import_folder(folder, store)
    assert store.counts() == dict.fromkeys(EXPECTED_KEYS, 0)


def test_missing_required_column_is_unusable_and_stores_nothing(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    (folder / "participations.csv").write_text(
        "event_id,resident_id,event,value,occurred_at\nE1,R1,view,,2025-03-01\n",
        encoding="utf-8")
    with pytest.raises(UnusableInput, match=r"participations\.csv.*'course_id'"):
        import_folder(folder, store)
    assert store.counts() == dict.fromkeys(EXPECTED_KEYS, 0)


def test_csv_and_parquet_of_one_table_is_unusable(store, tmp_path):
    folder = _write_malformed(tmp_path / "district")
    pd.DataFrame({"community_id": ["C01"]}).to_parquet(folder / "communities.parquet")
    with pytest.raises(UnusableInput, match="both communities.csv and communities.parquet"):
        import_folder(folder, store)
    with pytest.raises(UnusableInput, match="does not exist"):
        import_folder(tmp_path / "nowhere", store)


def _typed_tables():
    return {
        "communities": pd.DataFrame({"community_id": ["C01", "C02"],
                                     "name": ["文康社区", "中昌社区"],
                                     "street": ["东港街道", "沈家门街道"],
                                     "kind": ["leading", "inclusive"]}),
        "residents": pd.DataFrame({
            "resident_id": ["R1", "R2", "R3"],
            "birth_year": [1950.0, 2021.0, 1980.5],  # row 3: not a whole year
            "gender": ["F", None, "M"],
            "community_id": ["C01", "C01", "C02"],
            "household_id": ["H1", "H1", None],
            "registered_at": pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-03"]),
        }),
        "courses": pd.DataFrame({
            "course_id": ["K1"], "title": ["渔网编织"], "description": [None],
            "category": ["intangible_heritage"], "target_bands": ["school_age|elderly"],
            "tags": ["非遗"], "community_id": ["C02"], "fee_tier": ["value_added"],
            "capacity": [12], "start_date": [dt.date(2025, 3, 1)],
            "end_date": [dt.date(2025, 6, 30)], "weekday": pd.array([None], dtype="Int64"),
            "start_time": [None], "status": ["open"],
        }),
        "participations": pd.DataFrame({
            "event_id": ["E1", "E2", "E3"], "resident_id": ["R1", "R2", "R3"],
            "course_id": ["K1", "K1", "K1"], "event": ["enroll", "rate", "view"],
            "value": [np.nan, 4.0, np.nan],
            "occurred_at": pd.to_datetime(["2025-03-01 09:00:00", "2025-06-30 18:30:15",
                                           "2025-03-02 10:00:00"]),
        }),
    }


def test_parquet_folder_imports_typed_columns(store, tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    tables = _typed_tables()
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    report = import_folder(folder, store, chunk_rows=2)
    assert [(r["file"], r["line"], r["field"]) for r in report.rejected] == [
        ("residents.parquet", 3, "birth_year"),
        ("participations.parquet", 3, "resident_id"),
    ]
    assert store.keys("participations") == {"E1", "E2"}
    residents = store.read("residents").set_index("resident_id")
    assert residents.loc["R1", "birth_year"] == 1950
    assert residents.loc["R2", "registered_at"] == pd.Timestamp("2024-01-02")
    assert store.read("courses")["title"].tolist() == ["渔网编织"]
    assert store.read("communities")["street"].tolist() == ["东港街道", "沈家门街道"]
    again = import_folder(folder, store)
    assert sum(t.accepted for t in again.tables.values()) == 0


def test_generated_district_imports_without_rejects(store, tmp_path):
    from recommender.demo.generator import generate_district

    out = generate_district(tmp_path / "gen", residents=300, courses=25, seed=3,
                            as_of=dt.date(2026, 6, 30))
    report = import_folder(tmp_path / "gen", store)
    assert report.rejected == [] and report.exit_code == 0
    assert {n: t.accepted for n, t in report.tables.items()} == out["rows"]
    assert store.counts() == out["rows"]

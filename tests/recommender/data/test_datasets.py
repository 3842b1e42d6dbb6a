"""Dataset loaders: generic benchmark folders, district folders, the OULAD adapter, summaries."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.bands import AgeBands
from features.frames import DataBundle
from recommender.data.datasets import (
    DatasetError,
    bundle_from_tables,
    load_benchmark,
    load_dataset,
    load_district,
    summarize,
)
from recommender.data.oulad import OULAD_AGE_BANDS, convert_oulad

REPO = Path(__file__).resolve().parents[3]
OULAD_DIR = Path(os.environ.get("RECOMMENDER_OULAD_DIR", REPO / ".." / "shared/datasets/oulad"))


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- generic format


def test_generic_folder_loads_with_types_defaults_and_added_entities(tmp_path):
    write(
        tmp_path,
        "interactions.csv",
        "user_id,item_id,timestamp,event,weight,source\n"
        "007,NA,2024-03-01,enroll,2\n"
        "u2,c1,2024-03-02T10:30:00+08:00,complete,1.5,app\n"
        "u3,c9,2024-03-03 08:00,interact,0,app\n",
    )
    write(tmp_path, "users.csv", "user_id,age,age_band,city\n007,70,,宁波\nu2,30,school_age,舟山\n")
    write(tmp_path, "items.csv", "item_id,title,tags\nNA,剪纸,heritage|paper\nc1,茶艺,tea\n")
    b = load_benchmark(tmp_path)
    assert isinstance(b, DataBundle) and b.kind == "generic" and b.name == tmp_path.name
    inter = b.interactions
    # ids stay the strings they are: no int parsing, no "NA" -> NaN
    assert inter["user_id"].tolist() == ["007", "u2", "u3"]
    assert inter["item_id"].tolist() == ["NA", "c1", "c9"]
    assert inter["timestamp"].dtype == "datetime64[ns]"
    # an offset is converted to district time (Asia/Shanghai, +08:00); no offset: kept
    assert inter["timestamp"].tolist() == [
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-02 10:30"),
        pd.Timestamp("2024-03-03 08:00"),
    ]
    assert inter["weight"].tolist() == [2.0, 1.5, 0.0]
    assert inter["value"].isna().all()
    assert inter["source"].tolist()[1:] == ["app", "app"]  # extra columns are kept
    users = b.users.set_index("user_id")
    assert users.loc["007", "age_band"] == "elderly"  # from age
    assert users.loc["u2", "age_band"] == "school_age"  # explicit band wins over age
    assert users.loc["u2", "city"] == "舟山"
    assert pd.isna(users.loc["u3", "age_band"])  # referenced but absent: added, unknown
    assert set(b.items["item_id"]) == {"NA", "c1", "c9"}
    assert b.items.set_index("item_id").loc["NA", "title"] == "剪纸"
    assert b.meta["added_users"] == 1 and b.meta["added_items"] == 1


def test_generic_defaults_without_event_weight_and_side_files(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\n1,10,0\n2,10,86400.5\n")
    b = load_benchmark(tmp_path)
    assert b.interactions["event"].tolist() == ["interact", "interact"]
    assert b.interactions["weight"].tolist() == [1.0, 1.0]
    # numbers are seconds since the epoch (a UTC instant), shown in district time
    assert b.interactions["timestamp"].tolist() == [
        pd.Timestamp("1970-01-01 08:00"),
        pd.Timestamp("1970-01-02 08:00:00.5"),
    ]
    utc = load_benchmark(tmp_path, timezone="UTC").interactions["timestamp"]
    assert utc.tolist() == [pd.Timestamp("1970-01-01"), pd.Timestamp("1970-01-02 00:00:00.5")]
    assert sorted(b.users["user_id"]) == ["1", "2"] and b.items["item_id"].tolist() == ["10"]


@pytest.mark.parametrize(("values", "unit"), [
    (["1700000000", "1700086400.5"], "seconds"),
    (["1700000000000", "1700086400500"], "milliseconds"),
    (["1700000000000000", "1700086400500000"], "microseconds"),
    (["1700000000000000000", "1700086400500000001"], "nanoseconds"),
])
def test_epoch_numbers_in_any_unit_read_as_the_same_instants(tmp_path, values, unit):
    rows = "".join(f"u,i,{v}\n" for v in values)
    write(tmp_path, "interactions.csv", GOOD + rows)
    times = load_benchmark(tmp_path, timezone="UTC").interactions["timestamp"].tolist()
    assert times[0] == pd.Timestamp("2023-11-14 22:13:20")
    extra = pd.Timedelta(nanoseconds=1) if unit == "nanoseconds" else pd.Timedelta(0)
    assert times[1] == pd.Timestamp("2023-11-15 22:13:20.5") + extra  # integers stay exact


def test_an_epoch_number_of_another_unit_than_its_column_is_named(tmp_path):
    # seconds among milliseconds would silently read as January 1970
    write(tmp_path, "interactions.csv",
          GOOD + "u,i,1700000000000\nu,i,1700000000\nu,i,1700000500000\n")
    with pytest.raises(DatasetError, match=r"read as milliseconds.*line 3\b") as info:
        load_benchmark(tmp_path)
    assert info.value.lines == [3]


def test_age_uses_configured_band_edges(tmp_path):
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\na,x,2024-01-01\n")
    write(tmp_path, "users.csv", "user_id,age\na,55\n")
    assert load_benchmark(tmp_path).users["age_band"].tolist() == ["working_age"]
    bands = AgeBands((0, 6, 18, 55))
    assert load_benchmark(tmp_path, bands=bands).users["age_band"].tolist() == ["elderly"]


def test_ages_and_birth_years_band_by_the_same_rule(tmp_path):
    ages = [0, 5, 6, 17, 18, 59, 60, 99]
    expected = ["preschool", "preschool", "school_age", "school_age", "working_age",
                "working_age", "elderly", "elderly"]
    write(tmp_path, "interactions.csv", "user_id,item_id,timestamp\na0,x,2024-01-01\n")
    write(tmp_path, "users.csv", "user_id,age\n" + "".join(f"a{a},{a}\n" for a in ages))
    assert load_benchmark(tmp_path).users["age_band"].tolist() == expected
    bands, today = AgeBands(), dt.date(2024, 6, 1)
    assert bands.bands_of_ages(ages).tolist() == expected
    assert [bands.band(today.year - a, today) for a in ages] == expected
    assert bands.bands([today.year - a for a in ages], today).tolist() == expected
    with pytest.raises(ValueError, match="negative"):
        bands.bands_of_ages([-1])


GOOD = "user_id,item_id,timestamp\n"


@pytest.mark.parametrize(
    ("file", "text", "column", "fragments"),
    [
        ("interactions.csv", "user_id,timestamp\nu,2024-01-01\n", "item_id", ["missing"]),
        (
            "interactions.csv",
            GOOD + "u,i,2024-01-01\nu,i,yesterday\n",
            "timestamp",
            ["unparseable timestamp", "line 3"],
        ),
        (
            "interactions.csv",
            GOOD + "u,i,2024-01-01\nu,i,\n",
            "timestamp",
            ["missing timestamp", "line 3"],
        ),
        (
            "interactions.csv",
            GOOD + "u,i,1700000000\nu,i,2024-01-01\n",
            "timestamp",
            ["unparseable timestamp", "line 2"],
        ),  # mixed: read as dates, the number is bad
        (
            "interactions.csv",
            GOOD + "u,i,2024-01-01\n,i,2024-01-02\n",
            "user_id",
            ["empty id", "line 3"],
        ),
        (
            "interactions.csv",
            "user_id,item_id,timestamp,event\nu,i,2024-01-01,enrol\n"
            "u,i,2024-01-01,enroll\nu,i,2024-01-01,like\n",
            "event",
            ["unknown event value 'enrol'", "lines 2, 4"],
        ),
        (
            "interactions.csv",
            "user_id,item_id,timestamp,weight\nu,i,2024-01-01,1\nu,i,2024-01-01,-2\n",
            "weight",
            ["negative weight", "line 3"],
        ),
        (
            "interactions.csv",
            "user_id,item_id,timestamp,weight\nu,i,2024-01-01,lots\n",
            "weight",
            ["not a number", "line 2"],
        ),
        (
            "users.csv",
            "user_id,age_band\nu,elderly\nu,elderly\n",
            "user_id",
            ["duplicate id", "line 3"],
        ),
        ("users.csv", "user_id,age_band\nu,senior\n", "age_band", ["unknown age band", "line 2"]),
        ("users.csv", "user_id,age\nu,-3\n", "age", ["negative age", "line 2"]),
        ("users.csv", "id,age\nu,3\n", "user_id", ["missing required column"]),
        ("items.csv", "item_id,title\ni,a\ni,b\n", "item_id", ["duplicate id", "line 3"]),
    ],
)
def test_generic_errors_name_file_column_and_line(tmp_path, file, text, column, fragments):
    if file != "interactions.csv":
        write(tmp_path, "interactions.csv", GOOD + "u,i,2024-01-01\n")
    write(tmp_path, file, text)
    with pytest.raises(DatasetError) as info:
        load_benchmark(tmp_path)
    message = str(info.value)
    assert file in message and repr(column) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.column == column


def test_many_bad_rows_are_listed_then_counted(tmp_path):
    rows = "".join(f"u,i,{'bad' if k % 2 else '2024-01-01'}\n" for k in range(20))
    write(tmp_path, "interactions.csv", GOOD + rows)
    with pytest.raises(DatasetError, match=r"lines 3, 5, 7, 9, 11 \(and 5 more of 10\)") as info:
        load_benchmark(tmp_path)
    assert info.value.lines == list(range(3, 22, 2))


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="interactions.csv.*file not found"):
        load_benchmark(tmp_path)
    (tmp_path / "interactions.csv").write_bytes(GOOD.encode() + b"u,\xff\xfe,2024-01-01\n")
    with pytest.raises(DatasetError, match="interactions.csv.*UTF-8"):
        load_benchmark(tmp_path)
    write(tmp_path, "interactions.csv", GOOD)
    with pytest.raises(DatasetError, match="no interaction rows"):
        load_benchmark(tmp_path)


# --------------------------------------------------------------------------- district format


def district_tables() -> dict[str, pd.DataFrame]:
    communities = pd.DataFrame(
        {
            "community_id": ["c1", "c2"],
            "name": ["文康社区", "中昌社区"],
            "street": ["东港街道", "沈家门街道"],
            "kind": ["leading", "inclusive"],
        }
    )
    residents = pd.DataFrame(
        {
            "resident_id": ["r1", "r2", "r3"],
            "birth_year": [2021, 1950, 1990],
            "gender": ["F", "M", None],
            "community_id": ["c1", "c2", "c1"],
            "household_id": ["h1", "h2", "h1"],
            "registered_at": ["2023-01-05", "2023-02-01", "2023-03-01"],
        }
    )
    courses = pd.DataFrame(
        {
            "course_id": ["k1", "k2"],
            "title": ["剪纸入门", "太极拳"],
            "description": [None, "x"],
            "category": ["intangible_heritage", "interest"],
            "target_bands": ["school_age", "elderly"],
            "tags": ["剪纸|非遗", "健康"],
            "community_id": ["c2", "c1"],
            "fee_tier": ["inclusive", "upgraded"],
            "capacity": [20, 15],
            "start_date": ["2024-03-01", "2024-04-01"],
            "end_date": ["2024-06-01", "2024-07-01"],
            "weekday": [1, 3],
            "start_time": ["09:00", "14:00"],
            "status": ["open", "full"],
        }
    )
    participations = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "resident_id": ["r2", "r1", "r2", "r3"],
            "course_id": ["k2", "k1", "k2", "k1"],
            "event": ["rate", "enroll", "enroll", "view"],
            "value": [5, None, None, None],
            "occurred_at": [
                "2024-05-02T10:00:00",
                "2024-03-01T09:00:00",
                "2024-04-01T08:00:00",
                "2024-04-02T08:00:00",
            ],
        }
    )
    return {
        "communities": communities,
        "residents": residents,
        "courses": courses,
        "participations": participations,
    }


def write_district(folder: Path, fmt: str = "csv", tables=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (tables or district_tables()).items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False, encoding="utf-8")
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_district_folder_maps_onto_bundle(tmp_path, fmt):
    b = load_district(write_district(tmp_path / "d", fmt))
    assert b.kind == "district" and b.meta["as_of"] == "2024-05-02"
    inter = b.interactions
    # sorted by time, occurred_at -> timestamp, weight 1, value and event kept
    assert inter["event_id"].tolist() == ["e2", "e3", "e4", "e1"]
    assert inter["timestamp"].dtype == "datetime64[ns]"
    assert inter["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 09:00")
    assert inter["weight"].tolist() == [1.0] * 4
    assert inter.set_index("event_id").loc["e1", "value"] == 5.0
    assert inter["value"].isna().sum() == 3
    users = b.users.set_index("user_id")
    assert users.loc[["r1", "r2", "r3"], "age_band"].tolist() == [
        "preschool",
        "elderly",
        "working_age",
    ]
    assert users.loc["r2", "street"] == "沈家门街道" and users.loc["r1", "street"] == "东港街道"
    items = b.items.set_index("item_id")
    assert items.loc["k1", "street"] == "沈家门街道"  # the venue's street
    assert items.loc["k1", "title"] == "剪纸入门" and items.loc["k1", "tags"] == "剪纸|非遗"
    assert items["start_date"].dtype == "datetime64[ns]"
    assert len(b.users) == 3 and len(b.items) == 2


def test_district_as_of_and_store_frames_give_the_same_mapping(tmp_path):
    folder = write_district(tmp_path / "d")
    assert load_district(folder, as_of="2030-01-01").users["age_band"].tolist() == [
        "school_age",
        "elderly",
        "working_age",
    ]
    typed = district_tables()  # as the store returns them: typed dates and ints
    typed["participations"]["occurred_at"] = pd.to_datetime(typed["participations"]["occurred_at"])
    typed["residents"]["birth_year"] = pd.array([2021, 1950, 1990], dtype="Int64")
    from_store = bundle_from_tables(typed, name="store")
    from_folder = load_district(folder)
    for part in ("interactions", "users"):
        left, right = getattr(from_store, part), getattr(from_folder, part)
        pd.testing.assert_frame_equal(left[right.columns], right, check_dtype=False)


def test_district_errors_name_file_and_line(tmp_path):
    tables = district_tables()
    tables["participations"].loc[2, "occurred_at"] = "2024-13-45"
    folder = write_district(tmp_path / "bad", tables=tables)
    with pytest.raises(DatasetError, match=r"participations.csv: column 'occurred_at'.*line 4"):
        load_district(folder)
    tables = district_tables()
    tables["participations"].loc[0, "event"] = "liked"
    expected = r"^participations: column 'event': event must be one of: view, .* on row 1$"
    with pytest.raises(DatasetError, match=expected):
        bundle_from_tables(tables)
    with pytest.raises(DatasetError, match="born after the reference date"):
        bundle_from_tables(district_tables(), as_of=dt.date(2020, 1, 1))
    folder = write_district(tmp_path / "both")
    write_district(folder, "parquet")
    with pytest.raises(DatasetError, match="both communities.csv and communities.parquet"):
        load_district(folder)
    (tmp_path / "partial").mkdir()
    write_district(tmp_path / "partial")
    (tmp_path / "partial" / "courses.csv").unlink()
    with pytest.raises(DatasetError, match="courses.csv.*file not found"):
        load_district(tmp_path / "partial")


@pytest.mark.parametrize("fmt, where", [("csv", "first on line 3\\) on line 5"),
                                        ("parquet", "first on line 2\\) on row 4")])
def test_a_repeated_key_names_the_line_it_repeats(tmp_path, fmt, where):
    # distinct keys skip the validator's repeat check; a repeat still fails with its first line
    tables = district_tables()
    tables["participations"].loc[3, "event_id"] = tables["participations"].loc[1, "event_id"]
    folder = write_district(tmp_path / "d", fmt, tables=tables)
    with pytest.raises(DatasetError, match=rf"'event_id': duplicate event_id \({where}$"):
        load_district(folder)


def test_load_dataset_dispatches_and_refuses_other_folders(tmp_path):
    assert load_dataset(write_district(tmp_path / "d")).kind == "district"
    write(tmp_path / "g", "interactions.csv", GOOD + "u,i,2024-01-01\n")
    assert load_dataset(tmp_path / "g").kind == "generic"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="neither a district folder"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(tmp_path / "nowhere")


def test_summarize_counts(tmp_path):
    s = summarize(load_district(write_district(tmp_path / "d")))
    assert s["users"] == 3 and s["items"] == 2 and s["interactions"] == 4
    assert s["events"] == {"enroll": 2, "rate": 1, "view": 1}
    assert s["users_per_band"] == {
        "preschool": 1,
        "school_age": 0,
        "working_age": 1,
        "elderly": 1,
        "unknown": 0,
    }
    assert s["time_range"] == ["2024-03-01T09:00:00", "2024-05-02T10:00:00"]


# --------------------------------------------------------------------------- OULAD


@pytest.fixture(scope="module")
def oulad_src() -> Path:
    if not (OULAD_DIR / "studentInfo.csv").exists():
        pytest.fail(
            f"OULAD not found at {OULAD_DIR.resolve()}: set RECOMMENDER_OULAD_DIR to the folder "
            "holding studentInfo.csv (the test needs the real data and does not skip)"
        )
    return OULAD_DIR


@pytest.fixture(scope="module")
def oulad(oulad_src, tmp_path_factory):
    out = tmp_path_factory.mktemp("oulad")
    counts = convert_oulad(oulad_src, out)
    read = {
        n: pd.read_csv(oulad_src / f"{n}.csv", dtype=str)
        for n in ("studentInfo", "studentRegistration", "courses")
    }
    return out, counts, read


def test_oulad_row_counts_match_the_source(oulad):
    out, counts, src = oulad
    info, reg, courses = src["studentInfo"], src["studentRegistration"], src["courses"]
    events = {
        "enroll": len(reg),
        "complete": int(info["final_result"].isin(["Pass", "Distinction"]).sum()),
        "cancel": int(reg["date_unregistration"].notna().sum()),
    }
    assert counts["events"] == events
    assert counts["interactions"] == sum(events.values())
    assert counts["users"] == info["id_student"].nunique()
    assert counts["items"] == len(courses)
    assert counts["registration_date_imputed"] == int(reg["date_registration"].isna().sum())
    for name, rows in (
        ("interactions", counts["interactions"]),
        ("users", counts["users"]),
        ("items", counts["items"]),
    ):
        assert len(pd.read_csv(out / f"{name}.csv")) == rows


def test_oulad_age_bands_attribution_and_items(oulad):
    out, _, src = oulad
    users = pd.read_csv(out / "users.csv", dtype=str)
    assert {
        "user_id",
        "age_band",
        "age_band_source",
        "gender",
        "region",
        "highest_education",
        "imd_band",
    } <= set(users.columns)
    assert (users["age_band"] == users["age_band_source"].map(OULAD_AGE_BANDS)).all()
    assert set(users["age_band"]) == {"working_age", "elderly"}
    # every student whose only band is 55<= is elderly
    info = src["studentInfo"]
    only_old = (info["age_band"] == "55<=").groupby(info["id_student"]).all()
    elderly = set(users.loc[users["age_band"] == "elderly", "user_id"])
    assert elderly >= set(only_old[only_old].index)

    items = pd.read_csv(out / "items.csv", dtype=str)
    inter = pd.read_csv(out / "interactions.csv", dtype=str)
    assert set(inter["item_id"]) <= set(items["item_id"])
    aaa = items.set_index("item_id").loc["AAA-2013J"]
    assert aaa["category"] == "AAA" and aaa["tags"].split("|")[:2] == ["AAA", "J"]
    assert "TMA" in aaa["tags"].split("|")
    readme = (out / "README.md").read_text()
    assert "ATTRIBUTION:" in readme and "CC BY 4.0" in readme and "10.1038/sdata.2017.171" in readme
    assert (out / "OULAD_README.md").read_text() == (OULAD_DIR / "README.md").read_text()


def test_oulad_timestamps_follow_presentation_order(oulad):
    out, _, src = oulad
    inter = pd.read_csv(out / "interactions.csv", dtype=str, parse_dates=["timestamp"])
    inter["presentation"] = inter["item_id"].str.split("-").str[1]
    assert inter["timestamp"].is_monotonic_increasing  # written in time order
    order = ["2013B", "2013J", "2014B", "2014J"]
    enroll = inter[inter["event"] == "enroll"].groupby("presentation")["timestamp"].median()
    complete = inter[inter["event"] == "complete"].groupby("presentation")["timestamp"].min()
    assert enroll.loc[order].is_monotonic_increasing and enroll.loc[order].is_unique
    assert complete.loc[order].is_monotonic_increasing and complete.loc[order].is_unique
    # a completion sits at presentation start + module length; J starts 1 Oct, B 1 Feb
    courses = src["courses"]
    row = courses[(courses["code_module"] == "AAA") & (courses["code_presentation"] == "2013J")]
    length = int(row["module_presentation_length"].iloc[0])
    end = pd.Timestamp("2013-10-01") + pd.Timedelta(days=length)
    aaa = inter[(inter["item_id"] == "AAA-2013J") & (inter["event"] == "complete")]
    assert (aaa["timestamp"] == end).all() and len(aaa) > 0
    first = inter[(inter["item_id"] == "AAA-2013J") & (inter["event"] == "enroll")]
    reg = src["studentRegistration"]
    reg = reg[(reg["code_module"] == "AAA") & (reg["code_presentation"] == "2013J")]
    days = pd.to_numeric(reg["date_registration"]).min()
    assert first["timestamp"].min() == pd.Timestamp("2013-10-01") + pd.Timedelta(days=days)


def test_oulad_round_trip_through_load_benchmark(oulad):
    out, counts, _ = oulad
    b = load_benchmark(out)
    assert len(b.interactions) == counts["interactions"]
    assert len(b.users) == counts["users"] and len(b.items) == counts["items"]
    assert b.meta["added_users"] == 0 and b.meta["added_items"] == 0
    s = summarize(b)
    assert s["events"] == counts["events"]
    assert s["users_per_band"]["unknown"] == 0
    assert s["users_per_band"]["elderly"] == int((b.users["age_band"] == "elderly").sum()) > 0
    assert np.issubdtype(b.interactions["timestamp"].dtype, np.datetime64)


def test_oulad_errors_name_the_file(tmp_path, oulad_src):
    with pytest.raises(DatasetError, match="OULAD folder not found"):
        convert_oulad(tmp_path / "missing", tmp_path / "out")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "courses.csv").write_text((oulad_src / "courses.csv").read_text())
    with pytest.raises(DatasetError, match="studentInfo.csv.*file not found"):
        convert_oulad(partial, tmp_path / "out")

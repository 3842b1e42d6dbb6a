"""The demo district: schema, integrity, determinism and its realism claims."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd
import pytest

from recommender.demo.generator import generate_district
from recommender.domain import (
    BAND_NAMES,
    CATEGORIES,
    CATEGORY_FOR_BAND,
    COMMUNITY_KINDS,
    COURSE_STATUSES,
    EVENTS,
    FEE_TIERS,
    TABLES,
    AgeBands,
)

AS_OF = dt.date(2025, 6, 1)  # a 14-month window then holds a summer and a winter holiday
SIZE = {"residents": 3000, "courses": 150}


def _read(folder, fmt):
    out = {}
    for name in TABLES:
        if fmt == "csv":
            out[name] = pd.read_csv(
                folder / f"{name}.csv", dtype=str, keep_default_na=False, encoding="utf-8"
            )
        else:
            out[name] = pd.read_parquet(folder / f"{name}.parquet")
    return out


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    folder = tmp_path_factory.mktemp("district_csv")
    summary = generate_district(folder, seed=7, as_of=AS_OF, **SIZE)
    t = _read(folder, "csv")
    res, crs, ev = t["residents"], t["courses"], t["participations"]
    res["birth_year"] = res["birth_year"].astype(int)
    band = pd.Series(AgeBands().bands(res["birth_year"], AS_OF), index=res.index, name="band")
    res["registered_at"] = pd.to_datetime(res["registered_at"])
    for col in ("start_date", "end_date"):
        crs[col] = pd.to_datetime(crs[col])
    crs["capacity"] = crs["capacity"].astype(int)
    ev["occurred_at"] = pd.to_datetime(ev["occurred_at"])
    ev["value"] = pd.to_numeric(ev["value"].replace("", np.nan))
    return {"folder": folder, "summary": summary, "band": band, **t}


@pytest.fixture(scope="module")
def enrolments(district):
    res, crs, ev = district["residents"], district["courses"], district["participations"]
    res = res.assign(band=district["band"])
    en = ev[ev["event"] == "enroll"]
    en = en.merge(res[["resident_id", "community_id", "household_id", "band"]], on="resident_id")
    return en.merge(
        crs[["course_id", "community_id", "category"]], on="course_id", suffixes=("", "_venue")
    )


def test_files_have_exactly_the_domain_columns_in_order(district):
    for name, spec in TABLES.items():
        assert list(district[name].columns) == spec.column_names, name
    assert district["summary"]["rows"] == {
        name: len(district[name]) for name in ("communities", "residents", "courses")
    } | {"participations": len(district["participations"])}
    assert len(district["residents"]) == SIZE["residents"]
    assert len(district["courses"]) == SIZE["courses"]


def test_ids_are_pseudonymous_unique_and_foreign_keys_resolve(district):
    com, res, crs, ev = (district[n] for n in TABLES)
    patterns = {
        "communities": ("community_id", r"C\d{2}"),
        "residents": ("resident_id", r"R\d{6}"),
        "courses": ("course_id", r"K\d{4}"),
        "participations": ("event_id", r"E\d{8}"),
    }
    for name, (col, pat) in patterns.items():
        ids = district[name][col]
        assert ids.is_unique, name
        assert ids.str.fullmatch(pat).all(), name
    households = res["household_id"][res["household_id"] != ""]
    assert households.str.fullmatch(r"H\d{5}").all()
    assert set(res["community_id"]) <= set(com["community_id"])
    assert set(crs["community_id"]) <= set(com["community_id"])
    assert set(ev["resident_id"]) <= set(res["resident_id"])
    assert set(ev["course_id"]) <= set(crs["course_id"])


def test_enums_ranges_and_formats(district):
    com, res, crs, ev = (district[n] for n in TABLES)
    assert set(com["kind"]) <= set(COMMUNITY_KINDS) and "leading" in set(com["kind"])
    assert set(res["gender"]) <= {"F", "M", "X", ""}
    assert set(crs["category"]) == set(CATEGORIES)
    assert set(crs["fee_tier"]) == set(FEE_TIERS)
    assert (crs["fee_tier"] == "inclusive").mean() > 0.5
    assert set(crs["status"]) == set(COURSE_STATUSES)
    assert set(ev["event"]) == set(EVENTS)
    for bands in crs["target_bands"]:
        parts = bands.split("|")
        assert parts and set(parts) <= set(BAND_NAMES) and len(set(parts)) == len(parts)
    assert (crs["capacity"] >= 0).all()
    assert crs["weekday"].astype(int).between(0, 6).all()
    assert crs["start_time"].str.fullmatch(r"([01]\d|2[0-3]):[0-5]\d").all()
    assert (crs["start_date"] <= crs["end_date"]).all()
    assert (crs["start_date"].dt.day_of_week == crs["weekday"].astype(int)).all()
    rated = ev["event"] == "rate"
    assert ev.loc[rated, "value"].between(1, 5).all()
    assert (ev.loc[rated, "value"] % 1 == 0).all()
    assert ev.loc[~rated, "value"].isna().all()
    assert (crs["description"] == "").any() and (crs["description"] != "").mean() > 0.7
    assert crs["tags"].str.contains("|", regex=False).mean() > 0.9


def test_chinese_titles_and_names_in_all_four_categories(district):
    com, crs = district["communities"], district["courses"]
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert crs["title"].map(lambda s: bool(cjk.search(s))).all()
    assert {"文康社区", "中昌社区", "中洲社区", "西河社区", "莲洋社区"} <= set(com["name"])
    assert {"东港街道", "沈家门街道"} <= set(com["street"]) and com["street"].nunique() >= 3
    titles = "".join(crs["title"])
    assert sum(word in titles for word in ("剪纸", "渔网编织", "越剧", "书法", "茶艺")) >= 3
    # Family courses are meant for a preschooler and an elder together.
    assert (crs["target_bands"] == "preschool|elderly").any()
    assert (crs["target_bands"].str.count(r"\|") == 0).mean() > 0.5


def test_csv_and_parquet_hold_the_same_data_and_round_trip_chinese(tmp_path):
    small = {"residents": 400, "courses": 40}
    generate_district(tmp_path / "c", seed=3, as_of=AS_OF, fmt="csv", **small)
    generate_district(tmp_path / "p", seed=3, as_of=AS_OF, fmt="parquet", **small)
    csv, par = _read(tmp_path / "c", "csv"), _read(tmp_path / "p", "parquet")
    for name in TABLES:
        assert list(par[name].columns) == TABLES[name].column_names
        assert len(par[name]) == len(csv[name])
    assert list(par["courses"]["title"]) == list(csv["courses"]["title"])
    assert list(par["communities"]["name"]) == list(csv["communities"]["name"])
    assert par["communities"]["name"].iloc[0] == "文康社区"
    assert list(par["participations"]["event_id"]) == list(csv["participations"]["event_id"])
    assert str(par["participations"]["occurred_at"].dtype).startswith("datetime64")


def test_same_seed_same_bytes_other_seed_different(tmp_path):
    small = {"residents": 300, "courses": 30}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate_district(tmp_path / name, seed=seed, as_of=AS_OF, **small)
    generate_district(tmp_path / "pa", seed=5, as_of=AS_OF, fmt="parquet", **small)
    generate_district(tmp_path / "pb", seed=5, as_of=AS_OF, fmt="parquet", **small)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(files) == 7
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    for p in (tmp_path / "pa").iterdir():
        assert p.read_bytes() == (tmp_path / "pb" / p.name).read_bytes(), p.name
    for f in ("residents.csv", "participations.csv", "hidden_tastes.npz"):
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes(), f


def test_ageing_population_in_mixed_generation_households(district):
    res = district["residents"].assign(band=district["band"])
    shares = res["band"].value_counts(normalize=True)
    assert set(shares.index) == set(BAND_NAMES)
    assert 0.20 <= shares["elderly"] <= 0.30
    ages = AS_OF.year - res["birth_year"]
    assert ages.between(1, 100).all()
    bands = res[res["household_id"] != ""].groupby("household_id")["band"].agg(set)
    with_pre = bands.map(lambda s: "preschool" in s)
    old_and_small = bands.map(lambda s: {"elderly", "preschool"} <= s)
    parent_school = bands.map(lambda s: {"working_age", "school_age"} <= s)
    assert old_and_small.sum() >= 0.4 * with_pre.sum() and old_and_small.sum() >= 50
    assert parent_school.sum() >= 0.2 * len(bands)
    assert (bands.map(len) >= 3).sum() >= 0.05 * len(bands)  # three generations live together


def test_events_sit_in_the_window_after_registration_and_inside_course_dates(district):
    res, crs, ev = district["residents"], district["courses"], district["participations"]
    as_of = pd.Timestamp(AS_OF)
    assert ev["occurred_at"].max() < as_of
    assert ev["occurred_at"].min() >= as_of - pd.DateOffset(months=14)
    assert (res["registered_at"] < as_of).all()
    e = ev.merge(res[["resident_id", "registered_at"]], on="resident_id").merge(
        crs[["course_id", "start_date", "end_date"]], on="course_id"
    )
    assert (e["occurred_at"] >= e["registered_at"]).all()
    assert (e["occurred_at"] < e["end_date"] + pd.Timedelta(days=1)).all()
    assert (e["occurred_at"] >= e["start_date"] - pd.Timedelta(days=21)).all()
    held = e["event"].isin(["attend", "no_show", "complete"])
    assert (e.loc[held, "occurred_at"] >= e.loc[held, "start_date"] - pd.Timedelta(hours=1)).all()
    # Event ids follow time.
    assert ev["occurred_at"].is_monotonic_increasing


def test_funnels_are_time_ordered_and_plausible(district):
    ev = district["participations"]
    counts = ev["event"].value_counts()
    assert counts["view"] > 3 * counts["enroll"]
    assert counts["attend"] > 2 * counts["enroll"]
    assert counts["enroll"] > counts["complete"] > counts["rate"] > 0
    assert counts["cancel"] > 0 and counts["no_show"] > 0
    first = ev.pivot_table(
        index=["resident_id", "course_id"], columns="event", values="occurred_at", aggfunc="min"
    )
    last = ev.pivot_table(
        index=["resident_id", "course_id"], columns="event", values="occurred_at", aggfunc="max"
    )
    assert first["view"].notna().all()  # nobody enrols in a course they never saw
    assert (first["enroll"].dropna() >= first.loc[first["enroll"].notna(), "view"]).all()
    for later in ("attend", "no_show", "cancel"):
        both = first[later].notna()
        assert first.loc[both, "enroll"].notna().all(), later
        assert (first.loc[both, later] > first.loc[both, "enroll"]).all(), later
    done = first["complete"].notna()
    assert (first.loc[done, "complete"] > last.loc[done, "attend"]).all()
    both = done & first["rate"].notna()
    assert (first.loc[both, "rate"] > first.loc[both, "complete"]).all()
    assert first.loc[first["cancel"].notna(), "attend"].isna().all()
    ratings = ev.merge(
        ev.loc[ev["event"] == "complete", ["resident_id", "course_id"]],
        on=["resident_id", "course_id"],
    )
    ratings = ratings.loc[ratings["event"] == "rate", "value"]
    assert ratings.isin([4, 5]).mean() > 0.7


def test_course_status_capacity_and_future_courses(district):
    crs, ev = district["courses"], district["participations"]
    as_of = pd.Timestamp(AS_OF)
    ended = crs["end_date"] < as_of
    assert (crs.loc[ended, "status"] == "closed").all()
    assert (crs.loc[~ended, "status"] != "closed").all()
    running = crs.loc[~ended]
    assert (running["start_date"] > as_of).any()  # upcoming courses to recommend
    assert 0.05 < (running["status"] == "full").mean() < 0.6
    net = (
        ev[ev["event"] == "enroll"]
        .groupby("course_id")
        .size()
        .sub(ev[ev["event"] == "cancel"].groupby("course_id").size(), fill_value=0)
    )
    cap = crs.set_index("course_id")["capacity"]
    assert (net <= cap.reindex(net.index)).all()
    full = crs.loc[crs["status"] == "full", "course_id"]
    assert (net.reindex(full).fillna(0) >= cap.reindex(full)).all()


def test_hidden_tastes_are_written_and_reflected_in_enrolments(district, enrolments):
    folder, res = district["folder"], district["residents"].assign(band=district["band"])
    hidden = json.loads((folder / "hidden_tastes.json").read_text("utf-8"))
    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    assert meta["seed"] == 7 and meta["as_of"] == "2025-06-01"
    assert meta["rows"]["participations"] == len(district["participations"])
    assert hidden["categories"] == list(CATEGORIES)
    assert set(hidden["band_category_logits"]) == set(BAND_NAMES)
    with np.load(folder / "hidden_tastes.npz", allow_pickle=False) as z:
        fav = z["favourite_category"]
        assert z["resident_category_affinity"].shape == (len(res), 4)
        assert z["course_factors"].shape[0] == len(district["courses"])
    assert fav.shape == (len(res),)
    favourite = pd.Series(np.asarray(CATEGORIES)[fav], index=res["resident_id"])
    band = res.set_index("resident_id")["band"]
    top = enrolments.groupby("resident_id")["category"].agg(lambda s: s.value_counts().index[0])
    assert len(top) > 500
    hit = top == favourite[top.index]
    # Residents whose taste departs from their band's: the band alone would not find it.
    off = favourite[top.index] != band[top.index].map(CATEGORY_FOR_BAND)
    assert off.sum() > 100
    assert hit.mean() > 0.6
    assert hit[off].mean() > 0.4  # chance is 0.25


def test_community_household_and_popularity_effects(district, enrolments):
    en = enrolments
    n_comm = len(district["communities"])
    assert (en["community_id"] == en["community_id_venue"]).mean() > 3 / n_comm
    # Grandparent and preschool grandchild enrol in the same course within a week.
    en = en[en["household_id"] != ""]
    pair = en[en["band"] == "preschool"].merge(
        en[en["band"] == "elderly"], on=["household_id", "course_id"]
    )
    together = (pair["occurred_at_x"] - pair["occurred_at_y"]).abs() < pd.Timedelta(days=7)
    assert together.sum() >= 30
    assert (pair.loc[together, "category_x"] == "handicraft").mean() > 0.8
    per_course = enrolments.groupby("course_id").size().sort_values(ascending=False)
    top_tenth = per_course.iloc[: max(1, len(district["courses"]) // 10)].sum()
    assert top_tenth > 0.2 * per_course.sum()


def test_school_age_activity_peaks_in_holidays(district):
    res, ev = district["residents"], district["participations"]
    kids = set(res.loc[district["band"] == "school_age", "resident_id"])
    att = ev[(ev["event"] == "attend") & ev["resident_id"].isin(kids)]
    month = att["occurred_at"].dt.month
    holiday = month.isin([1, 2, 7, 8])
    # Per-month rate; the window covers each calendar month at least once.
    assert holiday.sum() / 4 > 1.5 * (~holiday).sum() / 8


def test_events_per_resident_is_honoured(tmp_path):
    s = generate_district(
        tmp_path / "d", residents=1500, courses=80, seed=1, as_of=AS_OF, events_per_resident=10
    )
    assert 7 <= s["rows"]["participations"] / 1500 <= 13
    assert set(s["stage_seconds"]) >= {"sampling", "funnels", "writing"}


def test_default_size_is_near_25_events_per_resident(district):
    assert 19 <= len(district["participations"]) / SIZE["residents"] <= 31


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"fmt": "xlsx"}, "fmt"),
        ({"residents": 0}, "residents"),
        ({"courses": 2.5}, "courses"),
        ({"months": 1}, "months"),
        ({"events_per_resident": 0}, "events_per_resident"),
        ({"as_of": "2025-06-01"}, "as_of"),
    ],
)
def test_bad_arguments_name_the_parameter(tmp_path, kwargs, word):
    with pytest.raises(ValueError, match=word):
        generate_district(tmp_path, **kwargs)

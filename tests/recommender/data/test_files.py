"""The one table-file locator, and the importer and the loaders speaking through it."""

from __future__ import annotations

import pandas as pd
import pytest

from recommender.data.datasets import DatasetError, load_benchmark, load_dataset, load_district
from recommender.data.files import TableFileError, find_table_file, find_table_files
from recommender.data.ingest import UnusableInput, import_folder
from recommender.domain import TABLE_ORDER


def test_finds_one_file_per_table(tmp_path):
    (tmp_path / "residents.csv").write_text("resident_id\n", encoding="utf-8")
    pd.DataFrame({"course_id": ["K1"]}).to_parquet(tmp_path / "courses.parquet")
    (tmp_path / "residents.json").write_text("{}", encoding="utf-8")  # not a table format
    assert find_table_file(tmp_path, "residents") == tmp_path / "residents.csv"
    assert find_table_file(tmp_path, "courses") == tmp_path / "courses.parquet"
    assert find_table_file(tmp_path, "courses", ("csv",), required=False) is None
    assert find_table_files(tmp_path, ["residents", "courses"]) == {
        "residents": tmp_path / "residents.csv", "courses": tmp_path / "courses.parquet"}


def test_missing_doubled_and_no_folder(tmp_path):
    with pytest.raises(TableFileError, match=r"communities\.csv: file not found "
                                             r"\(nor communities\.parquet\)") as info:
        find_table_file(tmp_path, "communities")
    assert info.value.path == tmp_path / "communities.csv"
    with pytest.raises(TableFileError, match=r"interactions\.csv: file not found$"):
        find_table_file(tmp_path, "interactions", ("csv",))
    (tmp_path / "courses.csv").write_text("course_id\n", encoding="utf-8")
    (tmp_path / "courses.parquet").write_bytes(b"")
    with pytest.raises(TableFileError, match="both courses.csv and courses.parquet are present"):
        find_table_file(tmp_path, "courses", required=False)
    with pytest.raises(TableFileError, match="not a folder"):
        find_table_file(tmp_path / "nowhere", "courses")


def test_importer_and_loaders_report_the_same_problem(store, tmp_path):
    for name in TABLE_ORDER:
        (tmp_path / f"{name}.csv").write_text("x\n", encoding="utf-8")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "residents.parquet")
    expected = "both residents.csv and residents.parquet are present; keep one"
    with pytest.raises(UnusableInput, match=expected):
        import_folder(tmp_path, store)
    for load in (load_district, load_dataset):
        with pytest.raises(DatasetError, match=expected):
            load(tmp_path)
    (tmp_path / "residents.parquet").unlink()
    (tmp_path / "courses.csv").unlink()
    with pytest.raises(UnusableInput, match=r"courses\.csv: file not found"):
        import_folder(tmp_path, store)
    with pytest.raises(DatasetError, match=r"courses\.csv: file not found"):
        load_district(tmp_path)
    with pytest.raises(DatasetError, match=r"interactions\.csv: file not found"):
        load_benchmark(tmp_path)

"""The date rule of what can be offered: ``end_date >= day``, shared by benchmark and service."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.availability import available_on, end_dates, items_available


def test_a_course_is_available_through_its_last_day():
    end = np.array(["2025-03-01", "2025-03-02", "NaT"], dtype="datetime64[D]")
    assert available_on(end, dt.date(2025, 3, 2)).tolist() == [False, True, True]
    # only the date of a moment counts: a cut in the evening of the last day keeps the course
    assert available_on(end, pd.Timestamp("2025-03-02 21:30")).tolist() == [False, True, True]
    # what the service asks: still running tomorrow, and known to be
    tomorrow = dt.date(2025, 3, 1) + dt.timedelta(days=1)
    assert available_on(end, tomorrow, unknown=False).tolist() == [False, True, False]


def test_end_dates_need_at_least_one_known_date():
    assert end_dates(pd.DataFrame({"item_id": ["a"]})) is None
    assert end_dates(pd.DataFrame({"item_id": ["a"], "end_date": [None]})) is None
    days = end_dates(pd.DataFrame({"item_id": ["a", "b"], "end_date": ["2025-01-31", "bad"]}))
    assert days.dtype == np.dtype("datetime64[D]") and np.isnat(days[1])


def test_items_available_aligns_with_the_catalogue():
    items = pd.DataFrame({"item_id": ["old", "new", "old"],
                          "end_date": pd.to_datetime(["2025-01-31", "2025-06-30", "2030-01-01"])})
    # "x" is not in the table (no end date: available); the first row of a duplicate id counts
    mask = items_available(items, ["new", "old", "x"], pd.Timestamp("2025-02-01 08:00"))
    assert mask.tolist() == [True, False, True]
    assert items_available(items, ["new"], None) is None
    assert items_available(items, ["new"], 1234) is None  # a number has no calendar
    assert items_available(items.drop(columns="end_date"), ["new"], pd.Timestamp(0)) is None

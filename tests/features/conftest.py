"""Tiny hand-made district and generic bundles shared by the feature tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.frames import DataBundle

CUTOFF = pd.Timestamp("2024-06-30 23:59")


def district_bundle(extra_events: bool = False) -> DataBundle:
    """Five residents (two households), three courses, a dozen events up to the cut-off.

    With ``extra_events``, events after the cut-off are added, including a resident and a
    course that only appear after it.
    """
    users = pd.DataFrame({
        "user_id": ["u1", "u2", "u3", "u4", "u5"],
        "birth_year": [1964, 1990, 2019, 2012, 1950],
        "community_id": ["c1", "c1", "c1", "c2", "c2"],
        "street": ["s1", "s1", "s1", "s2", "s2"],
        "household_id": ["h1", "h1", "h1", None, "h2"],
        "registered_at": pd.to_datetime(["2024-01-01"] * 4 + ["2024-06-20"]),
    })
    items = pd.DataFrame({
        "item_id": ["k1", "k2", "k3"],
        "title": ["书法入门", "Digital skills", None],
        "description": ["毛笔书法 练字", "Smartphone and computer basics", None],
        "category": ["interest", "skills", "handicraft"],
        "target_bands": ["elderly", "working_age|elderly", "preschool"],
        "tags": ["书法|传统", "digital|phone", None],
        "community_id": ["c1", "c2", "c1"],
        "street": ["s1", "s2", "s1"],
        "fee_tier": ["inclusive", "upgraded", "inclusive"],
        "capacity": [10, 4, 0],
        "weekday": [0, 2, None],
        "start_time": ["09:00", "19:30", None],
        "start_date": pd.to_datetime(["2024-03-04", "2024-03-06", "2024-07-01"]),
        "status": ["open", "full", "open"],
    })
    rows = [
        # user, item, timestamp, event, value
        ("u1", "k1", "2024-03-01 10:00", "view", np.nan),
        ("u1", "k1", "2024-03-02 10:00", "enroll", np.nan),
        ("u1", "k1", "2024-03-04 09:00", "attend", np.nan),
        ("u1", "k1", "2024-03-11 09:00", "attend", np.nan),
        ("u1", "k1", "2024-03-18 09:00", "no_show", np.nan),
        ("u1", "k1", "2024-06-30 12:00", "rate", 5.0),
        ("u2", "k2", "2024-03-01 20:00", "enroll", np.nan),
        ("u2", "k2", "2024-03-02 20:00", "cancel", np.nan),
        ("u2", "k1", "2024-05-01 08:00", "view", np.nan),
        ("u4", "k2", "2024-04-01 19:30", "enroll", np.nan),
        ("u4", "k2", "2024-04-03 19:30", "no_show", np.nan),
        ("u4", "k1", "2024-06-30 23:59", "rate", 1.0),
    ]
    if extra_events:
        rows += [
            ("u1", "k2", "2024-07-01 00:00", "enroll", np.nan),
            ("u3", "k3", "2024-07-02 10:00", "complete", np.nan),
            ("u9", "k9", "2024-08-01 10:00", "enroll", np.nan),
            ("u4", "k1", "2024-06-30 23:59:01", "cancel", np.nan),
        ]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event", "value"])
    inter["timestamp"] = pd.to_datetime(inter["timestamp"], format="ISO8601")
    inter["weight"] = 1.0
    return DataBundle(inter, users, items, name="tiny-district", kind="district")


def generic_bundle() -> DataBundle:
    """Interactions only: no event, weight or value columns, bare users and items."""
    inter = pd.DataFrame({
        "user_id": ["a", "a", "b", "c"],
        "item_id": ["x", "y", "x", "z"],
        "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"]),
    })
    return DataBundle(inter, pd.DataFrame({"user_id": []}), pd.DataFrame({"item_id": []}),
                      name="tiny-generic")


@pytest.fixture
def district() -> DataBundle:
    return district_bundle()


@pytest.fixture
def generic() -> DataBundle:
    return generic_bundle()

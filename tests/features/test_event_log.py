"""The one event-weight table: the interaction matrix and a single arriving event agree."""

import numpy as np
import pandas as pd

from features.event_log import DEFAULT_EVENT_WEIGHTS, RATING_CENTER, event_values
from features.frames import GENERIC_EVENT, DataBundle
from features.interactions import InteractionMatrix
from recommender.domain import EVENTS


def test_every_district_event_and_the_generic_one_has_a_weight():
    assert set(DEFAULT_EVENT_WEIGHTS) == {*EVENTS, GENERIC_EVENT}


def test_event_values_follow_the_table_and_the_rating_center():
    names = ["enroll", "rate", "rate", "rate", "bookmark", None, "cancel"]
    values = [None, 5.0, 1.0, np.nan, None, None, None]
    w = DEFAULT_EVENT_WEIGHTS
    expected = [w["enroll"], w["rate"] * (5 - RATING_CENTER), w["rate"] * (1 - RATING_CENTER),
                0.0, w[GENERIC_EVENT], w[GENERIC_EVENT], w["cancel"]]
    np.testing.assert_array_equal(event_values(names, values), expected)
    assert event_values(["view"]).tolist() == [w["view"]]


def test_one_event_at_a_time_adds_what_the_matrix_adds():
    events = ["view", "enroll", "attend", "complete", "rate", "no_show", "interact", "odd"]
    values = [np.nan, np.nan, np.nan, np.nan, 4.0, np.nan, np.nan, np.nan]
    n = len(events)
    inter = pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "item_id": "x",
                          "timestamp": pd.Timestamp("2024-01-01"), "event": events,
                          "value": values})
    bundle = DataBundle(inter, pd.DataFrame({"user_id": []}), pd.DataFrame({"item_id": []}))
    X = InteractionMatrix().fit_transform(bundle)
    # Each resident has one event; the matrix clips negative evidence at zero.
    np.testing.assert_allclose(X.toarray().ravel(), np.clip(event_values(events, values), 0, None))

"""The four protocols and the validation cut: exact semantics on a hand-made bundle, and leak
and determinism properties on a small random one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.frames import DataBundle
from recommender.evaluation.protocols import (
    PROTOCOLS,
    Split,
    SplitError,
    cold_item_split,
    cold_user_split,
    make_split,
    random_split,
    temporal_split,
    time_cut,
    validation_split,
)

DAY0 = pd.Timestamp("2024-03-01")


def _bundle(rows, items=None, seed=0) -> DataBundle:
    """rows: (user, item, day, event[, value]); shuffled so no test relies on input order."""
    frame = pd.DataFrame(
        [(*r, np.nan) if len(r) == 4 else r for r in rows],
        columns=["user_id", "item_id", "day", "event", "value"],
    )
    frame["timestamp"] = DAY0 + pd.to_timedelta(frame.pop("day"), unit="D")
    frame["weight"] = 1.0
    frame = frame.sample(frac=1.0, random_state=seed)
    users = pd.DataFrame({"user_id": sorted(frame["user_id"].unique())})
    item_ids = sorted(set(frame["item_id"]) | set(items or []))
    return DataBundle(frame, users, pd.DataFrame({"item_id": item_ids}))


def _pairs(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["user_id"], frame["item_id"]))


# The hand-made district: training rows up to day 8, test rows from day 9.
STORY_TRAIN = [
    ("u1", "A", 1, "enroll"),
    ("u1", "B", 2, "view"),       # u1's view of B makes B a training item of u1
    ("u2", "A", 3, "enroll"),
    ("u4", "A", 4, "rate", 5.0),
    ("u5", "B", 5, "enroll"),
    ("u6", "C", 8, "enroll"),
]
STORY_TEST = [
    ("u1", "B", 9, "enroll"),     # not relevant: u1 has B in training (a view counts)
    ("u1", "C", 9, "enroll"),     # relevant: u1 is warm
    ("u2", "A", 10, "complete"),  # not relevant: A is u2's training item -> u2 not warm
    ("u3", "C", 10, "enroll"),    # u3 first appears after the cut: a cold user
    ("u4", "E", 11, "rate", 2.0),  # a rating below 3 is not relevant
    ("u4", "F", 11, "rate", 4.0),  # relevant; F is first seen after the cut
    ("u7", "D", 12, "view"),      # cold user with no relevant item: not evaluated
]
# 22 views of Z by u9 on days 1..8: with 28 training and 7 test rows, the lower 80th
# percentile is sorted position floor(0.8 * 34) = 27, the last day-8 row.
FILLER = [("u9", "Z", 1 + i % 8, "view") for i in range(22)]


@pytest.fixture
def story() -> DataBundle:
    return _bundle(STORY_TRAIN + STORY_TEST + FILLER, items=["G"])


@pytest.fixture
def rand_bundle() -> DataBundle:
    rng = np.random.default_rng(42)
    events = np.array(["view", "enroll", "attend", "complete", "rate", "cancel", "no_show"])
    n = 500
    ev = events[rng.integers(0, len(events), n)]
    rows = [
        (f"u{u:02d}", f"i{i:02d}", int(d), e, float(v) if e == "rate" else np.nan)
        for u, i, d, e, v in zip(
            rng.integers(0, 50, n), rng.integers(0, 20, n), rng.integers(0, 40, n), ev,
            rng.integers(1, 6, n),
        )
    ]
    # residents who join in the last days: the cold users
    rows += [
        (f"new{u}", f"i{i:02d}", 37 + u % 3, "enroll" if i % 2 else "view", np.nan)
        for u, i in zip(rng.integers(0, 8, 30), rng.integers(0, 20, 30))
    ]
    return _bundle(rows, items=["never_used"], seed=1)


def _test_rows(bundle: DataBundle, split: Split) -> pd.DataFrame:
    inter = bundle.interactions
    return inter.loc[~inter.index.isin(split.train.interactions.index)]


# --------------------------------------------------------------------------- temporal


def test_temporal_story(story):
    s = temporal_split(story)
    assert s.protocol == "temporal"
    assert s.cut == DAY0 + pd.Timedelta(days=8)
    assert len(s.train.interactions) == 28
    assert (s.train.interactions["timestamp"] <= s.cut).all()
    assert s.test_relevant.to_dict("records") == [
        {"user_id": "u1", "item_id": "C"},
        {"user_id": "u4", "item_id": "F"},
    ]
    assert s.users.tolist() == ["u1", "u4"]
    # F (first seen after the cut) and G (never interacted) remain candidates
    assert {"F", "G", "E"} <= set(s.catalogue)
    assert s.cold_items is None
    # all event types are kept in training
    assert set(s.train.interactions["event"]) == {"enroll", "view", "rate"}
    assert s.train.users is story.users and s.train.items is story.items


def test_temporal_cut_is_lower_80th_percentile_and_ties_go_to_train():
    # 12 timestamps; sorted position floor(0.8 * 11) = 8 holds day 9, shared by 3 rows.
    days = [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12]
    b = _bundle([(f"u{d}{j}", "A", d, "enroll") for j, d in enumerate(days)])
    cut, in_train = time_cut(b.interactions)
    assert cut == DAY0 + pd.Timedelta(days=9)
    assert in_train.sum() == 11  # every day-9 row, including those above position 8
    assert b.interactions.loc[~in_train, "timestamp"].tolist() == [DAY0 + pd.Timedelta(days=12)]


def test_temporal_cut_matches_numpy_quantile(rand_bundle):
    s = temporal_split(rand_bundle)
    ts = rand_bundle.interactions["timestamp"]
    expected = np.quantile(ts.to_numpy().astype("int64"), 0.8, method="lower")
    assert s.cut.value == pd.Timestamp(expected, unit=ts.dt.unit).value
    assert s.cut in set(ts)
    train_ts = s.train.interactions["timestamp"]
    assert (train_ts <= s.cut).all()
    assert (_test_rows(rand_bundle, s)["timestamp"] > s.cut).all()
    assert len(s.train.interactions) >= 0.8 * len(ts)


def test_temporal_warm_users_and_no_leak(rand_bundle):
    s = temporal_split(rand_bundle)
    train = s.train.interactions
    train_pairs = _pairs(train)
    assert not (_pairs(s.test_relevant) & train_pairs)
    assert set(s.users) <= set(train["user_id"])  # training history
    assert set(s.users) == set(s.test_relevant["user_id"])  # >= 1 relevant test item
    # and every warm user is found: users with history and a new relevant test pair
    test = _test_rows(rand_bundle, s)
    from features.frames import positive_mask

    pos = test.loc[positive_mask(test)]
    expected = {
        u for u, i in _pairs(pos) if u in set(train["user_id"]) and (u, i) not in train_pairs
    }
    assert set(s.users) == expected
    assert not s.test_relevant.duplicated().any()


def test_timestamps_without_time_order_are_refused(story):
    bad = story.interactions.copy()
    bad.loc[bad.index[0], "timestamp"] = pd.NaT
    with pytest.raises(ValueError, match="timestamp"):
        temporal_split(story.with_interactions(bad))


# --------------------------------------------------------------------------- coarse timestamps


def _coarse(counts: dict[int, list[tuple]]) -> DataBundle:
    """A bundle from {day: [(user, item[, event]), ...]}: few distinct times, heavy ties."""
    return _bundle([(u, i, day, *(rest or ("enroll",)))
                    for day, rows in counts.items() for u, i, *rest in rows])


def _quarters() -> DataBundle:
    # 4 distinct days; 20 users on day 1, new items of the same users on the later days. The
    # last day holds 40 of 100 rows, so the lower 80th percentile is the last day.
    return _coarse({
        1: [(f"u{u}", "A") for u in range(20)],
        2: [(f"u{u}", "B") for u in range(20)],
        3: [(f"u{u}", "C") for u in range(20)],
        4: [(f"u{u}", item) for u in range(20) for item in ("D", "E")],
    })


def test_a_coarse_cut_moves_off_the_last_timestamp_to_the_nearest_share():
    b = _quarters()
    cut, in_train = time_cut(b.interactions)
    # day 3 holds 60 % of the rows at or before it, the nearest usable share to 80 %
    assert cut == DAY0 + pd.Timedelta(days=3)
    assert in_train.sum() == 60
    s = temporal_split(b)
    assert s.cut == cut and len(s.users) == 20
    assert set(s.test_relevant["item_id"]) == {"D", "E"}


def test_numeric_timestamps_are_cut_the_same_way():
    b = _quarters()
    inter = b.interactions.assign(timestamp=(b.interactions["timestamp"] - DAY0).dt.days * 86400)
    s = temporal_split(b.with_interactions(inter))
    assert s.cut == 3 * 86400 and len(s.users) == 20


def test_a_cut_with_rows_after_it_but_no_warm_user_moves_too():
    # The 80th percentile is day 3, but only newcomers act after it: no warm user to evaluate.
    b = _coarse({
        1: [(f"u{u}", "A") for u in range(10)],
        2: [(f"u{u}", "B") for u in range(10)],
        3: [(f"u{u}", "C") for u in range(10)] + [("x", "Z")] * 30,
        4: [(f"new{u}", "D") for u in range(10)],
    })
    assert np.quantile(b.interactions["timestamp"], 0.8, method="lower") == (
        DAY0 + pd.Timedelta(days=3))
    s = temporal_split(b)
    assert s.cut == DAY0 + pd.Timedelta(days=2) and set(s.test_relevant["item_id"]) == {"C"}
    # newcomers count for a served model's cut, so its cut stays at the quantile
    assert temporal_split(b, warm_only=False).cut == DAY0 + pd.Timedelta(days=3)
    # and cold-user keeps the quantile's cut: there are newcomers after it
    assert cold_user_split(b).cut == DAY0 + pd.Timedelta(days=3)


def test_cold_user_cut_moves_to_where_newcomers_are():
    # Users join on days 1 and 2 only; the quantile lands on day 4. The only cut with users
    # who first appear after it is day 1.
    b = _coarse({
        1: [(f"u{u}", "A") for u in range(10)],
        2: [(f"v{u}", "A") for u in range(10)],
        4: [(f"u{u}", "B") for u in range(10)] + [(f"v{u}", "C") for u in range(10)] * 3,
        5: [(f"u{u}", "D") for u in range(5)],
    })
    s = cold_user_split(b)
    assert s.cut == DAY0 + pd.Timedelta(days=1)
    assert s.users.tolist() == sorted(f"v{u}" for u in range(10))
    assert not set(s.users) & set(s.train.interactions["user_id"])


def test_a_tie_in_distance_goes_to_the_earlier_cut():
    # 2 rows a day. The quantile 0.6 lands on day 3, after which only newcomers (n, m) act;
    # days 2 and 4 (shares 0.4 and 0.8) are usable and equally near: day 2 wins.
    b = _coarse({1: [("a", "A"), ("b", "A")], 2: [("a", "B"), ("b", "B")],
                 3: [("a", "C"), ("b", "C")], 4: [("n", "A"), ("n", "B")],
                 5: [("n", "C"), ("m", "A")]})
    assert np.quantile(b.interactions["timestamp"], 0.6, method="lower") == (
        DAY0 + pd.Timedelta(days=3))
    assert temporal_split(b, quantile=0.6).cut == DAY0 + pd.Timedelta(days=2)
    assert temporal_split(b, quantile=0.65).cut == DAY0 + pd.Timedelta(days=4)


def test_one_timestamp_is_a_clear_error_for_the_time_protocols():
    b = _coarse({5: [(f"u{u}", item) for u in range(5) for item in "ABC"]})
    for protocol in ("temporal", "cold-user"):
        with pytest.raises(SplitError, match=f"{protocol}: all 15 interactions share one "
                           "timestamp.*at least two distinct times.*--protocol random"):
            make_split(b, protocol)
    assert len(make_split(b, "cold-item", seed=0).users) > 0


def test_no_usable_cut_names_the_protocol_and_what_it_needs():
    # Everyone joins on day 1: no cut leaves a newcomer after it.
    b = _coarse({1: [(f"u{u}", "A") for u in range(5)], 2: [(f"u{u}", "B") for u in range(5)]})
    with pytest.raises(SplitError, match="cold-user: no cut between the 2 distinct timestamps "
                       "leaves a user whose first interaction is after it"):
        cold_user_split(b)
    # Only views after day 1: nothing relevant to evaluate a temporal split on.
    views = _coarse({1: [(f"u{u}", "A") for u in range(5)],
                     2: [(f"u{u}", "B", "view") for u in range(5)]})
    with pytest.raises(SplitError, match="temporal: no cut .* relevant item"):
        temporal_split(views)


def test_a_random_split_with_nothing_held_out_is_a_clear_error():
    # Every item has at most two users, so every pair trains: nothing to evaluate.
    b = _coarse({1: [("u0", "A"), ("u1", "A"), ("u1", "B"), ("u2", "C")]})
    with pytest.raises(SplitError, match="random: nothing to evaluate"):
        random_split(b, seed=0)


# --------------------------------------------------------------------------- cold-user


def test_cold_user_story(story):
    s = cold_user_split(story)
    assert s.protocol == "cold-user"
    assert s.cut == DAY0 + pd.Timedelta(days=8)
    assert s.users.tolist() == ["u3"]  # u7 is cold but has no relevant item
    assert s.test_relevant.to_dict("records") == [{"user_id": "u3", "item_id": "C"}]
    assert len(s.train.interactions) == 28


def test_cold_users_have_no_training_rows(rand_bundle):
    s = cold_user_split(rand_bundle)
    train = s.train.interactions
    assert len(s.users) > 0
    assert not set(s.users) & set(train["user_id"])
    first_seen = rand_bundle.interactions.groupby("user_id")["timestamp"].min()
    assert (first_seen.loc[s.users] > s.cut).all()
    assert train.equals(temporal_split(rand_bundle).train.interactions)


# --------------------------------------------------------------------------- cold-item


def test_held_out_items_never_in_train(rand_bundle):
    s = cold_item_split(rand_bundle, seed=3)
    n_items = rand_bundle.interactions["item_id"].nunique()  # 20
    assert len(s.cold_items) == round(0.2 * n_items) == 4
    train = s.train.interactions
    assert not set(s.cold_items) & set(train["item_id"])
    # everything else stays in train: exactly the rows of kept items
    kept = rand_bundle.interactions.loc[~rand_bundle.interactions["item_id"].isin(s.cold_items)]
    assert train.index.sort_values().equals(kept.index.sort_values())
    assert set(s.test_relevant["item_id"]) <= set(s.cold_items)
    assert set(s.cold_items) <= set(s.catalogue)  # still candidates


def test_cold_item_story(story):
    s = cold_item_split(story, seed=0, fraction=0.2)
    # 7 items with interactions (A B C D E F Z) -> round(1.4) = 1 held out
    assert len(s.cold_items) == 1
    cold = s.cold_items[0]
    inter = story.interactions
    pos = inter.loc[(inter["item_id"] == cold) & inter["event"].isin(["enroll", "attend",
                                                                      "complete"])]
    pos_rated = inter.loc[(inter["item_id"] == cold) & (inter["value"] >= 3)]
    assert _pairs(s.test_relevant) == _pairs(pos) | _pairs(pos_rated)


def test_cold_item_is_seeded_and_order_independent(rand_bundle):
    a = cold_item_split(rand_bundle, seed=7)
    b = cold_item_split(rand_bundle, seed=7)
    shuffled = rand_bundle.with_interactions(rand_bundle.interactions.sample(frac=1.0,
                                                                             random_state=5))
    c = cold_item_split(shuffled, seed=7)
    assert a.cold_items.tolist() == b.cold_items.tolist() == c.cold_items.tolist()
    assert a.test_relevant.equals(c.test_relevant)
    assert cold_item_split(rand_bundle, seed=8).cold_items.tolist() != a.cold_items.tolist()


def test_bad_fraction_names_the_parameter(story):
    with pytest.raises(ValueError, match="fraction"):
        cold_item_split(story, fraction=1.5)
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(story, test_fraction=0.0)
    with pytest.raises(ValueError, match="protocol"):
        make_split(story, "leave-one-out")


# --------------------------------------------------------------------------- random


def test_random_split_is_exact_for_four_pairs_and_keeps_pairs_together():
    rows = []
    for u in range(4):  # item X: 4 users, each with a view then an enrolment
        rows += [(f"u{u}", "X", u, "view"), (f"u{u}", "X", u + 10, "enroll")]
        rows += [(f"u{u}", "Y", u, "enroll")]  # history so every user is rankable
    rows += [("u0", "S", 1, "enroll")]  # a single-pair item always trains
    b = _bundle(rows)
    for seed in range(5):
        s = random_split(b, seed=seed)
        train = s.train.interactions
        x_train = train.loc[train["item_id"] == "X"]
        assert x_train["user_id"].nunique() == 3 and len(x_train) == 6  # 3 pairs x 2 events
        assert (train["item_id"] == "S").sum() == 1
        test = _test_rows(b, s)
        assert not _pairs(train) & _pairs(test)
        rankable = test.loc[test["user_id"].isin(train["user_id"]) & (test["event"] == "enroll")]
        assert _pairs(s.test_relevant) == _pairs(rankable)
        assert len(s.test_relevant) <= 2  # one held-out pair of X and one of Y


def test_random_split_ratio_per_item_and_no_pair_on_both_sides(rand_bundle):
    s = random_split(rand_bundle, seed=0)
    train = s.train.interactions
    test = _test_rows(rand_bundle, s)
    assert not _pairs(train) & _pairs(test)
    all_pairs = rand_bundle.interactions[["user_id", "item_id"]].drop_duplicates()
    n_pairs = all_pairs.groupby("item_id").size()
    n_train = train[["user_id", "item_id"]].drop_duplicates().groupby("item_id").size()
    np.testing.assert_array_equal(n_train.loc[n_pairs.index], np.rint(0.75 * n_pairs))
    share = n_train.sum() / n_pairs.sum()
    assert 0.73 < share < 0.77
    assert set(s.users) <= set(train["user_id"])


def test_random_split_is_seeded_and_order_independent(rand_bundle):
    a = random_split(rand_bundle, seed=11)
    shuffled = rand_bundle.with_interactions(rand_bundle.interactions.sample(frac=1.0,
                                                                             random_state=3))
    b = random_split(shuffled, seed=11)
    assert a.train.interactions.index.sort_values().equals(
        b.train.interactions.index.sort_values()
    )
    assert a.test_relevant.equals(b.test_relevant)
    other = random_split(rand_bundle, seed=12)
    assert not a.test_relevant.equals(other.test_relevant)


# --------------------------------------------------------------------------- all protocols


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_split_is_deterministic_and_leak_free(rand_bundle, protocol):
    s1 = make_split(rand_bundle, protocol, seed=4)
    s2 = make_split(rand_bundle, protocol.replace("-", "_"), seed=4)
    assert s1.protocol == s2.protocol == protocol
    assert s1.train.interactions.equals(s2.train.interactions)
    assert s1.test_relevant.equals(s2.test_relevant)
    train = s1.train.interactions
    # no relevant test pair is a pair the user touched in training
    assert not _pairs(s1.test_relevant) & _pairs(train)
    # every relevant pair comes from a positive row outside train
    test = _test_rows(rand_bundle, s1)
    assert _pairs(s1.test_relevant) <= _pairs(test)
    assert list(s1.test_relevant.columns) == ["user_id", "item_id"]
    assert s1.users.tolist() == sorted(set(s1.test_relevant["user_id"]))
    assert "never_used" in set(s1.catalogue)
    assert s1.summary()["users"] == len(s1.users) > 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_validation_split_never_sees_test_rows(rand_bundle, protocol):
    outer = make_split(rand_bundle, protocol, seed=0)
    inner = validation_split(outer.train, protocol, seed=1)
    outer_train_idx = outer.train.interactions.index
    inner_train_idx = inner.train.interactions.index
    assert inner_train_idx.isin(outer_train_idx).all()
    assert len(inner_train_idx) < len(outer_train_idx)
    assert _pairs(inner.test_relevant) <= _pairs(outer.train.interactions)
    assert not _pairs(inner.test_relevant) & _pairs(inner.train.interactions)
    assert inner.protocol == protocol
    if protocol == "cold-item":
        assert not set(inner.cold_items) & set(outer.cold_items)
    if protocol in ("temporal", "cold-user"):
        assert inner.cut < outer.cut
    # a Split is accepted for its training part
    again = validation_split(outer, protocol, seed=1)
    assert again.test_relevant.equals(inner.test_relevant)


def test_validation_split_with_newcomers_is_the_temporal_cut_without_warm_only(rand_bundle):
    # The whole bundle as the training part, as a served model's cut takes it: the residents
    # who join in the last days are after its cut.
    warm = validation_split(rand_bundle, "temporal", warm_only=True)
    both = validation_split(rand_bundle, "temporal", warm_only=False)
    assert both.test_relevant.equals(temporal_split(rand_bundle, warm_only=False).test_relevant)
    assert warm.test_relevant.equals(temporal_split(rand_bundle).test_relevant)
    assert set(warm.users) < set(both.users)
    newcomers = set(both.users) - set(warm.users)
    assert newcomers and not newcomers & set(both.train.interactions["user_id"])
    # the other protocols have no warm-only choice to make
    assert validation_split(rand_bundle, "random", seed=1, warm_only=False).test_relevant.equals(
        validation_split(rand_bundle, "random", seed=1).test_relevant)

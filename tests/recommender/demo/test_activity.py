"""The funnel steps of the demo generator, one at a time."""

from __future__ import annotations

import datetime as dt

import numpy as np

from recommender.demo import activity, entities

AS_OF = dt.date(2025, 6, 1)


def _small_district(seed=4, n=600, k=40):
    seeds = np.random.SeedSequence(seed).spawn(6)
    clock = entities.Clock(AS_OF, 14)
    comm = entities.communities()
    res = entities.residents(np.random.default_rng(seeds[0]), n, clock, comm)
    crs = entities.courses(np.random.default_rng(seeds[1]), k, clock, comm)
    taste = entities.tastes(np.random.default_rng(seeds[2]), res, crs)
    pairs = activity.sample_pairs(seeds[3], res, crs, comm, taste, clock, 25.0, False)
    pairs = activity.add_carers(np.random.default_rng(seeds[4]), pairs, res, crs, clock)
    return res, crs, clock, pairs


def test_the_earliest_enrolments_keep_the_seats():
    clock = entities.Clock(AS_OF, 14)
    crs = {
        "start": np.array([clock.end - 30, clock.end + 10]),
        "end": np.array([clock.end - 1, clock.end + 60]),
    }
    overflowed = 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        c = np.repeat([0, 1], [60, 90])
        t_enrol = rng.permutation(len(c)).astype(np.int64) * 3600
        f = {"enrolled": np.ones(len(c), bool), "active": np.ones(len(c), bool), "t_enrol": t_enrol}
        capacity, status = activity._fill_seats(rng, f, c, crs, clock)
        for course in (0, 1):
            mine = np.flatnonzero(c == course)
            kept = mine[f["active"][mine]]
            assert len(kept) == min(len(mine), capacity[course])
            # Everyone seated enrolled before everyone turned away.
            turned_away = np.setdiff1d(mine, kept)
            if len(turned_away):
                overflowed += 1
                assert t_enrol[kept].max() < t_enrol[turned_away].min()
                assert not f["enrolled"][turned_away].any()
        assert status[0] == 2  # ended before as_of: closed
        assert status[1] == (1 if f["active"][c == 1].sum() >= capacity[1] else 0)
    assert overflowed > 0  # the check above ran at least once


def test_a_carer_follows_the_child_within_the_carers_own_limits():
    res, crs, clock, pairs = _small_district()
    rng = np.random.default_rng(0)
    f = activity._decide(rng, pairs, res, crs, clock)
    cp = np.flatnonzero(pairs["carer"])
    assert len(cp) > 20
    child = pairs["src"][cp]
    activity._carers_follow_child(rng, f, cp, pairs["src"])
    assert not (f["enrolled"][cp] & ~f["enrolled"][child]).any()
    assert (f["enrolled"][cp] == (f["enrolled"][child] & f["can_enrol"][cp])).all()
    assert (f["cancelled"][cp] == f["cancelled"][child]).all()
    assert (f["t_view"][cp] >= f["lo"][cp] * entities.DAY).all()
    assert (f["t_view"][cp] < (f["hi_view"][cp] + 1) * entities.DAY).all()
    on = f["enrolled"][cp]
    gap = np.abs(f["t_enrol"][cp][on] - f["t_enrol"][child][on])
    assert np.median(gap) <= 3 * 3600


def test_funnel_events_come_in_time_order_with_views_first():
    res, crs, clock, pairs = _small_district()
    ev = activity.funnels(np.random.default_rng(1), pairs, res, crs, clock, seed=4)
    assert (np.diff(ev["t"]) >= 0).all()
    assert ev["t"].max() < clock.end * entities.DAY
    key = ev["r"].astype(np.int64) * len(crs["start"]) + ev["c"]
    first_event = ev["event"][np.unique(key, return_index=True)[1]]
    assert (first_event == activity.EVENT_CODE["view"]).all()
    assert len(ev["capacity"]) == len(ev["status"]) == len(crs["start"])


def test_counter_based_draws_repeat_per_key_and_look_uniform():
    a = np.arange(20_000)
    u = activity._hash_uniform(a, 3, seed=7, salt=11)
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    assert np.array_equal(u, activity._hash_uniform(a, 3, seed=7, salt=11))
    assert not np.allclose(u, activity._hash_uniform(a, 3, seed=7, salt=12))
    assert not np.allclose(u, activity._hash_uniform(a, 4, seed=7, salt=11))

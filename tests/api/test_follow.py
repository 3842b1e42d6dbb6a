"""Two serving processes on one store, in one test process: each folds what the other stores
through the store's event feed, once, and both end with the seats and lists a reload gives."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from recommender.data.store import open_store
from recommender.serving import Follower, ModelHolder, RecommendationService
from tests.api.conftest import new_ids, today
from tests.api.rules import band_of


@pytest.fixture
def workers(db_url, artifacts):
    """Two (store, holder, follower, service) stacks, as two workers would have them."""
    stacks = []
    for _ in range(2):
        store = open_store(db_url, create=False)
        holder = ModelHolder(artifacts, store)
        follower = Follower(store, holder)  # not started: the test polls by hand
        holder.reload()
        stacks.append((store, holder, follower, RecommendationService(store, holder)))
    yield stacks
    for store, _, follower, _ in stacks:
        follower.stop()
        store.dispose()


def _pick(tables, service) -> tuple[str, str]:
    """A resident with no commitment yet and the top course of their list."""
    part = service.store.read("participations")
    busy = set(part.loc[part["event"] != "view", "resident_id"])
    res = tables["residents"]
    rid = [r for r, y in zip(res["resident_id"], res["birth_year"])
           if band_of(y, today()) == "working_age" and r not in busy][-3]
    return rid, service.for_resident(rid)["items"][0]["course_id"]


def _poll(follower, done, seconds: float = 1.0) -> None:
    """Poll ``follower`` until ``done()`` (PostgreSQL delivers a notification a moment after
    the commit, so one poll right after an insert may come too early)."""
    deadline = time.monotonic() + seconds
    while True:
        follower.catch_up()
        if done():
            return
        assert time.monotonic() < deadline, "the feed did not hand the event out in time"
        time.sleep(0.02)


def _left(holder, course: str) -> int:
    snap = holder.snapshot()
    return int(snap.seats_left[snap.catalogue.position[course]])



def _without_request_id(answer: dict) -> dict:
    """A list without its ``request_id``: every served list has its own."""
    return {k: v for k, v in answer.items() if k != "request_id"}

def test_each_worker_folds_the_others_events_once(workers, tables):
    (store_a, holder_a, follow_a, a), (store_b, holder_b, follow_b, b) = workers
    rid, course = _pick(tables, a)
    seats = _left(holder_a, course)
    assert _left(holder_b, course) == seats
    when = (dt.datetime.now() - dt.timedelta(hours=1)).replace(microsecond=0)
    enrol = {"event_id": new_ids("E-follow", 1)[0], "resident_id": rid, "course_id": course,
             "event": "enroll", "occurred_at": when.isoformat()}
    assert a.ingest([enrol]).accepted == 1
    assert _left(holder_a, course) == seats - 1  # at once where it was posted
    assert _left(holder_b, course) == seats  # b has not polled yet
    _poll(follow_b, lambda: _left(holder_b, course) == seats - 1)
    assert course in holder_b.engine.seen(rid)
    _poll(follow_a, lambda: not holder_a.echoes)  # a's own event comes back: not twice
    assert _without_request_id(a.for_resident(rid)) == _without_request_id(b.for_resident(rid))
    assert follow_a.catch_up() == 0 and follow_b.catch_up() == 0

    # A cancel stored by some other process reaches both; the seat comes back everywhere.
    other = open_store(store_a.url, create=False)
    cancel = pd.DataFrame([{**enrol, "event_id": new_ids("E-follow", 1)[0], "event": "cancel",
                            "value": None, "occurred_at": pd.Timestamp(when)
                            + pd.Timedelta(minutes=1)}])
    other.insert("participations", cancel, announce=True)
    other.dispose()
    _poll(follow_a, lambda: _left(holder_a, course) == seats)
    _poll(follow_b, lambda: _left(holder_b, course) == seats)
    assert _without_request_id(a.for_resident(rid)) == _without_request_id(b.for_resident(rid))
    # And a reload counts the same seats from the store.
    holder_b.reload()
    assert np.array_equal(holder_b.snapshot().taken, holder_a.snapshot().taken)

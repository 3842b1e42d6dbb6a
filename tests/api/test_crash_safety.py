"""Crash safety: events streamed to a running server that is killed with SIGKILL mid-stream
are all there after a restart, each once, and sending the stream again adds nothing.

An event is keyed by its ``event_id`` (the participations table's primary key): a re-sent
event is a duplicate, whichever process stored it first.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from contextlib import ExitStack

import pandas as pd
import pytest

from recommender.data.store import open_store
from recommender.domain import TABLE_ORDER
from tests.api.conftest import PLATFORM, new_ids
from tests.api.server import serving, start, stop
from tests.conftest import BACKENDS, postgres_schema

KEY = PLATFORM["X-API-Key"]
BATCH = 25


@pytest.fixture(params=BACKENDS)
def fresh_db(request, tables, tmp_path):
    """A database of each backend holding the district, for this test alone."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'crash.db'}"
        else:
            url = stack.enter_context(postgres_schema("t_crash_"))
        store = open_store(url)
        for name in TABLE_ORDER:
            store.insert(name, tables[name])
        store.dispose()
        yield url


def _stream(tables, n_batches: int) -> list[list[dict]]:
    """Batches of valid events: views, enrolments, attendance and ratings of real residents
    and courses, a second apart."""
    residents = tables["residents"]["resident_id"].tolist()
    courses = tables["courses"]["course_id"].tolist()
    kinds = ["view", "enroll", "view", "attend", "rate"]
    ids = new_ids("E-crash", n_batches * BATCH)
    start = dt.datetime.now() - dt.timedelta(hours=3)
    events = []
    for k, event_id in enumerate(ids):
        event = {"event_id": event_id, "resident_id": residents[(7 * k) % len(residents)],
                 "course_id": courses[(3 * k) % len(courses)], "event": kinds[k % len(kinds)],
                 "occurred_at": (start + dt.timedelta(seconds=k)).isoformat()}
        if event["event"] == "rate":
            event["value"] = 1 + k % 5
        events.append(event)
    return [events[i:i + BATCH] for i in range(0, len(events), BATCH)]


def _stored(url: str, ids: list[str]) -> pd.DataFrame:
    store = open_store(url, create=False)
    try:
        t = store.tables["participations"]
        return store.read("participations", t.c.event_id.in_(ids))
    finally:
        store.dispose()


def _count(url: str) -> int:
    store = open_store(url, create=False)
    try:
        return store.count("participations")
    finally:
        store.dispose()


def test_sigkill_mid_stream_loses_no_acknowledged_event(fresh_db, artifacts, tables, tmp_path):
    batches = _stream(tables, 40)
    sent = [e for batch in batches for e in batch]
    before = _count(fresh_db)
    acknowledged: list[str] = []
    failed: list[BaseException] = []
    server = start(fresh_db, artifacts, tmp_path)

    def stream():
        conn = server.connect()
        for batch in batches:
            try:
                status, report = conn.request("POST", "/v1/events", {"events": batch}, key=KEY)
            except (OSError, ConnectionError) as exc:  # the server died under this request
                failed.append(exc)
                return
            assert status == 200 and report["rejected"] == 0, report
            acknowledged.extend(e["event_id"] for e in batch)

    streamer = threading.Thread(target=stream)
    try:
        streamer.start()
        while len(acknowledged) < 10 * BATCH and streamer.is_alive():
            time.sleep(0.01)
        server.kill()  # mid-stream: the streamer has a request in flight or about to be
        streamer.join(timeout=60)
    finally:
        stop(server)
    assert failed, "the stream ended before the server was killed"
    assert 10 * BATCH <= len(acknowledged) < len(sent)

    # Every acknowledged event is stored, once, as sent.
    stored = _stored(fresh_db, [e["event_id"] for e in sent]).set_index("event_id")
    assert set(acknowledged) <= set(stored.index)
    assert stored.index.is_unique
    for event in sent:
        if event["event_id"] in stored.index:
            row = stored.loc[event["event_id"]]
            assert (row["resident_id"], row["course_id"], row["event"]) == (
                event["resident_id"], event["course_id"], event["event"])
            assert row["occurred_at"] == pd.Timestamp(event["occurred_at"])
    # Only whole batches are stored: the one in flight is all there or not at all.
    in_flight = [e["event_id"] for e in batches[len(acknowledged) // BATCH]]
    assert len(set(in_flight) & set(stored.index)) in (0, BATCH)

    # Restarted on the same store, the whole stream sent again adds only what never arrived.
    with serving(fresh_db, artifacts, tmp_path) as again:
        conn = again.connect()
        accepted = duplicates = 0
        for batch in batches:
            status, report = conn.request("POST", "/v1/events", {"events": batch}, key=KEY)
            assert status == 200 and report["rejected"] == 0, report
            accepted += report["accepted"]
            duplicates += report["duplicates"]
        assert accepted == len(sent) - len(stored) and duplicates == len(stored)
        assert _count(fresh_db) == before + len(sent)
        for batch in batches:  # and once more: nothing at all
            status, report = conn.request("POST", "/v1/events", {"events": batch}, key=KEY)
            assert (report["accepted"], report["duplicates"]) == (0, BATCH)
        assert _count(fresh_db) == before + len(sent)

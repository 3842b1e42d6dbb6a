"""The impression log on a real store (SQLite and PostgreSQL): written behind the request, in
batches, everything queued written by a flush and by close, and kept while the store refuses."""

from __future__ import annotations

import threading

import pandas as pd

from recommender.data import migrations
from recommender.serving.experiments import Arm
from recommender.serving.impressions import ImpressionLog


def _items(*courses):
    return [{"course_id": c, "title": c} for c in courses]


def test_lists_are_written_in_batches_with_their_order_and_variant(store):
    log = ImpressionLog(store, batch_size=7, interval=0.05)
    experiment = store.start_experiment(version_a="v1", version_b="v2", share=0.5,
                                        started_by="test")["experiment_id"]
    ids = [log.record("resident", _items("K3", "K1", "K2"), "v2",
                      Arm(None, experiment, "B"), resident_id=f"R{n}", band="elderly")
           for n in range(20)]
    ids.append(log.record("household", _items("K9"), "v1", None, household_id="H1"))
    assert log.flush()
    rows = store.impressions()
    assert list(rows["request_id"]) == ids and len(set(ids)) == 21
    first = rows.iloc[0]
    assert (first["kind"], first["resident_id"], first["band"], first["variant"],
            first["experiment_id"], first["courses"]) == (
        "resident", "R0", "elderly", "B", experiment, "K3|K1|K2")
    last = rows.iloc[-1]
    assert (last["kind"], last["household_id"], last["variant"]) == ("household", "H1", None)
    assert pd.isna(last["experiment_id"])
    assert log.written == 21 and log.pending == 0
    log.close()


def test_close_writes_everything_queued_from_many_threads(store):
    log = ImpressionLog(store, batch_size=50, interval=5.0)  # the timer never fires first

    def serve():
        for _ in range(250):
            log.record("profile", _items("K1"), "v1", band="elderly")

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(store.impressions()) == 1000
    assert log.written == 1000 and log.dropped == 0


def test_disabled_log_names_lists_but_writes_nothing(store):
    log = ImpressionLog(store, enabled=False)
    assert len(log.record("profile", _items("K1"), "v1")) == 32
    log.close()
    assert store.impressions().empty


def test_rows_refused_by_the_store_are_kept_and_written_once_it_answers(store):
    log = ImpressionLog(store, interval=0.02, max_pending=1000, retry_seconds=0.05)
    migrations.downgrade(store.engine, "0002")  # no impressions table: every write fails
    for n in range(5):
        log.record("resident", _items("K1"), "v1", resident_id=f"R{n}")
    assert not log.flush(timeout=0.3)
    assert log.pending == 5 and log.written == 0
    store.create_schema()
    assert log.flush(timeout=10)
    assert sorted(store.impressions()["resident_id"]) == [f"R{n}" for n in range(5)]
    log.close()


def test_beyond_max_pending_the_oldest_rows_are_dropped_and_counted(store):
    log = ImpressionLog(store, interval=0.02, batch_size=2, max_pending=3,
                        retry_seconds=0.05)
    migrations.downgrade(store.engine, "0002")
    for n in range(6):
        log.record("resident", _items("K1"), "v1", resident_id=f"R{n}")
    assert not log.flush(timeout=0.3)
    store.create_schema()
    assert log.flush(timeout=10)
    kept = sorted(store.impressions()["resident_id"])
    assert log.dropped == 6 - len(kept) > 0 and kept[-1] == "R5"
    log.close()

"""The shared store suite: every test runs on SQLite and on PostgreSQL.

Every public :class:`Store` method is exercised here (the last test checks that), so a backend
that answers one of them differently fails on the backend it differs on.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from recommender.data.profiles import ProfileError
from recommender.data.store import (
    ExperimentConflict,
    PostgresStore,
    SQLiteStore,
    Store,
    StoreError,
    open_store,
)


def _district():
    communities = pd.DataFrame(
        {
            "community_id": ["C01", "C02"],
            "name": ["文康社区", "中昌社区"],
            "street": ["东港街道", "沈家门街道"],
            "kind": ["leading", "inclusive"],
        }
    )
    residents = pd.DataFrame(
        {
            "resident_id": ["R1", "R2", "R3"],
            "birth_year": [1950, 2021, 1988],
            "gender": ["F", None, "M"],
            "community_id": ["C01", "C01", "C02"],
            "household_id": ["H1", "H1", None],
            "registered_at": [dt.date(2024, 1, 2)] * 3,
        }
    )
    courses = pd.DataFrame(
        {
            "course_id": ["K1", "K2"],
            "title": ["剪纸入门", "Tea culture 茶艺"],
            "description": ["学习传统剪纸", None],
            "category": ["intangible_heritage", "interest"],
            "target_bands": ["school_age|elderly", "elderly"],
            "tags": ["剪纸|非遗", None],
            "community_id": ["C01", "C02"],
            "fee_tier": ["inclusive", "upgraded"],
            "capacity": [20, 0],
            "start_date": [dt.date(2025, 3, 1)] * 2,
            "end_date": [dt.date(2025, 6, 30)] * 2,
            "weekday": [2, None],
            "start_time": ["09:30", None],
            "status": ["open", "full"],
        }
    )
    events = pd.DataFrame(
        {
            "event_id": ["E1", "E2", "E3"],
            "resident_id": ["R1", "R1", "R2"],
            "course_id": ["K1", "K1", "K2"],
            "event": ["enroll", "rate", "view"],
            "value": [None, 5.0, None],
            "occurred_at": pd.to_datetime(
                ["2025-03-01 09:00:00", "2025-06-30 18:30:15", "2025-03-02 10:00:00"]
            ),
        }
    )
    return {"communities": communities, "residents": residents, "courses": courses,
            "participations": events}


def _load(store, tables):
    return {name: store.insert(name, frame) for name, frame in tables.items()}


def test_open_store_picks_backend(store_url):
    store = open_store(store_url)
    expected = SQLiteStore if store_url.startswith("sqlite") else PostgresStore
    assert type(store) is expected
    store.create_schema()  # idempotent
    assert store.counts() == {"communities": 0, "residents": 0, "courses": 0,
                              "participations": 0}
    store.dispose()


def test_unsupported_backend_is_named():
    with pytest.raises(ValueError, match="mysql"):
        open_store("mysql://localhost/x")


def test_round_trip_keeps_values_and_chinese_text(store):
    tables = _district()
    results = _load(store, tables)
    assert {n: r.inserted for n, r in results.items()} == {
        "communities": 2, "residents": 3, "courses": 2, "participations": 3}
    courses = store.read("courses").set_index("course_id")
    assert courses.loc["K1", "title"] == "剪纸入门"
    assert courses.loc["K2", "title"] == "Tea culture 茶艺"
    assert courses.loc["K2", "description"] is None
    assert courses.loc["K1", "weekday"] == 2 and pd.isna(courses.loc["K2", "weekday"])
    assert courses.loc["K1", "start_date"] == pd.Timestamp("2025-03-01")
    communities = store.read("communities").set_index("community_id")
    assert communities.loc["C02", "street"] == "沈家门街道"
    events = store.read("participations").set_index("event_id")
    assert events.loc["E2", "occurred_at"] == pd.Timestamp("2025-06-30 18:30:15")
    assert events.loc["E2", "value"] == 5.0 and pd.isna(events.loc["E1", "value"])
    residents = store.read("residents").set_index("resident_id")
    assert residents.loc["R2", "gender"] is None
    assert residents.loc["R1", "birth_year"] == 1950


def test_same_event_twice_is_stored_once(store):
    tables = _district()
    _load(store, tables)
    again = store.insert("participations", tables["participations"])
    assert (again.inserted, again.duplicates) == (0, 3)
    batch = pd.concat([tables["participations"].iloc[[0]]] * 2 + [
        tables["participations"].iloc[[0]].assign(event_id="E9")])
    result = store.insert("participations", batch)
    assert (result.inserted, result.duplicates) == (1, 2)
    assert store.count("participations") == 4


def test_reimport_changes_nothing(store):
    tables = _district()
    _load(store, tables)
    before = {n: store.read(n) for n in tables}
    results = _load(store, tables)
    assert all(r.inserted == 0 for r in results.values())
    for name, frame in before.items():
        pd.testing.assert_frame_equal(store.read(name), frame)


def test_existing_keys_and_where(store):
    _load(store, _district())
    assert store.existing_keys("participations", ["E1", "E3", "E7"]) == {"E1", "E3"}
    assert store.keys("residents") == {"R1", "R2", "R3"}
    table = store.tables["participations"]
    rows = store.read("participations", where=table.c.resident_id == "R1")
    assert sorted(rows["event_id"]) == ["E1", "E2"]


def test_foreign_keys_are_enforced(store):
    _load(store, _district())
    orphan = _district()["participations"].iloc[[0]].assign(event_id="E8", course_id="NOPE")
    with pytest.raises(Exception, match="(?i)foreign key"):
        store.insert("participations", orphan)
    assert store.count("participations") == 3


def test_awkward_text_survives_bulk_insert(store):
    tables = _district()
    _load(store, {k: tables[k] for k in ("communities", "residents")})
    tricky = tables["courses"].iloc[[0]].assign(
        course_id="K9", title="tab\there, back\\slash", description="line1\nline2\r\\N",
        tags="\\N")
    store.insert("courses", tricky)
    row = store.read("courses").set_index("course_id").loc["K9"]
    assert row["title"] == "tab\there, back\\slash"
    assert row["description"] == "line1\nline2\r\\N"
    assert row["tags"] == "\\N"  # the literal text, not NULL


def _events(*rows):
    """Participation rows ``(event_id, resident_id, course_id, event, occurred_at)``."""
    frame = pd.DataFrame(rows, columns=["event_id", "resident_id", "course_id", "event",
                                        "occurred_at"])
    return frame.assign(value=None, occurred_at=pd.to_datetime(frame["occurred_at"]))


def test_commitments_are_the_commit_events_oldest_first(store):
    _load(store, _district())
    store.insert("participations", _events(
        ("E10", "R1", "K2", "enroll", "2025-03-05 09:00:00"),
        ("E11", "R1", "K2", "attend", "2025-03-12 09:00:00"),
        ("E12", "R1", "K1", "cancel", "2025-03-02 08:00:00"),
        ("E14", "R1", "K2", "no_show", "2025-03-19 09:00:00"),
        ("E15", "R1", "K2", "complete", "2025-03-26 09:00:00"),
        # same instant: event_id breaks the tie, so every backend gives the same order
        ("E17", "R3", "K2", "cancel", "2025-04-01 10:00:00"),
        ("E16", "R3", "K2", "enroll", "2025-04-01 10:00:00"),
    ))
    # E2 (rate), E14 (no_show) and R2's view are not commitments
    assert store.commitments("R1") == [("K1", "enroll"), ("K1", "cancel"), ("K2", "enroll"),
                                       ("K2", "attend"), ("K2", "complete")]
    assert store.commitments("R3") == [("K2", "enroll"), ("K2", "cancel")]
    assert store.commitments("R2") == []
    assert store.commitments("nobody") == []


def test_resident_is_the_stored_row(store):
    _load(store, _district())
    assert store.resident("R2") == {
        "resident_id": "R2", "birth_year": 2021, "gender": None, "community_id": "C01",
        "household_id": "H1", "registered_at": dt.date(2024, 1, 2)}
    assert store.resident("R3")["household_id"] is None
    assert store.resident("R9") is None


def test_upsert_resident_creates_then_updates_keeping_the_registration_day(store):
    _load(store, _district())
    new = {"resident_id": "R9", "birth_year": 2020, "gender": None, "community_id": "C02",
           "household_id": "H7", "registered_at": dt.date(2026, 3, 1)}
    assert store.upsert_resident(new) is True
    assert store.resident("R9") == new
    assert store.upsert_resident(new) is False  # the same profile again: nothing changes
    assert store.resident("R9") == new
    moved = {**new, "community_id": "C01", "household_id": None, "gender": "F",
             "registered_at": dt.date(2026, 5, 5)}
    assert store.upsert_resident(moved) is False
    assert store.resident("R9") == {**moved, "registered_at": dt.date(2026, 3, 1)}
    assert store.count("residents") == 4
    with pytest.raises(StoreError):  # the community must exist
        store.upsert_resident({**new, "resident_id": "R10", "community_id": "C99"})
    assert store.resident("R10") is None


def test_profiles_are_upserted_read_and_written_with_their_resident(store):
    _load(store, _district())
    assert store.profile("R1") is None
    at = dt.datetime(2026, 3, 1, 8, 30)
    store.upsert_profile("R1", interests=["handicraft", "skills"], at=at)
    assert store.profile("R1") == {"resident_id": "R1", "age_band": None,
                                   "interests": ("handicraft", "skills"), "updated_at": at}
    store.upsert_profile("R1", age_band="elderly", interests=[])  # replaced, not merged
    assert store.profile("R1")["age_band"] == "elderly"
    assert store.profile("R1")["interests"] == ()
    new = {"resident_id": "R9", "birth_year": 1988, "gender": None, "community_id": "C02",
           "household_id": None, "registered_at": dt.date(2026, 3, 1)}
    assert store.upsert_resident(new, profile={"age_band": "working_age",
                                               "interests": ["interest"]}) is True
    assert store.profile("R9")["interests"] == ("interest",)
    with pytest.raises(ProfileError, match=r"interests\[1\]"):
        store.upsert_profile("R1", interests=["skills", "knitting"])
    with pytest.raises(ProfileError, match="age_band"):
        store.upsert_profile("R1", age_band="teen")
    assert store.profile("R1")["age_band"] == "elderly"  # a refused profile changes nothing
    with pytest.raises(StoreError):  # the resident must be stored
        store.upsert_profile("R404", interests=["skills"])
    assert store.profile("R404") is None


def test_resident_reads_answer_as_the_three_reads_do(store):
    _load(store, _district())
    store.insert("participations", _events(
        ("E10", "R1", "K2", "enroll", "2025-03-05 09:00:00"),
        ("E12", "R1", "K1", "cancel", "2025-03-02 08:00:00"),
        ("E14", "R1", "K2", "no_show", "2025-03-19 09:00:00"),
        ("E17", "R3", "K2", "cancel", "2025-04-01 10:00:00"),
        ("E16", "R3", "K2", "enroll", "2025-04-01 10:00:00"),
    ))
    store.upsert_profile("R1", age_band="elderly", interests=["handicraft", "skills"],
                         at=dt.datetime(2026, 3, 1, 8, 30))
    store.upsert_profile("R2", interests=[], at=dt.datetime(2026, 3, 2))  # declares nothing
    # R1: commitments and a profile; R2: a view only and an empty profile; R3: commitments at
    # one instant, no profile; R9 and an id longer than any stored one: not stored.
    for resident_id in ("R1", "R2", "R3", "R9", "R1" + "x" * 70):
        reads = store.resident_reads(resident_id)
        assert (reads.commitments, reads.resident, reads.profile) == (
            store.commitments(resident_id), store.resident(resident_id),
            store.profile(resident_id)), resident_id
    reads = store.resident_reads("R1")
    assert reads.commitments == [("K1", "enroll"), ("K1", "cancel"), ("K2", "enroll")]
    assert reads.profile["interests"] == ("handicraft", "skills")
    assert reads.resident["registered_at"] == dt.date(2024, 1, 2)
    assert store.resident_reads("R2").profile["interests"] == ()
    assert store.resident_reads("R3").commitments == [("K2", "enroll"), ("K2", "cancel")]
    assert store.resident_reads("R9").resident is None


def test_a_residents_reads_are_one_range_of_the_covering_index(tmp_path):
    """Every list reads the resident's history; on SQLite that read touches no table page."""
    store = open_store(f"sqlite:///{tmp_path / 'plan.db'}")
    _load(store, _district())
    _, sql, fixed, order, _ = store._resident_reads._compile(store.engine.dialect,
                                                             {"resident_id": "R1"})
    values = {**fixed, "resident_id": "R1"}
    with store.engine.connect() as conn:
        plan = [row[-1] for row in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {sql}", tuple(values[k] for k in order)).all()]
    assert any("participations USING COVERING INDEX ix_participations_resident_history" in step
               for step in plan), plan
    store.dispose()


def _participation_indexes(store) -> set[str]:
    return {index["name"] for index in sa.inspect(store.engine).get_indexes("participations")}


def test_a_load_into_empty_participations_builds_the_history_index_after_its_rows(store):
    tables = _district()
    for name in ("communities", "residents", "courses"):
        store.insert(name, tables[name])
    said = []
    with store.bulk_load("participations", said.append):
        during = _participation_indexes(store)
        store.insert("participations", tables["participations"])
    assert "ix_participations_resident_history" not in during
    assert "ix_participations_resident_history" in _participation_indexes(store)
    assert said == ["participations: building the index ix_participations_resident_history"]
    assert store.resident_reads("R1").commitments == [("K1", "enroll")]
    # a table that holds rows keeps its indexes up: dropping them would cost more than it saves
    with store.bulk_load("participations"):
        assert "ix_participations_resident_history" in _participation_indexes(store)


def test_a_load_that_stops_still_leaves_the_index(store):
    tables = _district()
    for name in ("communities", "residents", "courses"):
        store.insert(name, tables[name])
    with pytest.raises(RuntimeError), store.bulk_load("participations"):
        raise RuntimeError("the import failed half-way")
    assert "ix_participations_resident_history" in _participation_indexes(store)
    # killed before it could build it again: the next start-up does
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_participations_resident_history"))
    store.create_schema()
    assert "ix_participations_resident_history" in _participation_indexes(store)


def test_resident_reads_see_a_commitment_at_once_and_fail_as_store_errors(store):
    _load(store, _district())
    assert store.resident_reads("R3").commitments == []
    store.insert("participations", _events(("E30", "R3", "K1", "enroll", "2025-03-03 09:00:00")))
    assert store.resident_reads("R3").commitments == [("K1", "enroll")]  # no stale snapshot
    store.drop_schema()
    with pytest.raises(StoreError):  # the driver's own error, raised as every read's is
        store.resident_reads("R3")


def test_seats_taken_are_residents_whose_latest_commitment_holds_a_seat(store):
    assert store.seats_taken() == {}
    _load(store, _district())
    assert store.seats_taken() == {"K1": 1}  # E1; the rate and the view do not count
    store.insert("participations", _events(
        ("E20", "R2", "K1", "enroll", "2025-03-03 09:00:00"),
        ("E21", "R3", "K1", "enroll", "2025-03-03 09:00:00"),
        ("E22", "R2", "K1", "cancel", "2025-03-04 09:00:00"),
        ("E23", "R3", "K1", "attend", "2025-03-10 09:00:00"),
    ))
    assert store.seats_taken() == {"K1": 2}  # R1 enrolled, R3 attends; R2 cancelled
    assert store.seats_taken(["K1", "K2", "NOPE"]) == {"K1": 2}
    assert store.seats_taken([]) == {}
    # Who holds them: every seat, or those of some residents (what a fold asks).
    assert sorted(store.seat_holders()) == [("K1", "R1"), ("K1", "R3")]
    assert store.seat_holders(["R2", "R3", "R9"]) == [("K1", "R3")]
    assert store.seat_holders([]) == []


def test_a_cancel_without_an_enrolment_frees_nothing(store):
    _load(store, _district())
    store.insert("participations", _events(
        ("E30", "R3", "K2", "cancel", "2025-03-04 09:00:00"),  # never enrolled in K2
        ("E31", "R2", "K1", "cancel", "2025-03-04 09:00:00"),  # never enrolled in K1
    ))
    assert store.seats_taken() == {"K1": 1}  # not 0 for K1, no negative count for K2
    store.insert("participations", _events(("E32", "R3", "K2", "enroll", "2025-03-05 09:00:00")))
    assert store.seats_taken() == {"K1": 1, "K2": 1}  # an earlier stray cancel does not offset it


def test_enrolling_twice_takes_one_seat(store):
    _load(store, _district())
    store.insert("participations", _events(
        ("E40", "R1", "K1", "enroll", "2025-03-02 09:00:00"),  # R1's second enrolment (E1)
        ("E41", "R2", "K2", "enroll", "2025-03-02 09:00:00"),
        ("E42", "R2", "K2", "enroll", "2025-03-03 09:00:00"),
        ("E43", "R2", "K2", "attend", "2025-03-09 09:00:00"),
    ))
    assert store.seats_taken() == {"K1": 1, "K2": 1}


def test_the_latest_commitment_decides_whatever_order_events_arrive_in(store):
    _load(store, _district())
    # The cancel arrives before the enrolment it cancels, and a completion ends the course.
    store.insert("participations", _events(("E50", "R2", "K1", "cancel", "2025-03-09 09:00:00")))
    store.insert("participations", _events(("E51", "R2", "K1", "enroll", "2025-03-03 09:00:00")))
    store.insert("participations", _events(("E52", "R1", "K1", "complete", "2025-06-30 09:00:00")))
    assert store.seats_taken() == {}
    # Same time: the larger event id is the later one (the order of `commitments`).
    store.insert("participations", _events(("E53", "R3", "K1", "enroll", "2025-03-09 09:00:00"),
                                           ("E54", "R3", "K1", "cancel", "2025-03-09 09:00:00")))
    assert store.seats_taken() == {}
    store.insert("participations", _events(("E55", "R3", "K1", "enroll", "2025-03-09 09:00:00")))
    assert store.seats_taken() == {"K1": 1}


def test_events_reads_rows_by_id(store):
    _load(store, _district())
    found = store.events(["E3", "E1", "NOPE", "E1"])
    assert found["event_id"].tolist() == ["E1", "E3"]
    assert found["occurred_at"].tolist() == list(pd.to_datetime(
        ["2025-03-01 09:00:00", "2025-03-02 10:00:00"]))
    assert store.events([]).empty and list(store.events([]).columns) == list(found.columns)


def test_a_feed_hands_out_every_event_committed_after_it_opened_once(store, store_url):
    _load(store, {k: v for k, v in _district().items() if k != "participations"})
    store.insert("participations", _district()["participations"])
    other = open_store(store_url, create=False)  # another worker, on its own connections
    feed = store.follow()
    try:
        assert feed.poll().empty  # what was stored before the feed opened is not news
        first = _events(("E60", "R1", "K2", "enroll", "2025-03-03 09:00:00"),
                        ("E61", "R2", "K1", "view", "2025-03-03 09:00:00"))
        other.insert("participations", first, announce=True)
        other.insert("participations", first, announce=True)  # stored once, told once
        got = _first_news(feed)
        assert got["event_id"].tolist() == ["E60", "E61"]
        assert got.loc[0, "occurred_at"] == pd.Timestamp("2025-03-03 09:00:00")
        assert feed.poll().empty
        other.insert("participations", _events(*[(f"E7{i}", "R3", "K1", "view",
                                                  "2025-03-04 09:00:00") for i in range(5)]),
                     announce=True)
        assert _first_news(feed, limit=3)["event_id"].tolist() == ["E70", "E71", "E72"]
        assert feed.poll(limit=3)["event_id"].tolist() == ["E73", "E74"]
        assert feed.poll().empty
    finally:
        feed.close()
        other.dispose()


def _first_news(feed, limit: int | None = None, wait_s: float = 5.0) -> pd.DataFrame:
    """The first non-empty poll of ``feed`` within ``wait_s``: on PostgreSQL another
    connection's notification reaches the listener a moment after its commit."""
    deadline = time.monotonic() + wait_s
    while True:
        got = feed.poll() if limit is None else feed.poll(limit=limit)
        if not got.empty or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def _unreachable(store, tmp_path: Path) -> Store:
    """A store of the same backend whose database cannot be opened."""
    if store.backend == "sqlite":
        return SQLiteStore(f"sqlite:///{tmp_path}")  # a folder, not a database file
    return PostgresStore("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2")


def test_ping_answers_and_fails_with_store_error(store, tmp_path):
    assert store.ping() is None
    broken = _unreachable(store, tmp_path)
    with pytest.raises(StoreError):
        broken.ping()
    broken.dispose()


def test_read_all_counts_and_schema_lifecycle(store):
    tables = _district()
    _load(store, tables)
    everything = store.read_all()
    assert list(everything) == ["communities", "residents", "courses", "participations"]
    assert {n: len(f) for n, f in everything.items()} == store.counts() == {
        "communities": 2, "residents": 3, "courses": 2, "participations": 3}
    store.drop_schema()
    with pytest.raises(StoreError):
        store.count("residents")
    store.create_schema()
    assert set(store.counts().values()) == {0}


def test_dispose_closes_connections_and_the_store_reconnects(store):
    _load(store, _district())
    store.dispose()
    assert store.engine.pool.checkedout() == 0
    assert store.count("residents") == 3


def test_repr_names_the_backend_without_the_password():
    text = repr(PostgresStore("postgresql://user:s3cret@db.example:5432/district"))
    assert text.startswith("PostgresStore(") and "db.example" in text and "s3cret" not in text


def test_decisions_are_added_listed_and_undone_softly(store):
    _load(store, _district())
    at = dt.datetime(2025, 3, 1, 9, 0)
    first = store.add_decision(community_id="C01", band="elderly", course_id="K1",
                               action="pin", decided_by="coordinator:ab12", note="茶艺 is loved",
                               at=at)
    second = store.add_decision(community_id="all", band="all", course_id="K2",
                                action="reject", decided_by="admin:cd34")
    assert second > first
    row = store.decision(first)
    assert row == {"decision_id": first, "community_id": "C01", "band": "elderly",
                   "course_id": "K1", "action": "pin", "note": "茶艺 is loved",
                   "decided_by": "coordinator:ab12", "decided_at": at, "undone_at": None,
                   "undone_by": None}
    assert store.decision(10_000) is None
    assert [d["decision_id"] for d in store.decisions()] == [first, second]
    assert [d["decision_id"] for d in store.decisions(community_id="C01")] == [first]
    assert [d["decision_id"] for d in store.decisions(band="all")] == [second]
    assert store.decisions(community_id="C02") == []

    assert store.undo_decision(first, by="coordinator:ef56") is True
    assert store.undo_decision(first, by="coordinator:ef56") is False  # already undone
    assert [d["decision_id"] for d in store.decisions()] == [second]
    history = store.decisions(community_id="C01", active_only=False)
    assert history[0]["undone_by"] == "coordinator:ef56" and history[0]["undone_at"] >= at
    with pytest.raises(KeyError, match="10000"):
        store.undo_decision(10_000, by="admin:cd34")


def test_a_decision_names_a_bad_action_band_or_course(store):
    _load(store, _district())
    base = {"community_id": "C01", "band": "elderly", "course_id": "K1",
            "action": "pin", "decided_by": "admin:cd34"}
    with pytest.raises(ValueError, match="action: 'promote'"):
        store.add_decision(**{**base, "action": "promote"})
    with pytest.raises(ValueError, match="band: 'teen'"):
        store.add_decision(**{**base, "band": "teen"})
    with pytest.raises(StoreError):
        store.add_decision(**{**base, "course_id": "NOPE"})
    assert store.decisions(active_only=False) == []


def test_schema_revision_is_the_newest_migration(store):
    assert store.schema_revision() == "0005"


def test_experiments_start_one_at_a_time_and_stop_softly(store):
    assert store.running_experiment() is None and store.experiment() is None
    assert store.stop_experiment(by="admin:ab12") is None
    first = store.start_experiment(version_a="v1", version_b="v2", share=0.2,
                                   started_by="admin:ab12", note="new trees")
    assert store.running_experiment() == first
    with pytest.raises(ExperimentConflict, match="experiment 1 is running"):
        store.start_experiment(version_a="v1", version_b="v3", share=0.5, started_by="cli")
    stopped = store.stop_experiment(by="cli", at=dt.datetime(2026, 1, 2, 3, 4, 5))
    assert stopped["experiment_id"] == first["experiment_id"]
    assert stopped["stopped_at"] == dt.datetime(2026, 1, 2, 3, 4, 5)
    assert store.running_experiment() is None
    second = store.start_experiment(version_a="v2", version_b="v3", share=0.5, started_by="cli")
    assert [e["experiment_id"] for e in store.experiments()] == [
        second["experiment_id"], first["experiment_id"]]
    assert store.experiment()["version_b"] == "v3"
    assert store.experiment(first["experiment_id"])["stopped_by"] == "cli"
    assert store.experiment(999) is None


@pytest.mark.parametrize("fields, field", [
    ({"share": 0.0}, "share"), ({"share": 1.0}, "share"), ({"version_b": "v1"}, "version_b"),
    ({"version_a": ""}, "version_a")])
def test_a_bad_experiment_names_its_field(store, fields, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        store.start_experiment(**{"version_a": "v1", "version_b": "v2", "share": 0.3,
                                  "started_by": "cli", **fields})
    assert store.experiments() == []


def _impression(n, **fields):
    return {"request_id": f"req{n}", "kind": "resident", "resident_id": f"R{n}",
            "household_id": None, "band": "elderly", "experiment_id": None, "variant": None,
            "model_version": "v1", "courses": "K1|K2",
            "served_at": dt.datetime(2025, 3, 1, 9, n), **fields}


def test_impressions_are_stored_in_batches_and_read_per_experiment(store):
    experiment = store.start_experiment(version_a="v1", version_b="v2", share=0.5,
                                        started_by="cli")["experiment_id"]
    rows = [_impression(1), _impression(2, experiment_id=experiment, variant="B"),
            _impression(3, kind="household", resident_id=None, household_id="H1",
                        experiment_id=experiment, variant="A", courses="K2")]
    assert store.add_impressions(rows) == 3 and store.add_impressions([]) == 0
    everything = store.impressions()
    assert list(everything["request_id"]) == ["req1", "req2", "req3"]
    assert everything.loc[0, "served_at"] == pd.Timestamp("2025-03-01 09:01")
    mine = store.impressions(experiment)
    assert list(mine["variant"]) == ["B", "A"] and mine.iloc[1]["household_id"] == "H1"
    with pytest.raises(ValueError, match=r"impressions\[1\]\.kind: 'someone'"):
        store.add_impressions([_impression(4), _impression(5, kind="someone")])
    assert len(store.impressions()) == 3


def test_enrolments_since_and_household_members(store):
    _load(store, _district())
    found = store.enrolments_since(dt.datetime(2025, 1, 1), ["R1", "R2", "R9"])
    assert found.to_dict("records") == [
        {"resident_id": "R1", "course_id": "K1", "occurred_at": pd.Timestamp("2025-03-01 09:00")}]
    assert store.enrolments_since(dt.datetime(2025, 3, 1, 9, 1), ["R1"]).empty
    assert store.household_members(["H1", "H9"]) == {"H1": ["R1", "R2"]}


def test_every_public_store_method_is_exercised_here():
    source = Path(__file__).read_text(encoding="utf-8")
    # getmembers, not vars: Store inherits the methods of its mixins (store.queries, .coordinators)
    public = [name for name, _ in inspect.getmembers(Store, inspect.isfunction)
              if not name.startswith("_")]
    assert {"commitments", "resident", "seats_taken", "follow", "ping"} <= set(public)
    missing = [name for name in public if f".{name}(" not in source]
    assert not missing, f"Store methods without a test in the shared suite: {missing}"

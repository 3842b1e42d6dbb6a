"""Schema migrations on both backends: a fresh store, a store made before migrations existed,
repeated upgrades, and the migrations agreeing with :func:`build_metadata`."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from recommender.data import migrations
from recommender.data.store import METADATA, SQLiteStore, open_store
from recommender.domain import TABLE_ORDER
from tests.recommender.data.test_store import _district, _load

HEAD = "0005"


def _pre_migration_store(url: str):
    """A store as the code before migrations made it: the four tables by ``create_all``."""
    old = sa.MetaData()
    for name in TABLE_ORDER:
        METADATA.tables[name].to_metadata(old)
    # with the index on a resident's id that they had (migration 0005 replaced it)
    events = old.tables["participations"]
    events.indexes = {i for i in events.indexes if i.name != "ix_participations_resident_history"}
    sa.Index("ix_participations_resident_id", events.c.resident_id)
    store = open_store(url, create=False)
    old.create_all(store.engine)
    return store


def _tables(store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_fresh_store_gets_every_table_at_head(store_url):
    store = open_store(store_url)
    assert store.schema_revision() == HEAD
    assert _tables(store) == {*TABLE_ORDER, "decisions", "experiments", "impressions",
                              "resident_profiles", "alembic_version"}
    store.dispose()


def test_pre_migration_store_is_upgraded_in_place_keeping_its_rows(store_url):
    store = _pre_migration_store(store_url)
    _load(store, _district())
    before = store.read_all()
    assert store.schema_revision() is None and "decisions" not in _tables(store)
    store.dispose()

    store = open_store(store_url)  # what the new code does on start-up
    assert store.schema_revision() == HEAD
    assert "decisions" in _tables(store)
    assert {i["name"] for i in sa.inspect(store.engine).get_indexes("participations")} == {
        "ix_participations_resident_history", "ix_participations_course_id"}
    for name, frame in store.read_all().items():
        pd.testing.assert_frame_equal(frame, before[name])
    assert store.add_decision(community_id="C01", band="elderly", course_id="K1",
                              action="pin", decided_by="coordinator:ab12") >= 1
    store.dispose()


def test_upgrading_twice_changes_nothing(store):
    _load(store, _district())
    store.add_decision(community_id="all", band="all", course_id="K2", action="reject",
                       decided_by="admin:cd34", note="closed for repairs")
    store.create_schema()
    open_store(store.url).dispose()
    assert store.schema_revision() == HEAD
    assert store.counts()["participations"] == 3
    assert len(store.decisions()) == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_migrations_match_the_metadata(store):
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), METADATA) == []


def test_downgrade_to_the_baseline_drops_only_the_decisions(store):
    _load(store, _district())
    migrations.downgrade(store.engine, migrations.BASELINE)
    assert store.schema_revision() == migrations.BASELINE
    assert "decisions" not in _tables(store)
    assert store.counts()["residents"] == 3
    store.create_schema()
    assert store.schema_revision() == HEAD


def test_an_unmigrated_empty_database_is_built_from_scratch(tmp_path):
    store = SQLiteStore(f"sqlite:///{tmp_path / 'empty.db'}")
    assert store.schema_revision() is None
    store.create_schema()
    assert store.schema_revision() == HEAD
    store.dispose()


@pytest.mark.parametrize("revision", ["0001", "head"])
def test_upgrade_is_idempotent_at_any_revision(store_url, revision):
    store = open_store(store_url, create=False)
    migrations.upgrade(store.engine, revision)
    migrations.upgrade(store.engine, revision)
    assert store.schema_revision() == (HEAD if revision == "head" else "0001")
    store.dispose()


def test_concurrent_start_ups_migrate_once(store_url):
    # several workers opening the same new database at once (threads stand in for processes)
    from concurrent.futures import ThreadPoolExecutor

    def start(_):
        store = open_store(store_url)
        revision = store.schema_revision()
        store.dispose()
        return revision

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(start, range(4))) == [HEAD] * 4


def test_downgrade_to_decisions_drops_only_the_experiments_and_their_impressions(store):
    store.start_experiment(version_a="v1", version_b="v2", share=0.5, started_by="cli")
    migrations.downgrade(store.engine, "0002")
    assert _tables(store) == {*TABLE_ORDER, "decisions", "alembic_version"}
    assert "resident_profiles" not in _tables(store)
    store.create_schema()
    assert store.schema_revision() == HEAD and store.experiments() == []


def test_downgrade_to_experiments_drops_only_the_profiles_and_upgrade_brings_them_back(store):
    _load(store, _district())
    store.upsert_profile("R1", age_band="elderly", interests=["handicraft"])
    migrations.downgrade(store.engine, "0003")
    assert store.schema_revision() == "0003"
    assert _tables(store) == {*TABLE_ORDER, "decisions", "experiments", "impressions",
                              "alembic_version"}
    assert store.counts()["residents"] == 3
    store.create_schema()
    assert store.schema_revision() == HEAD and store.profile("R1") is None
    store.upsert_profile("R1", interests=["skills"])
    assert store.profile("R1")["interests"] == ("skills",)

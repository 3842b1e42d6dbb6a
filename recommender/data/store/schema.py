"""The store's tables, described once with SQLAlchemy Core.

:func:`build_metadata` builds the district tables from :data:`recommender.domain.TABLES`, plus
the store's own: the coordinators' decisions, the A/B tests' experiments and impressions, and
residents' declared profiles.

The schema arrives through Alembic migrations kept in :mod:`recommender.data.migrations`
(:meth:`Store.create_schema` runs them; a store created before migrations is stamped at the
baseline and upgraded in place). :func:`build_metadata` describes the same tables for queries
and is checked against the migrations by the tests.
"""

from __future__ import annotations

import sqlalchemy as sa

from recommender.domain import TABLE_ORDER, TABLES

_SQL_TYPES = {
    "id": lambda: sa.String(64),
    "text": lambda: sa.Text(),
    "enum": lambda: sa.String(32),
    "bands": lambda: sa.String(128),
    "int": lambda: sa.Integer(),
    "float": lambda: sa.Float(),
    "date": lambda: sa.Date(),
    "datetime": lambda: sa.DateTime(),
}


def build_metadata() -> sa.MetaData:
    """SQLAlchemy tables for every district table, plus the coordinators' decisions."""
    metadata = sa.MetaData()
    for name in TABLE_ORDER:
        spec = TABLES[name]
        columns = []
        for col in spec.columns:
            args = [col.name, _SQL_TYPES[col.kind]()]
            if col.references:
                args.append(sa.ForeignKey(f"{col.references}.{TABLES[col.references].key}"))
            columns.append(
                sa.Column(*args, primary_key=col.name == spec.key, nullable=not col.required)
            )
        table = sa.Table(name, metadata, *columns)
        # Ranking and feature building read a resident's history and a course's audience.
        for col in spec.columns:
            if col.references and (name, col.name) != ("participations", "resident_id"):
                sa.Index(f"ix_{name}_{col.name}", table.c[col.name])
    _resident_history_index(metadata.tables["participations"])
    _decisions_table(metadata)
    _experiment_tables(metadata)
    _profiles_table(metadata)
    return metadata


def _resident_history_index(p: sa.Table) -> sa.Index:
    """A resident's events in the order every list reads them, with what it reads (migration
    ``0005``): the read of :meth:`Store.resident_reads` is then one index range, not a table
    page per event (0.05 ms instead of 0.11-0.15 ms on the 400k district)."""
    return sa.Index("ix_participations_resident_history", p.c.resident_id, p.c.occurred_at,
                    p.c.event_id, p.c.event, p.c.course_id)


def _decisions_table(metadata: sa.MetaData) -> sa.Table:
    """The coordinators' decisions (migration ``0002``): one row per decision, kept when undone.

    The migration spells the same columns out on purpose: a migration is frozen history and must
    not change when this definition does; a test checks that the two agree today.
    """
    table = sa.Table(
        "decisions", metadata,
        sa.Column("decision_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("community_id", sa.String(64), nullable=False),
        sa.Column("band", sa.String(32), nullable=False),
        sa.Column("course_id", sa.String(64), sa.ForeignKey("courses.course_id"),
                  nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.Column("undone_by", sa.String(128), nullable=True),
    )
    sa.Index("ix_decisions_cohort", table.c.community_id, table.c.band)
    return table


def _experiment_tables(metadata: sa.MetaData) -> None:
    """The A/B tests' experiments and impressions (migration ``0003``, spelled out there too)."""
    sa.Table(
        "experiments", metadata,
        sa.Column("experiment_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version_a", sa.String(128), nullable=False),
        sa.Column("version_b", sa.String(128), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_by", sa.String(128), nullable=True),
    )
    impressions = sa.Table(
        "impressions", metadata,
        sa.Column("impression_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resident_id", sa.String(64), nullable=True),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("band", sa.String(32), nullable=True),
        sa.Column("experiment_id", sa.Integer(), sa.ForeignKey("experiments.experiment_id"),
                  nullable=True),
        sa.Column("variant", sa.String(1), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("courses", sa.Text(), nullable=False),
        sa.Column("served_at", sa.DateTime(), nullable=False),
    )
    sa.Index("ix_impressions_experiment", impressions.c.experiment_id, impressions.c.variant)
    sa.Index("ix_impressions_resident", impressions.c.resident_id)


def _profiles_table(metadata: sa.MetaData) -> None:
    """Residents' declared profiles (migration ``0004``, spelled out there too; see
    :mod:`recommender.data.profiles`)."""
    sa.Table(
        "resident_profiles", metadata,
        sa.Column("resident_id", sa.String(64), sa.ForeignKey("residents.resident_id"),
                  primary_key=True),
        sa.Column("age_band", sa.String(32), nullable=True),
        sa.Column("interests", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


METADATA = build_metadata()

# Indexes that a load into an empty table builds after its rows (Store.bulk_load).
BULK_DEFERRED = {"participations": ("ix_participations_resident_history",)}


def _deferred_indexes(table: str) -> list[sa.Index]:
    return [index for index in METADATA.tables[table].indexes
            if index.name in BULK_DEFERRED.get(table, ())]

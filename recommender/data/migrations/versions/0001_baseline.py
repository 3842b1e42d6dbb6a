"""Baseline: the four district tables, as the store created them before migrations.

Written out column by column (not derived from :mod:`recommender.domain`), so this migration
stays what it was when the domain changes: later changes come as later migrations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id(name: str, *args, **kwargs) -> sa.Column:
    return sa.Column(name, sa.String(64), *args, **kwargs)


def upgrade() -> None:
    op.create_table(
        "communities",
        _id("community_id", primary_key=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("street", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
    )
    op.create_table(
        "residents",
        _id("resident_id", primary_key=True, nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("gender", sa.String(32), nullable=True),
        _id("community_id", sa.ForeignKey("communities.community_id"), nullable=False),
        _id("household_id", nullable=True),
        sa.Column("registered_at", sa.Date(), nullable=False),
    )
    op.create_table(
        "courses",
        _id("course_id", primary_key=True, nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("target_bands", sa.String(128), nullable=False),
        sa.Column("tags", sa.Text(), nullable=True),
        _id("community_id", sa.ForeignKey("communities.community_id"), nullable=False),
        sa.Column("fee_tier", sa.String(32), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("start_time", sa.Text(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_table(
        "participations",
        _id("event_id", primary_key=True, nullable=False),
        _id("resident_id", sa.ForeignKey("residents.resident_id"), nullable=False),
        _id("course_id", sa.ForeignKey("courses.course_id"), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_residents_community_id", "residents", ["community_id"])
    op.create_index("ix_courses_community_id", "courses", ["community_id"])
    op.create_index("ix_participations_resident_id", "participations", ["resident_id"])
    op.create_index("ix_participations_course_id", "participations", ["course_id"])


def downgrade() -> None:
    for name in ("participations", "courses", "residents", "communities"):
        op.drop_table(name)

"""Online A/B tests: the experiments between two model versions, and the impressions served.

An experiment serves version ``version_b`` to a hash-assigned ``share`` of residents and
``version_a`` to the rest until it is stopped (``stopped_at``); a stopped row stays as history.
An impression is one served list: who it was for (a resident, a household, or an anonymous
profile), which experiment and variant, which model version, the courses in their order
(``|``-separated, so a course's position is its place in the list) and when (district time, like
the participations it is compared with). Residents are not foreign keys: a list can be served
to a resident the store does not hold yet.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
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
    op.create_table(
        "impressions",
        sa.Column("impression_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resident_id", sa.String(64), nullable=True),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("band", sa.String(32), nullable=True),
        sa.Column("experiment_id", sa.Integer(),
                  sa.ForeignKey("experiments.experiment_id"), nullable=True),
        sa.Column("variant", sa.String(1), nullable=True),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("courses", sa.Text(), nullable=False),
        sa.Column("served_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_impressions_experiment", "impressions", ["experiment_id", "variant"])
    op.create_index("ix_impressions_resident", "impressions", ["resident_id"])


def downgrade() -> None:
    op.drop_table("impressions")
    op.drop_table("experiments")

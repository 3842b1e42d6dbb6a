"""Coordinators' decisions: approve, reject or pin a course for a cohort, undone softly.

A cohort is a community (or ``all``) and an age band (or ``all``), so neither column is a
foreign key. Who decided is the key's role and a non-secret fingerprint, never the key; an undo
fills ``undone_at`` and ``undone_by`` and keeps the row, so the history stays.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
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
    op.create_index("ix_decisions_cohort", "decisions", ["community_id", "band"])


def downgrade() -> None:
    op.drop_table("decisions")

"""Residents' declared profiles: an age band given instead of a birth year, and interests.

One row per registered resident (the key is the resident's, a foreign key). ``age_band`` is set
only for a resident registered by band alone (their ``residents.birth_year`` is then a stand-in
inside the band); ``interests`` are categories joined by ``|`` (empty for none), a text column
so that SQLite and PostgreSQL store them alike. ``updated_at`` is when the platform last sent
the profile (naive UTC).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resident_profiles",
        sa.Column("resident_id", sa.String(64), sa.ForeignKey("residents.resident_id"),
                  primary_key=True),
        sa.Column("age_band", sa.String(32), nullable=True),
        sa.Column("interests", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("resident_profiles")

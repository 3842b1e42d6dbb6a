"""A covering index for a resident's history, in place of the index on ``resident_id`` alone.

Every list reads the resident's commitments (``course_id``, ``event``) oldest first. With this
index the read is one range of index entries; before, each event cost a table page. The new
index starts with ``resident_id``, so it also serves every lookup the old one did.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = ["resident_id", "occurred_at", "event_id", "event", "course_id"]


def upgrade() -> None:
    op.create_index("ix_participations_resident_history", "participations", _COLUMNS)
    op.drop_index("ix_participations_resident_id", table_name="participations")


def downgrade() -> None:
    op.create_index("ix_participations_resident_id", "participations", ["resident_id"])
    op.drop_index("ix_participations_resident_history", table_name="participations")

"""interactions: the queued work indexed by channel and age

A pass ranks the oldest waiting interactions of each channel apart (app/routing/waiting.py), so
that a backlog of one channel hides no newer work of another. Each channel's oldest are read
from their own range of this index; the index on the age alone would make the read of a quiet
channel walk past every entry of a busy one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(
        "ix_interactions_waiting",
        table_name="interactions",
        postgresql_where=sa.text("state = 'queued'"),
    )
    op.create_index(
        "ix_interactions_waiting",
        "interactions",
        ["channel", "waiting_since"],
        unique=False,
        postgresql_where=sa.text("state = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_interactions_waiting",
        table_name="interactions",
        postgresql_where=sa.text("state = 'queued'"),
    )
    op.create_index(
        "ix_interactions_waiting",
        "interactions",
        ["waiting_since"],
        unique=False,
        postgresql_where=sa.text("state = 'queued'"),
    )

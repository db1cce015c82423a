"""queues: the days each closes; interactions: the handled work indexed for its handle times

`queues.holidays` is the queue's calendar (app/queues/calendar.py): dates it closes and a
country whose public holidays close it, read with its business hours by whoever asks whether
it is open (the IVR's branch, a voicemail's not-before time, `GET /v1/queues/{id}/status`).

`ix_interactions_handled` serves the average handle time (app/routing/figures.py, `read_aht`):
the completed work of one queue and channel, by when it ended, read from one range of the
index however long the history.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "queues",
        sa.Column(
            "holidays",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
    )
    op.create_index(
        "ix_interactions_handled",
        "interactions",
        ["queue_id", "channel", "ended_at"],
        unique=False,
        postgresql_where=sa.text("state = 'completed'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_interactions_handled",
        table_name="interactions",
        postgresql_where=sa.text("state = 'completed'"),
    )
    op.drop_column("queues", "holidays")

"""queues: how many days a follow-up goes back to its thread's agent; an arrival's conversation

A reply to a completed email thread opens a new interaction linked to it. `follow_up_days` says
for how long after that thread ended routing offers the new one first to the agent who handled
it (app/routing/policy.py, `_preferred`); 0 turns it off. An arrival is written with the thread
it continues, so routing knows that agent when it places the arrival at once, and with its
first message and reply token, so the offer that statement may write shows the message.

`interactions_arrive` (app/interactions/arrival.sql) takes three arguments more (`p_linked_to`,
`p_reply_token`, `p_first_message`):
`CREATE OR REPLACE` cannot change a signature, so the old one is dropped here and the file
creates the new one once the upgrade is at head (app/core/definitions.py). On the way down the
new one goes; the older release's own upgrade creates its own.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARRIVE = (
    "interactions_arrive(uuid, text, text, uuid, uuid, integer, jsonb, text, text, timestamptz,"
    " text, jsonb, boolean, jsonb, timestamptz, timestamptz"
)
OLD_ARRIVE = f"{ARRIVE})"
NEW_ARRIVE = f"{ARRIVE}, uuid, text, uuid)"


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {OLD_ARRIVE}")
    op.add_column(
        "queues", sa.Column("follow_up_days", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_queues_follow_up_days_range"), "queues", "follow_up_days BETWEEN 0 AND 90"
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {NEW_ARRIVE}")
    op.drop_constraint(op.f("ck_queues_follow_up_days_range"), "queues", type_="check")
    op.drop_column("queues", "follow_up_days")

"""queue quarters: the reports' roll-up of each queue's line by quarter-hour, channel and tier,
and the roll-up's mark in the event log (app/supervisor/rollups.py)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 01:51:35
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollup_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_marks")),
    )
    op.create_table(
        "queue_quarters",
        sa.Column("quarter", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("offered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answered", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answered_in_target", sa.Integer(), server_default="0", nullable=False),
        sa.Column("answer_wait_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("abandoned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("abandoned_in_target", sa.Integer(), server_default="0", nullable=False),
        sa.Column("short_abandoned", sa.Integer(), server_default="0", nullable=False),
        sa.Column("expired", sa.Integer(), server_default="0", nullable=False),
        sa.Column("transferred", sa.Integer(), server_default="0", nullable=False),
        sa.Column("converted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("handled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("handle_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("longest_wait_seconds", sa.Float(), server_default="0", nullable=False),
        sa.CheckConstraint("offered >= 0", name=op.f("ck_queue_quarters_offered_non_negative")),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_quarters_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "quarter", "queue_id", "channel", "tier", name=op.f("pk_queue_quarters")
        ),
    )


def downgrade() -> None:
    op.drop_table("queue_quarters")
    op.drop_table("rollup_marks")

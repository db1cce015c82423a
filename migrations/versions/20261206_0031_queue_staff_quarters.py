"""queue staff quarters: the staffed and handling time of each queue's qualified agents by
quarter-hour, for the queue's occupancy in the reports (app/supervisor/agent_rollup.py)

The agents' quarters rolled up before this revision are added to the queues their agents
qualify for now: those quarters are at most a day old, and skills held then are the likeliest
skills held now.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 03:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_staff_quarters",
        sa.Column("quarter", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("staffed_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("handling_seconds", sa.Float(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_queue_staff_quarters_queue_id_queues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("quarter", "queue_id", name=op.f("pk_queue_staff_quarters")),
    )
    op.execute(
        """
        INSERT INTO queue_staff_quarters (quarter, queue_id, staffed_seconds, handling_seconds)
        SELECT s.quarter, q.id,
               sum(s.available_seconds + s.busy_seconds + s.wrap_up_seconds),
               sum(s.handling_seconds)
        FROM agent_quarters s JOIN agents a ON a.id = s.agent_id CROSS JOIN queues q
        WHERE NOT EXISTS (
            SELECT 1 FROM queue_skills n
            WHERE n.queue_id = q.id
              AND NOT EXISTS (SELECT 1 FROM agent_skills k
                              WHERE k.agent_id = a.id AND k.skill_id = n.skill_id
                                AND k.proficiency >= n.min_proficiency))
        GROUP BY s.quarter, q.id
        """
    )


def downgrade() -> None:
    op.drop_table("queue_staff_quarters")

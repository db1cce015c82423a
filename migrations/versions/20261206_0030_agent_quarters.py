"""agent quarters: the reports' roll-up of each agent's time by quarter-hour, and where each
agent stood at the roll-up's mark (app/supervisor/rollups.py)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 02:18:48
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_marks",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("holding", sa.Integer(), server_default="0", nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_marks_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_marks")),
    )
    op.create_table(
        "agent_quarters",
        sa.Column("quarter", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("available_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("busy_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("wrap_up_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("away_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("handling_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("handled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("handle_seconds", sa.Float(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_quarters_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("quarter", "agent_id", name=op.f("pk_agent_quarters")),
    )


def downgrade() -> None:
    op.drop_table("agent_quarters")
    op.drop_table("agent_marks")

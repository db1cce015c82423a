"""agent presence in a table of its own, so heartbeats never wait on (or block) agent row locks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_presence",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_presence_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_presence")),
    )
    op.execute(
        "INSERT INTO agent_presence (agent_id, last_seen_at)"
        " SELECT id, last_seen_at FROM agents WHERE last_seen_at IS NOT NULL"
    )
    op.drop_column("agents", "last_seen_at")


def downgrade() -> None:
    op.add_column("agents", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE agents SET last_seen_at = p.last_seen_at FROM agent_presence p"
        " WHERE p.agent_id = agents.id"
    )
    op.drop_table("agent_presence")

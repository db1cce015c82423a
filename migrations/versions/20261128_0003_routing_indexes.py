"""indexes for the matcher's reads: what agents hold, who refused an interaction

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_interactions_held",
        "interactions",
        ["agent_id", "channel"],
        unique=False,
        postgresql_where=sa.text("state IN ('assigned', 'wrap_up')"),
    )
    op.create_index("ix_offers_interaction", "offers", ["interaction_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_offers_interaction", table_name="offers")
    op.drop_index(
        "ix_interactions_held",
        table_name="interactions",
        postgresql_where=sa.text("state IN ('assigned', 'wrap_up')"),
    )

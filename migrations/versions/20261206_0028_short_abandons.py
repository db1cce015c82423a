"""short abandons: a queue's threshold under which an abandon counts in no service figure

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "queues",
        sa.Column("short_abandon_seconds", sa.Integer(), server_default="5", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_queues_short_abandon_seconds_range"),
        "queues",
        "short_abandon_seconds BETWEEN 0 AND 600",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_queues_short_abandon_seconds_range"), "queues", type_="check")
    op.drop_column("queues", "short_abandon_seconds")

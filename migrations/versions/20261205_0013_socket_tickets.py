"""one-use tickets to open a socket, so that login tokens stay out of URLs (and logs)

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "socket_tickets",
        sa.Column("ticket_digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_socket_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_digest", name=op.f("pk_socket_tickets")),
    )
    op.create_index(
        op.f("ix_socket_tickets_expires_at"), "socket_tickets", ["expires_at"], unique=False
    )
    op.create_index(op.f("ix_socket_tickets_user_id"), "socket_tickets", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_socket_tickets_user_id"), table_name="socket_tickets")
    op.drop_index(op.f("ix_socket_tickets_expires_at"), table_name="socket_tickets")
    op.drop_table("socket_tickets")

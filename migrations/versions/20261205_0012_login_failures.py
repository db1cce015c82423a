"""failed logins, counted in the database so that every replica sees the same count

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column(
            "failed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_username_failed_at", "login_failures", ["username", "failed_at"]
    )
    op.create_index(
        "ix_login_failures_address_failed_at", "login_failures", ["address", "failed_at"]
    )
    op.create_index(op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"])


def downgrade() -> None:
    op.drop_table("login_failures")

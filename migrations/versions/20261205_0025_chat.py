"""chat: sites, visitors, chats, and receipts on messages

A site is a website the chat widget runs on (its queue, origins, signing secret, timings and
limits); a visitor is someone at its widget, known by a token their browser keeps (stored as
its sha256); a chat is a chat interaction's life at its site (whether the customer's socket is
there, when anyone last wrote). A message shows when it reached the other side and when it was
read (docs/chat-protocol.md).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "chat_sites",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("identity_secret", sa.String(length=64), nullable=False),
        sa.Column("allowed_origins", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("resume_seconds", sa.Integer(), server_default="120", nullable=False),
        sa.Column("quiet_close_seconds", sa.Integer(), server_default="600", nullable=False),
        sa.Column("messages_per_minute", sa.Integer(), server_default="20", nullable=False),
        sa.Column("chats_per_minute", sa.Integer(), server_default="3", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "resume_seconds BETWEEN 10 AND 3600", name=op.f("ck_chat_sites_resume_range")
        ),
        sa.CheckConstraint(
            "quiet_close_seconds BETWEEN 60 AND 86400", name=op.f("ck_chat_sites_quiet_close_range")
        ),
        sa.CheckConstraint(
            "messages_per_minute BETWEEN 1 AND 600", name=op.f("ck_chat_sites_messages_rate_range")
        ),
        sa.CheckConstraint(
            "chats_per_minute BETWEEN 1 AND 60", name=op.f("ck_chat_sites_chats_rate_range")
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_chat_sites_queue_id_queues"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_chat_sites_name")),
    )
    op.create_table(
        "chat_visitors",
        sa.Column("site_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["chat_sites.id"],
            name=op.f("fk_chat_visitors_site_id_chat_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_chat_visitors_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_visitors")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_chat_visitors_token_hash")),
    )
    op.create_table(
        "chats",
        sa.Column("interaction_id", sa.Uuid(), nullable=False),
        sa.Column("site_id", sa.Uuid(), nullable=False),
        sa.Column("visitor_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replica_id", sa.Uuid(), nullable=True),
        sa.Column("customer_left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_chats_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["chat_sites.id"],
            name=op.f("fk_chats_site_id_chat_sites"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visitor_id"],
            ["chat_visitors.id"],
            name=op.f("fk_chats_visitor_id_chat_visitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_chats")),
    )
    op.create_index(
        "ix_chats_open_left",
        "chats",
        ["customer_left_at"],
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_chats_open_quiet",
        "chats",
        ["last_message_at"],
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index("ix_chats_visitor", "chats", ["visitor_id", "started_at"])
    op.add_column(
        "interaction_messages", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "interaction_messages", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("interaction_messages", "read_at")
    op.drop_column("interaction_messages", "delivered_at")
    op.drop_index("ix_chats_visitor", table_name="chats")
    op.drop_index("ix_chats_open_quiet", table_name="chats")
    op.drop_index("ix_chats_open_left", table_name="chats")
    op.drop_table("chats")
    op.drop_table("chat_visitors")
    op.drop_table("chat_sites")

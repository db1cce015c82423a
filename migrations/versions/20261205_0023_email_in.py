"""email in: support addresses and their queues; the messages of an interaction and their
attachments; an interaction's reply token and the thread it continues; a contact point that
bounces

Every message accepted is stored before the listener answers 250, once per dedupe key (its
Message-ID and sender, or its sender and a hash of its content), with an interaction or, for an
auto-reply, a bounce or list mail, without one (app/channels/email/inbound.py).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_addresses",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("acknowledge", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_email_addresses_queue_id_queues"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_email_addresses_address")),
    )
    op.add_column("interactions", sa.Column("reply_token", sa.String(length=32), nullable=True))
    op.add_column("interactions", sa.Column("linked_to", sa.Uuid(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_interactions_reply_token"), "interactions", ["reply_token"]
    )
    op.create_foreign_key(
        op.f("fk_interactions_linked_to_interactions"),
        "interactions",
        "interactions",
        ["linked_to"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column(
        "contact_points", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "interaction_messages",
        sa.Column("interaction_id", sa.Uuid(), nullable=True),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound",
                "outbound",
                name="message_direction",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel_message_id", sa.String(length=998), nullable=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("sender_name", sa.Text(), server_default="", nullable=False),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("quoted", sa.Text(), server_default="", nullable=False),
        sa.Column("from_html", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "dropped", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("mentions", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mentions"],
            ["interactions.id"],
            name=op.f("fk_interaction_messages_mentions_interactions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_interaction_messages_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_interaction_messages_dedupe_key")),
    )
    op.create_index(
        "ix_interaction_messages_channel_message_id",
        "interaction_messages",
        ["channel_message_id"],
    )
    op.create_index(
        "ix_interaction_messages_interaction",
        "interaction_messages",
        ["interaction_id", "received_at"],
    )
    op.create_table(
        "message_attachments",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.Text(), server_default="", nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["interaction_messages.id"],
            name=op.f("fk_message_attachments_message_id_interaction_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_attachments")),
    )
    op.create_index(
        op.f("ix_message_attachments_message_id"), "message_attachments", ["message_id"]
    )


def downgrade() -> None:
    op.drop_table("message_attachments")
    op.drop_table("interaction_messages")
    op.drop_column("contact_points", "failing_since")
    op.drop_constraint(
        op.f("fk_interactions_linked_to_interactions"), "interactions", type_="foreignkey"
    )
    op.drop_constraint(op.f("uq_interactions_reply_token"), "interactions", type_="unique")
    op.drop_column("interactions", "linked_to")
    op.drop_column("interactions", "reply_token")
    op.drop_table("email_addresses")

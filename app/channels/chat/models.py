from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, Timestamps, UUIDPrimaryKey, utcnow


class ChatSite(UUIDPrimaryKey, Timestamps, Base):
    """A website the chat widget runs on: the queue its chats wait in, the page origins it may
    be opened from, the secret its logged-in customers are signed with, its timings and limits
    (docs/chat-protocol.md, "Sites")."""

    __tablename__ = "chat_sites"
    __table_args__ = (
        CheckConstraint("resume_seconds BETWEEN 10 AND 3600", name="resume_range"),
        CheckConstraint("quiet_close_seconds BETWEEN 60 AND 86400", name="quiet_close_range"),
        CheckConstraint("messages_per_minute BETWEEN 1 AND 600", name="messages_rate_range"),
        CheckConstraint("chats_per_minute BETWEEN 1 AND 60", name="chats_rate_range"),
    )

    name: Mapped[str] = mapped_column(String(100), unique=True)
    queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"))
    # The key of the HMAC-SHA256 a host site signs its customer's id with. Kept as it is, as
    # checking a signature needs it; shown once (made, rotated), never listed nor logged.
    identity_secret: Mapped[str] = mapped_column(String(64))
    allowed_origins: Mapped[list[str]] = mapped_column(JSONB, default=list)
    resume_seconds: Mapped[int] = mapped_column(default=120, server_default="120")
    quiet_close_seconds: Mapped[int] = mapped_column(default=600, server_default="600")
    messages_per_minute: Mapped[int] = mapped_column(default=20, server_default="20")
    chats_per_minute: Mapped[int] = mapped_column(default=3, server_default="3")


class ChatVisitor(UUIDPrimaryKey, Base):
    """Someone at a site's widget, known by the token their browser keeps (stored as its
    sha256): the customer they are once known (signed in, or made by their first chat)."""

    __tablename__ = "chat_visitors"

    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_sites.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Chat(Base):
    """A chat interaction's life at its site: whose it is, whether the customer's socket is
    there (on which replica, so a replica that dies leaves its chats), and when anyone last
    wrote, which the sweep reads to abandon or close it."""

    __tablename__ = "chats"
    __table_args__ = (
        # The sweep's reads: chats whose customer is away, chats that are quiet.
        Index("ix_chats_open_left", "customer_left_at", postgresql_where=text("closed_at IS NULL")),
        Index("ix_chats_open_quiet", "last_message_at", postgresql_where=text("closed_at IS NULL")),
        Index("ix_chats_visitor", "visitor_id", "started_at"),
    )

    interaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_sites.id", ondelete="CASCADE"))
    visitor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("chat_visitors.id", ondelete="CASCADE")
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The replica whose socket has the customer now (null: none), and since when none has.
    replica_id: Mapped[uuid.UUID | None] = mapped_column()
    customer_left_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()

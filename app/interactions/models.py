from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.channels import Channel
from app.core.models import Base, Timestamps, UUIDPrimaryKey, utcnow


class InteractionState(StrEnum):
    queued = "queued"
    offered = "offered"
    assigned = "assigned"
    wrap_up = "wrap_up"
    completed = "completed"
    abandoned = "abandoned"
    transferred_out = "transferred_out"
    expired = "expired"
    converted = "converted"  # a waiting call the caller turned into a callback


TERMINAL_STATES = frozenset(
    {
        InteractionState.completed,
        InteractionState.abandoned,
        InteractionState.transferred_out,
        InteractionState.expired,
        InteractionState.converted,
    }
)


class OfferState(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"
    timed_out = "timed_out"
    withdrawn = "withdrawn"


def _enum(enum: type[StrEnum], name: str) -> Enum:
    return Enum(enum, native_enum=False, length=16, create_constraint=True, name=name)


class Interaction(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "interactions"
    __table_args__ = (
        # A gateway or mail server that retries delivers the same call id / Message-ID again.
        UniqueConstraint("channel", "external_ref", name="uq_interactions_channel_external_ref"),
        # The queued work of each channel, oldest first (the matcher ranks channels apart).
        Index(
            "ix_interactions_waiting",
            "channel",
            "waiting_since",
            postgresql_where=text("state = 'queued'"),
        ),
        Index("ix_interactions_customer_created", "customer_id", "created_at"),
        Index("ix_interactions_agent_state", "agent_id", "state"),
        # What agents hold now, read by every matcher pass: a small index, however long the past.
        Index(
            "ix_interactions_held",
            "agent_id",
            "channel",
            postgresql_where=text("state IN ('assigned', 'wrap_up')"),
        ),
        # The handled work of a queue and channel by when it ended: the average handle time
        # (app/routing/figures.py) reads one range of it, however long the history.
        Index(
            "ix_interactions_handled",
            "queue_id",
            "channel",
            "ended_at",
            postgresql_where=text("state = 'completed'"),
        ),
    )

    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    external_ref: Mapped[str | None] = mapped_column(String(255))
    queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    needs: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    subject: Mapped[str] = mapped_column(String(500), default="", server_default="")
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    state: Mapped[InteractionState] = mapped_column(
        _enum(InteractionState, "interaction_state"), default=InteractionState.queued
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="RESTRICT"))
    waiting_since: Mapped[datetime] = mapped_column(default=utcnow)
    offered_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    wrap_up_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    transferred_from: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL")
    )
    # What the IVR learned about a call (app/interactions/schemas.py `IvrLearned`), kept whole
    # for the agent's screen pop; null for an interaction that came through no IVR.
    ivr: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Routing offers it no earlier than this (a voicemail's callback waits for its queue to
    # open); null, as for nearly every interaction: as soon as an agent is free.
    not_before: Mapped[datetime | None]
    # The token a customer's reply carries (`support+<token>@`, or in the subject) to find its
    # thread; null for an interaction of a channel that has no threads.
    reply_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    # The interaction this one continues: a reply to a completed email thread opens a new
    # interaction (completed stays terminal) that points back at it.
    linked_to: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )


class Offer(UUIDPrimaryKey, Base):
    """One interaction proposed to one agent, until accepted, rejected, timed out or withdrawn."""

    __tablename__ = "offers"
    __table_args__ = (
        # Rule 1, held by the database itself: one pending offer per interaction at any moment.
        Index(
            "uq_offers_one_pending_per_interaction",
            "interaction_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_offers_pending_deadline", "deadline", postgresql_where=text("state = 'pending'")),
        Index("ix_offers_agent_state", "agent_id", "state"),
        # Who already refused or missed an interaction (the matcher skips them for it).
        Index("ix_offers_interaction", "interaction_id"),
    )

    interaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE")
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    state: Mapped[OfferState] = mapped_column(
        _enum(OfferState, "offer_state"), default=OfferState.pending
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    matched: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The lease of the replica whose desk the offer was written for (app/core/lease.py): no
    # offer lands for a desk whose replica's lease has lapsed, and this shows it afterwards.
    replica_id: Mapped[uuid.UUID | None]


class MessageDirection(StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class InteractionMessage(UUIDPrimaryKey, Base):
    """One message of an interaction (an email today): stored before the channel says it took
    it, once however often it is delivered (`dedupe_key`). A message that makes no interaction
    (an auto-reply, a bounce, list mail) is kept too, with no interaction and its `kind`."""

    __tablename__ = "interaction_messages"
    __table_args__ = (
        # Threads are found by the Message-IDs a reply names (In-Reply-To, References).
        Index("ix_interaction_messages_channel_message_id", "channel_message_id"),
        Index("ix_interaction_messages_interaction", "interaction_id", "received_at"),
    )

    interaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE")
    )
    direction: Mapped[MessageDirection] = mapped_column(
        _enum(MessageDirection, "message_direction")
    )
    # What the channel made of it: new_thread, reply, auto_reply, bounce, list_mail.
    kind: Mapped[str] = mapped_column(String(16))
    # The Message-ID (without <>), null when the message had none.
    channel_message_id: Mapped[str | None] = mapped_column(String(998))
    # Message-ID and sender, or sender and a hash of the content when there is no Message-ID
    # (a sha256, hex): a retried delivery finds the first and changes nothing.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str] = mapped_column(Text, default="", server_default="")
    subject: Mapped[str] = mapped_column(Text, default="", server_default="")
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    quoted: Mapped[str] = mapped_column(Text, default="", server_default="")
    from_html: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Another customer's interaction this message names (a forward, a reply from another
    # address): it does not join that thread, but the agent sees that it mentions it.
    mentions: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    # What was not kept (an attachment over the size limit...) and why, shown to the agent.
    dropped: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A chat message's receipts: when it reached the other side's screen, when it was read.
    delivered_at: Mapped[datetime | None] = mapped_column()
    read_at: Mapped[datetime | None] = mapped_column()


class MessageAttachment(UUIDPrimaryKey, Base):
    """A file that came with a message, kept in PostgreSQL and served only to staff signed in."""

    __tablename__ = "message_attachments"

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("interaction_messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(Text, default="", server_default="")
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)

"""IVR flows with immutable numbered versions, and the dialled numbers mapped to them.

A version's document never changes once saved; only its state moves: draft → published →
retired → published again (a roll back). The database holds "at most one published version
per flow" and "at most one default flow" itself, with partial unique indexes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Index

from app.core.models import Base, Timestamps, UUIDPrimaryKey, utcnow


class VersionState(StrEnum):
    draft = "draft"  # saved, never published
    published = "published"  # the one new calls get
    retired = "retired"  # published once, then replaced; may be published again


class IvrFlow(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "ivr_flows"
    __table_args__ = (
        Index("uq_ivr_flows_name_lower", func.lower(text("name")), unique=True),
        Index(
            "uq_ivr_flows_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    is_default: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_by: Mapped[str] = mapped_column(String(96))


class IvrFlowVersion(Base):
    __tablename__ = "ivr_flow_versions"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        Index(
            "uq_ivr_flow_versions_one_published",
            "flow_id",
            unique=True,
            postgresql_where=text("state = 'published'"),
        ),
    )

    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ivr_flows.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[VersionState] = mapped_column(
        Enum(
            VersionState,
            native_enum=False,
            length=16,
            create_constraint=True,
            name="version_state",
        )
    )
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    published_at: Mapped[datetime | None]


class IvrNumber(Timestamps, Base):
    """A dialled number (E.164) and the flow its calls get."""

    __tablename__ = "ivr_numbers"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ivr_flows.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(96))


class Gateway(StrEnum):
    """Which wire format a call came in by: Twilio's webhooks, or the generic JSON events."""

    twilio = "twilio"
    generic = "generic"


class CallPhase(StrEnum):
    """Where a live call stands: in the IVR, waiting in a queue (our wait loop), ringing its
    agent, talking, or over."""

    ivr = "ivr"
    queued = "queued"
    connecting = "connecting"
    talking = "talking"
    ended = "ended"


class CallOutcome(StrEnum):
    """How a call ended: in the IVR (`hang_up` by the flow or the caller, `transfer` to an
    outside number, `callback`, `voicemail`), or after it (`abandoned` while waiting or while
    the agent's phone rang, `answered` by an agent)."""

    hang_up = "hang_up"
    transfer = "transfer"
    callback = "callback"
    voicemail = "voicemail"
    abandoned = "abandoned"
    answered = "answered"


class Call(UUIDPrimaryKey, Base):
    """A call, from the moment a gateway tells us of it, kept after it ends: the flow version it
    runs on (a call keeps the version it started on), the engine's state between events, the
    last answer (a gateway's retry gets it again), and, for a call that never reached a queue,
    its path and how it ended (containment figures). It becomes an interaction only at enqueue."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("gateway", "call_ref", name="uq_calls_gateway_call_ref"),
        CheckConstraint("turn >= 0", name="turn_non_negative"),
        Index(
            "ix_calls_interaction_id",
            "interaction_id",
            postgresql_where=text("interaction_id IS NOT NULL"),
        ),
        Index("ix_calls_started_at", "started_at"),
    )

    gateway: Mapped[Gateway] = mapped_column(
        Enum(Gateway, native_enum=False, length=16, create_constraint=True, name="gateway")
    )
    # The gateway's own id of the call (Twilio's CallSid): the same in every event.
    call_ref: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(255))  # `From` as the gateway sent it
    calling_number: Mapped[str | None] = mapped_column(String(16))  # E.164, when it parses
    dialled: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ivr_flows.id", ondelete="RESTRICT"))
    flow_version: Mapped[int]
    phase: Mapped[CallPhase] = mapped_column(
        Enum(CallPhase, native_enum=False, length=16, create_constraint=True, name="call_phase")
    )
    engine_state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Answers given so far; the callback URLs carry it, so a retried request is known.
    turn: Mapped[int] = mapped_column(default=0, server_default="0")
    last_answer: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    # The latest deliveries applied (a generic gateway's event ids, Twilio's step and turn).
    deliveries: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    outcome: Mapped[str | None] = mapped_column(String(16))
    learned: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    interaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    callback_key: Mapped[str | None] = mapped_column(String(1))
    announced_position: Mapped[int | None]
    announced_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    ended_at: Mapped[datetime | None]
    end_cause: Mapped[str | None] = mapped_column(String(32))

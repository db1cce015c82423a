from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.models import Base, Timestamps, UUIDPrimaryKey, utcnow


class AgentState(StrEnum):
    offline = "offline"
    available = "available"
    busy = "busy"
    wrap_up = "wrap_up"
    away = "away"


class Agent(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint("capacity_voice BETWEEN 0 AND 1", name="capacity_voice_range"),
        CheckConstraint("capacity_chat BETWEEN 0 AND 20", name="capacity_chat_range"),
        CheckConstraint("capacity_email BETWEEN 0 AND 20", name="capacity_email_range"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    capacity_voice: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    capacity_chat: Mapped[int] = mapped_column(SmallInteger, default=3, server_default="3")
    capacity_email: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    state: Mapped[AgentState] = mapped_column(
        Enum(AgentState, native_enum=False, length=16, create_constraint=True, name="agent_state"),
        default=AgentState.offline,
        server_default=AgentState.offline.value,
    )
    state_reason: Mapped[str | None] = mapped_column(String(200))
    state_since: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    # Longest idle first: when the agent last held nothing (routing's tie-breaker).
    idle_since: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    # Moves whenever the skills are replaced: the matcher keeps an agent's skills while it is
    # unchanged (updated_at would not do: it moves on every change of state).
    skills_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Moves with everything routing counts on: each offer written to the agent (by its writer),
    # and capacity, skills, idle time or a change of state other than between available and
    # busy (a trigger: app/routing/agent_version.sql). An offer lands only while it is as
    # routing read it.
    routing_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The agent's current desk socket: an old socket closing late must not log out a new one.
    connection_id: Mapped[uuid.UUID | None]
    # Where the agent's leg of a call rings when a gateway bridges a caller (app/agents/voice.py).
    voice_endpoint: Mapped[str | None] = mapped_column(String(255))

    skills: Mapped[list[AgentSkill]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="AgentSkill.skill_id"
    )


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    __table_args__ = (CheckConstraint("proficiency BETWEEN 1 AND 5", name="proficiency_range"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    proficiency: Mapped[int] = mapped_column(SmallInteger)


class AgentPresence(Base):
    """An agent's last sign of life (a desk socket's hello or heartbeat); the sweeper acts on
    silence. A table of its own, not a column of `agents`: every replica writes it for every
    agent heard each second, and on the agents row that write took the same row lock as
    accepting an offer or completing, so routing waited on heartbeats (docs/benchmarks.md)."""

    __tablename__ = "agent_presence"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    last_seen_at: Mapped[datetime]
    # The lease of the replica holding the agent's desk (app/core/lease.py): routing offers
    # work only to a desk whose replica's lease is live.
    replica_id: Mapped[uuid.UUID | None]

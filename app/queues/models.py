from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Enum, Float, ForeignKey, SmallInteger, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.schema import Index

from app.core.models import Base, Timestamps, UUIDPrimaryKey


class AbandonPolicy(StrEnum):
    """How abandoned interactions count in the service level."""

    ignore = "ignore"
    against = "against"
    in_favour = "in_favour"


class Queue(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "queues"
    __table_args__ = (
        Index("uq_queues_name_lower", func.lower(text("name")), unique=True),
        CheckConstraint("sl_target_percent BETWEEN 1 AND 100", name="sl_percent_range"),
        CheckConstraint("sl_target_seconds > 0", name="sl_seconds_positive"),
        CheckConstraint("offer_timeout_seconds BETWEEN 5 AND 600", name="offer_timeout_range"),
        CheckConstraint("wrap_up_seconds >= 0", name="wrap_up_non_negative"),
        CheckConstraint("aging_factor >= 0", name="aging_non_negative"),
        CheckConstraint("announce_every_seconds BETWEEN 10 AND 600", name="announce_every_range"),
        CheckConstraint("follow_up_days BETWEEN 0 AND 90", name="follow_up_days_range"),
        CheckConstraint(
            "short_abandon_seconds BETWEEN 0 AND 600", name="short_abandon_seconds_range"
        ),
    )

    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    sl_target_percent: Mapped[int] = mapped_column(SmallInteger)
    sl_target_seconds: Mapped[int]
    abandon_policy: Mapped[AbandonPolicy] = mapped_column(
        Enum(
            AbandonPolicy,
            native_enum=False,
            length=16,
            create_constraint=True,
            name="abandon_policy",
        )
    )
    # An abandon after a shorter wait counts in no service figure (docs/metrics.md).
    short_abandon_seconds: Mapped[int] = mapped_column(default=5, server_default="5")
    offer_timeout_seconds: Mapped[int]
    tier_weights: Mapped[dict[str, Any]] = mapped_column(JSONB)
    aging_factor: Mapped[float] = mapped_column(Float)
    wrap_up_seconds: Mapped[int]
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The days it closes (app/queues/calendar.py's HolidayCalendar, as JSON): read with the
    # hours, always together, by whoever asks whether the queue is open.
    holidays: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    relaxation_steps: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    sticky_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    # A reply to a completed thread goes back to that thread's agent for this many days.
    follow_up_days: Mapped[int] = mapped_column(default=0, server_default="0")
    # A customer with an open complaint is offered first to its owner (while qualified, with
    # room), ahead of their last agent: the owner knows the case (docs/complaints.md).
    complaint_owner_first: Mapped[bool] = mapped_column(default=False, server_default="false")
    away_on_missed_offer: Mapped[bool] = mapped_column(default=True, server_default="true")
    # A waiting caller's announcements (position, estimated wait): how often, in seconds.
    announce_every_seconds: Mapped[int] = mapped_column(default=60, server_default="60")

    required_skills: Mapped[list[QueueSkill]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="QueueSkill.skill_id"
    )


class QueueSkill(Base):
    __tablename__ = "queue_skills"
    __table_args__ = (
        CheckConstraint("min_proficiency BETWEEN 1 AND 5", name="min_proficiency_range"),
    )

    queue_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    min_proficiency: Mapped[int] = mapped_column(SmallInteger)

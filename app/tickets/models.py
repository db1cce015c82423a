"""Complaints as stored: the complaint and its records, the interactions about it, its visits
to each step, its deadlines, its investigation notes, its corrective actions, the customer's
answer links, the categories and the deadline policy (docs/complaints.md).

A complaint's history is the event log (`events`, subject `complaint`): every change is an
event with its actor and time, and nothing here rewrites one. The rows below are the present
state that the workflow checks and that reports and the screen pop read quickly; the visits
and deadlines are kept apart so that "how long did step 3 take" and "how many deadlines were
met" are one indexed read each.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, Timestamps, UUIDPrimaryKey, utcnow

REFERENCE_LENGTH = 16  # C-2026-004217, with room for a seventh digit
SUMMARY_LENGTH = 200
TEXT_LENGTH = 20_000  # a complaint's long texts (the message, the reply, a note)
ACTOR_LENGTH = 96  # as events.actor
OWNER_NAME_LENGTH = 200
CATEGORY_NAME_LENGTH = 100


class ComplaintChannel(enum.StrEnum):
    """Where a complaint came in: the center's channels, and the ways a supervisor records by
    hand (a letter, a visit, a post on social media)."""

    voice = "voice"
    email = "email"
    chat = "chat"
    callback = "callback"
    letter = "letter"
    in_person = "in_person"
    social = "social"
    other = "other"


class CategoryKind(enum.StrEnum):
    complaint = "complaint"  # what the complaint is about (set at step 2)
    root_cause = "root_cause"  # why it happened (set at step 5)


class AcknowledgedBy(enum.StrEnum):
    mail = "mail"  # sent on the customer's email thread
    chat = "chat"  # written in the customer's open chat
    read_out = "read_out"  # read out by the agent, who confirmed it was said


def _values(kind: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in kind)


STEPS = "'intake', 'accept', 'investigate', 'reply', 'improve', 'closed', 'rejected'"
SEVERITIES = "'minor', 'major', 'critical'"
TIERS = "'platinum', 'gold', 'iron', 'lead'"
CLOCKS = "'accept', 'investigate', 'reply', 'improve'"
OPEN_STEPS = "step NOT IN ('closed', 'rejected')"


class ComplaintCategory(UUIDPrimaryKey, Timestamps, Base):
    """A category admins keep: what complaints are about, or the root causes found at step 5.
    Retired (`active` false) rather than deleted, as complaints name them."""

    __tablename__ = "complaint_categories"
    __table_args__ = (
        UniqueConstraint("kind", "name", name="uq_complaint_categories_kind_name"),
        CheckConstraint(f"kind IN ({_values(CategoryKind)})", name="kind_known"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(CATEGORY_NAME_LENGTH))
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))


class ComplaintPolicy(Base):
    """The one deadline policy (admins edit it): per severity and tier, the business hours each
    step gets (`deadlines.DeadlinePolicy` as JSON); how long a closed complaint may be reopened;
    how many business days of silence deem a reply accepted; how long before a deadline its
    owner is warned; and the queue whose calendar counts a complaint that came in on none."""

    __tablename__ = "complaint_policy"
    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint("reopen_days BETWEEN 0 AND 365", name="reopen_days_range"),
        CheckConstraint("answer_days BETWEEN 1 AND 60", name="answer_days_range"),
        CheckConstraint("warn_minutes BETWEEN 1 AND 10080", name="warn_minutes_range"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    durations: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reopen_days: Mapped[int] = mapped_column(default=30, server_default="30")
    answer_days: Mapped[int] = mapped_column(default=10, server_default="10")
    warn_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    queue_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    updated_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH), default="system")


class ComplaintNumber(Base):
    """The last reference number given in a year: references count up from 1 each year."""

    __tablename__ = "complaint_numbers"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column()


class Complaint(UUIDPrimaryKey, Timestamps, Base):
    """A complaint, its step and owner, and the records each step fills in (DESIGN.md section
    5): empty text is a record not made yet."""

    __tablename__ = "complaints"
    __table_args__ = (
        CheckConstraint(f"step IN ({STEPS})", name="step_known"),
        CheckConstraint(f"severity IN ({SEVERITIES})", name="severity_known"),
        CheckConstraint(f"tier IN ({TIERS})", name="tier_known"),
        CheckConstraint(f"channel IN ({_values(ComplaintChannel)})", name="channel_known"),
        CheckConstraint(
            f"acknowledged_by IS NULL OR acknowledged_by IN ({_values(AcknowledgedBy)})",
            name="acknowledged_by_known",
        ),
        CheckConstraint("satisfaction BETWEEN 1 AND 5", name="satisfaction_range"),
        # The screen pop's read: a customer's open complaints.
        Index("ix_complaints_customer_open", "customer_id", postgresql_where=text(OPEN_STEPS)),
        Index("ix_complaints_owner_open", "owner_agent_id", postgresql_where=text(OPEN_STEPS)),
        Index("ix_complaints_raised_at", "raised_at"),
    )

    reference: Mapped[str] = mapped_column(String(REFERENCE_LENGTH), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    # The queue it came in on: its calendar counts the deadlines (else the policy's queue).
    queue_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    source_interaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    raised_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    step: Mapped[str] = mapped_column(String(16))
    owner_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    # Given at intake (a first guess), confirmed at step 2; with the tier the customer had when
    # the complaint was raised, it picks the deadlines (a later tier change moves none).
    severity: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(16))
    # Step 1
    summary: Mapped[str] = mapped_column(String(SUMMARY_LENGTH))
    original_message: Mapped[str] = mapped_column(Text)
    remedy_sought: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Step 2
    acknowledgement: Mapped[str] = mapped_column(Text, default="", server_default="")
    acknowledged_by: Mapped[str | None] = mapped_column(String(16))
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("complaint_categories.id", ondelete="RESTRICT")
    )
    rejected_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Step 3 and 4
    assessment: Mapped[str] = mapped_column(Text, default="", server_default="")
    reply: Mapped[str] = mapped_column(Text, default="", server_default="")
    actions_taken: Mapped[str] = mapped_column(Text, default="", server_default="")
    replied_at: Mapped[datetime | None] = mapped_column()
    answer: Mapped[str] = mapped_column(Text, default="", server_default="")
    accepted: Mapped[bool | None] = mapped_column()
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    answered_at: Mapped[datetime | None] = mapped_column()
    # When silence deems the reply accepted (the policy's business days after it was sent).
    answer_due_at: Mapped[datetime | None] = mapped_column()
    # Step 5
    root_cause_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("complaint_categories.id", ondelete="RESTRICT")
    )
    closed_at: Mapped[datetime | None] = mapped_column()
    # A deadline of its passed unmet (the supervisors' live view shows these).
    overdue: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class ComplaintInteraction(Base):
    """An interaction about a complaint: the one it was raised from, and any since."""

    __tablename__ = "complaint_interactions"
    __table_args__ = (Index("ix_complaint_interactions_interaction", "interaction_id"),)

    complaint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("complaints.id", ondelete="CASCADE"), primary_key=True
    )
    interaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), primary_key=True
    )
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))


class ComplaintVisit(Base):
    """A stay in a step, from entering it to leaving it: time per step, for reports."""

    __tablename__ = "complaint_visits"
    __table_args__ = (
        CheckConstraint(f"step IN ({STEPS})", name="step_known"),
        Index("ix_complaint_visits_complaint", "complaint_id", "id"),
        Index("ix_complaint_visits_entered", "entered_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))
    entered_at: Mapped[datetime] = mapped_column()
    left_at: Mapped[datetime | None] = mapped_column()


class ComplaintDeadline(Base):
    """One of a complaint's clocks (deadlines.DEADLINE_STEPS): when it started, when it is due,
    when it ended (met when not after `due_at`), whether it is paused (the reply clock while
    the customer has the reply), and when its owner was warned and it escalated."""

    __tablename__ = "complaint_deadlines"
    __table_args__ = (
        CheckConstraint(f"clock IN ({CLOCKS})", name="clock_known"),
        Index("ix_complaint_deadlines_complaint", "complaint_id", "id"),
        # The deadline sweep's read: the running clocks, soonest first.
        Index(
            "ix_complaint_deadlines_running",
            "due_at",
            postgresql_where=text("ended_at IS NULL AND paused_since IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    clock: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    paused_since: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    warned_at: Mapped[datetime | None] = mapped_column()
    escalated_at: Mapped[datetime | None] = mapped_column()


class ComplaintNote(UUIDPrimaryKey, Base):
    """An investigation note (step 3), with the evidence it points to. Never edited: a
    correction is a new note."""

    __tablename__ = "complaint_notes"
    __table_args__ = (Index("ix_complaint_notes_complaint", "complaint_id", "created_at"),)

    complaint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[str]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CorrectiveAction(UUIDPrimaryKey, Base):
    """What step 5 decided must change, who must do it, by when, and when it was done: the
    list "continuous improvement" is, which someone closes."""

    __tablename__ = "corrective_actions"
    __table_args__ = (
        Index("ix_corrective_actions_complaint", "complaint_id"),
        Index("ix_corrective_actions_open", "due_on", postgresql_where=text("done_at IS NULL")),
    )

    complaint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(OWNER_NAME_LENGTH))
    due_on: Mapped[date | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LENGTH))
    done_at: Mapped[datetime | None] = mapped_column()
    done_by: Mapped[str | None] = mapped_column(String(ACTOR_LENGTH))
    done_note: Mapped[str] = mapped_column(Text, default="", server_default="")


class AnswerLink(UUIDPrimaryKey, Base):
    """The link a step-4 reply carries for the customer's answer: its token is kept only as its
    sha256 (a copy of the database opens no form), it works once, and it expires."""

    __tablename__ = "complaint_answer_links"

    complaint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()

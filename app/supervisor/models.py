"""The reports' tables: each queue's line by quarter-hour, rolled up from the event log
(app/supervisor/rollups.py), and how far the roll-up has read the log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base


class QueueQuarter(Base):
    """What one queue's line did in one quarter-hour, on one channel, for one customer tier:
    `figures.Tally`'s counts (each wait counted in the quarter it ended), the handled work (for
    AHT, by when it ended) and the longest wait that ended in it. Quarters add up to any
    interval in any zone (zone offsets are whole quarters)."""

    __tablename__ = "queue_quarters"
    __table_args__ = (CheckConstraint("offered >= 0", name="offered_non_negative"),)

    quarter: Mapped[datetime] = mapped_column(primary_key=True)
    queue_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    offered: Mapped[int] = mapped_column(default=0, server_default="0")
    answered: Mapped[int] = mapped_column(default=0, server_default="0")
    answered_in_target: Mapped[int] = mapped_column(default=0, server_default="0")
    answer_wait_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    abandoned: Mapped[int] = mapped_column(default=0, server_default="0")
    abandoned_in_target: Mapped[int] = mapped_column(default=0, server_default="0")
    short_abandoned: Mapped[int] = mapped_column(default=0, server_default="0")
    expired: Mapped[int] = mapped_column(default=0, server_default="0")
    transferred: Mapped[int] = mapped_column(default=0, server_default="0")
    converted: Mapped[int] = mapped_column(default=0, server_default="0")
    handled: Mapped[int] = mapped_column(default=0, server_default="0")
    handle_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    longest_wait_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")


class RollupMark(Base):
    """How far the roll-up has read the event log: one row per roll-up, locked by the replica
    that runs it (the others skip that round)."""

    __tablename__ = "rollup_marks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AgentQuarter(Base):
    """What one agent did in one quarter-hour: seconds in each state of their working time
    (offline is not working time), seconds holding work while staffed, and the work they
    finished (for their AHT). Rolled up with the queues' quarters."""

    __tablename__ = "agent_quarters"

    quarter: Mapped[datetime] = mapped_column(primary_key=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    available_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    busy_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    wrap_up_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    away_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    handling_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    handled: Mapped[int] = mapped_column(default=0, server_default="0")
    handle_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")


class AgentMark(Base):
    """Where an agent stood at the roll-up's mark: its state, how much it held, since when
    (the roll-up counts its time from there on its next round)."""

    __tablename__ = "agent_marks"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))
    holding: Mapped[int] = mapped_column(default=0, server_default="0")
    since: Mapped[datetime]


class QueueStaffQuarter(Base):
    """The staffed time, in one quarter-hour, of the agents who qualified for one queue as the
    roll-up read their skills (`directory.holds_the_skills_of`), and the part of it in which
    they held work: the queue's occupancy (docs/metrics.md, "Occupancy of a queue"). An agent
    who qualifies for several queues counts in each."""

    __tablename__ = "queue_staff_quarters"

    quarter: Mapped[datetime] = mapped_column(primary_key=True)
    queue_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    staffed_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")
    handling_seconds: Mapped[float] = mapped_column(Float, default=0, server_default="0")

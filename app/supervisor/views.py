"""What the supervisor's live socket says, both ways (docs/supervisors.md, "The live socket").

Three views, each a whole thing the screen replaces when a frame of it comes: a queue (its line
now, its agents by state, its period figures), an agent (its state, why and since when, what it
holds), a complaint that is escalated or overdue. Every frame carries the id of the last event
the board had folded in when it was computed: the `last_event_id` a reconnecting client sends
back in its hello.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.core.inputs import BIGINT_MAX

# Supervisor -> server


class Hello(BaseModel):
    """The first message: null for a fresh screen, or the `event_id` of the last frame it read
    (a resume sends only what changed since, or a snapshot when that is too long ago)."""

    type: Literal["hello"]
    last_event_id: int | None = Field(default=None, ge=0, le=BIGINT_MAX)


# Server -> supervisor: the views


class PeriodFiguresOut(BaseModel):
    """A queue's figures over one period (docs/metrics.md defines each)."""

    model_config = ConfigDict(from_attributes=True)

    offered: int
    answered: int
    answered_in_target: int
    abandoned: int
    short_abandoned: int
    expired: int
    transferred: int
    converted: int
    service_level: float | None = Field(description="0-1; null when nothing counts yet")
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None


class IntervalOut(BaseModel):
    """One 15-minute interval of today, in the queue's time zone."""

    start: datetime
    offered: int
    service_level: float | None


class Waiting(BaseModel):
    """Interactions waiting now (queued, or offered and not yet accepted)."""

    total: int
    by_channel: dict[str, int]
    by_tier: dict[str, int]


class AgentsByState(BaseModel):
    """The agents that qualify for the queue (every skill it requires, at its level), by state."""

    available: int = 0
    busy: int = 0
    wrap_up: int = 0
    away: int = 0
    offline: int = 0


class QueueView(BaseModel):
    queue_id: uuid.UUID
    name: str
    time_zone: str
    sl_target_percent: int
    sl_target_seconds: int
    waiting: Waiting
    longest_wait_s: float | None = Field(description="At the frame's `at`; null: nobody waits")
    agents: AgentsByState
    today: PeriodFiguresOut
    last_30_min: PeriodFiguresOut
    by_interval: list[IntervalOut]


class HeldInteraction(BaseModel):
    interaction_id: uuid.UUID
    channel: str
    queue_id: uuid.UUID
    state: str = Field(description="assigned, wrap_up, or offered (ringing at the desk)")


class AgentView(BaseModel):
    agent_id: uuid.UUID
    name: str
    state: str
    reason: str | None
    since: datetime
    seconds_in_state: float = Field(description="At the frame's `at`")
    interactions: list[HeldInteraction]
    occupancy: float | None


class ComplaintView(BaseModel):
    """An open complaint that is escalated or overdue; both false: it left the list (closed,
    or its late clock ended)."""

    complaint_id: uuid.UUID
    reference: str
    step: str
    owner_agent_id: uuid.UUID | None
    overdue: bool
    escalated: bool
    due_at: datetime | None


# Server -> supervisor: the frames


class SnapshotFrame(BaseModel):
    type: Literal["snapshot"] = "snapshot"
    event_id: int
    at: datetime
    queues: list[QueueView]
    agents: list[AgentView]
    complaints: list[ComplaintView]


class QueueFrame(BaseModel):
    type: Literal["queue"] = "queue"
    event_id: int
    at: datetime
    queue: QueueView


class AgentFrame(BaseModel):
    type: Literal["agent"] = "agent"
    event_id: int
    at: datetime
    agent: AgentView


class ComplaintFrame(BaseModel):
    type: Literal["complaint"] = "complaint"
    event_id: int
    at: datetime
    complaint: ComplaintView


class ReadyFrame(BaseModel):
    """After the snapshot (or the resumed changes): from here on, frames are live."""

    type: Literal["ready"] = "ready"
    event_id: int
    heartbeat_seconds: float


# A view that changed: what the board broadcasts, and a resume sends.
ChangeFrame = QueueFrame | AgentFrame | ComplaintFrame
SupervisorFrame = Annotated[
    SnapshotFrame | QueueFrame | AgentFrame | ComplaintFrame | ReadyFrame,
    Field(discriminator="type"),
]
supervisor_frame = TypeAdapter[SupervisorFrame](SupervisorFrame)

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import REFUSES_NUL
from app.queues.calendar import HolidayCalendar
from app.queues.hours import BusinessHours, QueueStatus
from app.queues.models import AbandonPolicy
from app.skills.schemas import SkillLevel

QueueName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
    ),
    REFUSES_NUL,
]
Description = Annotated[str, StringConstraints(max_length=500), REFUSES_NUL]


class ServiceLevel(BaseModel):
    """`percent` of interactions answered within `seconds` (e.g. 80% in 20 s)."""

    percent: Annotated[int, Field(ge=1, le=100)] = 80
    seconds: Annotated[int, Field(ge=1, le=86_400)] = 20


class TierWeights(BaseModel):
    """Priority points each customer tier adds to an interaction's effective priority."""

    platinum: Annotated[float, Field(ge=0, le=10_000)] = 30
    gold: Annotated[float, Field(ge=0, le=10_000)] = 20
    iron: Annotated[float, Field(ge=0, le=10_000)] = 10
    lead: Annotated[float, Field(ge=0, le=10_000)] = 0


QUEUE_EXAMPLE: dict[str, Any] = {
    "name": "billing",
    "description": "Invoices and refunds",
    "service_level": {"percent": 80, "seconds": 20},
    "abandon_policy": "against",
    "offer_timeout_seconds": 20,
    "tier_weights": {"platinum": 30, "gold": 20, "iron": 10, "lead": 0},
    "aging_factor": 0.5,
    "wrap_up_seconds": 30,
    "required_skills": [{"skill": "billing", "level": 2}],
}


class RelaxationStep(BaseModel):
    """After `after_seconds` waiting, no required level stays above `level_cap` (0: any agent)."""

    after_seconds: Annotated[int, Field(ge=1, le=86_400)]
    level_cap: Annotated[int, Field(ge=0, le=5)]


AnnounceEvery = Annotated[int, Field(ge=10, le=600)]
ShortAbandon = Annotated[int, Field(ge=0, le=600)]
FollowUpDays = Annotated[int, Field(ge=0, le=90)]
RelaxationSteps = Annotated[
    list[RelaxationStep],
    Field(max_length=10, description="Bullseye: requirements relax as an interaction waits"),
]


class QueueCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [QUEUE_EXAMPLE]})

    name: QueueName
    description: Description = ""
    service_level: ServiceLevel = ServiceLevel()
    abandon_policy: AbandonPolicy = AbandonPolicy.against
    short_abandon_seconds: ShortAbandon = Field(
        default=5,
        description="An abandon after a shorter wait counts in neither the service level nor "
        "the abandonment rate (a wrong number, a caller who left at once; 0: every abandon "
        "counts)",
    )
    offer_timeout_seconds: Annotated[int, Field(ge=5, le=600)] = 20
    tier_weights: TierWeights = TierWeights()
    aging_factor: Annotated[float, Field(ge=0, le=1000)] = Field(
        default=0.5, description="Priority points gained per second of waiting"
    )
    wrap_up_seconds: Annotated[int, Field(ge=0, le=3600)] = 30
    relaxation_steps: RelaxationSteps = Field(default_factory=list)
    sticky_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] = Field(
        default=0, description="Prefer the customer's last agent for this long (0: never)"
    )
    follow_up_days: FollowUpDays = Field(
        default=0,
        description="A reply to a completed email thread goes first to the agent who handled "
        "it, for this many days after it ended (0: never)",
    )
    complaint_owner_first: bool = Field(
        default=False,
        description="A customer with an open complaint is offered first to the complaint's "
        "owner (while qualified and with room), ahead of the follow-up and sticky agents; of "
        "several, the owner of the complaint whose running deadline is soonest",
    )
    away_on_missed_offer: bool = Field(
        default=True, description="An agent who lets an offer time out goes away"
    )
    announce_every_seconds: AnnounceEvery = Field(
        default=60, description="How often a waiting caller hears their position and wait"
    )
    business_hours: BusinessHours | None = Field(default=None, description="null: always open")
    holidays: HolidayCalendar = Field(
        default_factory=HolidayCalendar,
        description="Days it closes: dates of its own and a country's public holidays"
        " (they need business_hours, whose time zone says when a date begins)",
    )
    required_skills: list[SkillLevel] = Field(default_factory=list, max_length=20)


class QueueUpdate(BaseModel):
    name: QueueName | None = None
    description: Description | None = None
    service_level: ServiceLevel | None = Field(
        default=None, description="Only the parts sent change; the others keep their value."
    )
    abandon_policy: AbandonPolicy | None = None
    short_abandon_seconds: ShortAbandon | None = None
    offer_timeout_seconds: Annotated[int, Field(ge=5, le=600)] | None = None
    tier_weights: TierWeights | None = Field(
        default=None, description="Only the tiers sent change; the others keep their weight."
    )
    aging_factor: Annotated[float, Field(ge=0, le=1000)] | None = None
    wrap_up_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    relaxation_steps: RelaxationSteps | None = None
    sticky_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] | None = None
    follow_up_days: FollowUpDays | None = None
    complaint_owner_first: bool | None = None
    away_on_missed_offer: bool | None = None
    announce_every_seconds: AnnounceEvery | None = None
    business_hours: BusinessHours | None = Field(default=None, description="Send null to clear")
    holidays: HolidayCalendar | None = Field(
        default=None, description="Replaces the calendar whole; send null to clear it"
    )
    required_skills: list[SkillLevel] | None = Field(default=None, max_length=20)


class QueueOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    service_level: ServiceLevel
    abandon_policy: AbandonPolicy
    short_abandon_seconds: int
    offer_timeout_seconds: int
    tier_weights: TierWeights
    aging_factor: float
    wrap_up_seconds: int
    relaxation_steps: list[RelaxationStep]
    sticky_seconds: int
    follow_up_days: int
    complaint_owner_first: bool
    away_on_missed_offer: bool
    announce_every_seconds: int
    business_hours: BusinessHours | None
    holidays: HolidayCalendar
    required_skills: list[SkillLevel]
    is_open_now: bool = Field(description="Open now: within its hours and not on a holiday")
    created_at: datetime
    updated_at: datetime


class QueueStatusOut(BaseModel):
    """Whether a queue is open at `at` (now), and when it opens next."""

    queue_id: uuid.UUID
    at: datetime
    status: QueueStatus
    holiday: str | None = Field(
        description="The holiday that closes it today (its name; empty if unnamed), or null"
    )
    next_opening: datetime | None = Field(
        description="`at` itself when open; null when it opens in none of the next 400 days"
    )

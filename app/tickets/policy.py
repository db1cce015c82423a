"""The complaint policy as the service reads it: the deadlines per severity and tier, the reopen
window, the days of silence that deem a reply accepted, how long before a deadline its owner is
warned, the queue whose calendar counts complaints that came in on none; and the calendar a
complaint's clocks count on. The default policy (deadlines.DEFAULT_POLICY) holds until an admin
saves one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.models import utcnow
from app.queues.calendar import HolidayCalendar
from app.queues.hours import BusinessHours
from app.queues.models import Queue
from app.queues.service import calendar_of, hours_of
from app.tickets.deadlines import DEFAULT_POLICY, DeadlinePolicy
from app.tickets.models import ComplaintPolicy

DEFAULT_REOPEN_DAYS, DEFAULT_ANSWER_DAYS, DEFAULT_WARN_MINUTES = 30, 10, 60


class Policy(BaseModel):
    """The policy an admin reads and saves (`GET`/`PUT /v1/complaints/policy`)."""

    model_config = ConfigDict(frozen=True)

    deadlines: DeadlinePolicy = Field(
        description="Per severity, then tier: the business time (ISO 8601 durations, e.g. "
        "`PT4H`) for accept, investigate, reply (the resolution) and improve"
    )
    reopen_days: int = Field(
        DEFAULT_REOPEN_DAYS, ge=0, le=365, description="Days after closing a complaint may reopen"
    )
    answer_days: int = Field(
        DEFAULT_ANSWER_DAYS,
        ge=1,
        le=60,
        description="Business days without the customer's answer after which a reply is "
        "deemed accepted",
    )
    warn_minutes: int = Field(
        DEFAULT_WARN_MINUTES,
        ge=1,
        le=10_080,
        description="Minutes before a deadline its owner is warned on their desk",
    )
    queue_id: uuid.UUID | None = Field(
        None,
        description="The complaints queue: its hours and holidays count the deadlines of "
        "complaints that came in on no queue (none: always open)",
    )


DEFAULT = Policy(deadlines=DEFAULT_POLICY)


async def load(session: AsyncSession) -> Policy:
    row = await session.get(ComplaintPolicy, 1)
    if row is None:
        return DEFAULT
    return Policy(
        deadlines=DeadlinePolicy.model_validate(row.durations),
        reopen_days=row.reopen_days,
        answer_days=row.answer_days,
        warn_minutes=row.warn_minutes,
        queue_id=row.queue_id,
    )


async def save(session: AsyncSession, policy: Policy, *, actor: str) -> None:
    row = await session.get(ComplaintPolicy, 1, with_for_update=True)
    if row is None:
        row = ComplaintPolicy(id=1)
        session.add(row)
    row.durations = durations_json(policy.deadlines)
    row.reopen_days = policy.reopen_days
    row.answer_days = policy.answer_days
    row.warn_minutes = policy.warn_minutes
    row.queue_id = policy.queue_id
    row.updated_at = utcnow()
    row.updated_by = actor
    await session.flush()


def durations_json(deadlines: DeadlinePolicy) -> dict[str, Any]:
    dumped: dict[str, Any] = deadlines.model_dump(mode="json")["durations"]
    return {"durations": dumped}


@dataclass(frozen=True, slots=True)
class Calendar:
    """The open time a complaint's clocks count: a queue's hours and holidays (no hours:
    always open)."""

    hours: BusinessHours | None
    holidays: HolidayCalendar


ALWAYS_OPEN = Calendar(None, HolidayCalendar())


async def calendar_for(
    session: AsyncSession, queue_id: uuid.UUID | None, policy: Policy
) -> Calendar:
    """The calendar of the complaint's queue, else of the policy's complaints queue."""
    for candidate in (queue_id, policy.queue_id):
        if candidate is None:
            continue
        queue = await session.get(Queue, candidate)
        if queue is not None:
            return Calendar(hours_of(queue), calendar_of(queue))
    return ALWAYS_OPEN

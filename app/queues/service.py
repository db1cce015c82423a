"""Queue configuration. Services flush but never commit."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidField, NotFound
from app.core.events import events_of
from app.queues.calendar import HolidayCalendar
from app.queues.hours import BusinessHours, QueueStatus, holiday_at, next_opening, status_at
from app.queues.models import Queue, QueueSkill
from app.queues.schemas import (
    QueueCreate,
    QueueOut,
    QueueStatusOut,
    QueueUpdate,
    RelaxationStep,
    ServiceLevel,
    TierWeights,
)
from app.skills import service as skills
from app.skills.models import Skill
from app.skills.schemas import SkillLevel


class QueueNotFound(NotFound):
    code = "queue_not_found"


class QueueNameTaken(Conflict):
    code = "queue_name_taken"


async def _ensure_name_free(session: AsyncSession, name: str, owner: uuid.UUID | None) -> None:
    query = select(Queue.id).where(func.lower(Queue.name) == name.lower())
    holder = (await session.execute(query)).scalar_one_or_none()
    if holder is not None and holder != owner:
        raise QueueNameTaken(f"a queue named {name!r} already exists")


def _ensure_hours_for_holidays(
    hours: BusinessHours | None, calendar: HolidayCalendar, field: str
) -> None:
    """Holidays are local dates: without hours, and so without a time zone, nobody could say
    when one begins (a UTC date would close a Shanghai queue at 08:00)."""
    if hours is None and not calendar.is_empty():
        raise InvalidField(
            field,
            "holidays need business_hours: their time zone says when a closed date begins"
            " (for a queue open around the clock, give every day 00:00-23:59:59)",
        )


async def create_queue(session: AsyncSession, data: QueueCreate, *, actor: str) -> QueueOut:
    _ensure_hours_for_holidays(data.business_hours, data.holidays, "holidays")
    await _ensure_name_free(session, data.name, owner=None)
    levels = await skills.resolve_levels(session, data.required_skills, "required_skills")
    queue = Queue(
        id=uuid.uuid4(),
        name=data.name,
        description=data.description,
        sl_target_percent=data.service_level.percent,
        sl_target_seconds=data.service_level.seconds,
        abandon_policy=data.abandon_policy,
        short_abandon_seconds=data.short_abandon_seconds,
        offer_timeout_seconds=data.offer_timeout_seconds,
        tier_weights=data.tier_weights.model_dump(),
        aging_factor=data.aging_factor,
        wrap_up_seconds=data.wrap_up_seconds,
        relaxation_steps=[step.model_dump() for step in data.relaxation_steps],
        sticky_seconds=data.sticky_seconds,
        follow_up_days=data.follow_up_days,
        complaint_owner_first=data.complaint_owner_first,
        away_on_missed_offer=data.away_on_missed_offer,
        announce_every_seconds=data.announce_every_seconds,
        business_hours=_hours_json(data.business_hours),
        holidays=data.holidays.model_dump(mode="json"),
        required_skills=[QueueSkill(skill_id=s.id, min_proficiency=lvl) for s, lvl in levels],
    )
    session.add(queue)
    await session.flush()
    events_of(session).add(
        "queue.created",
        subject_type="queue",
        subject_id=queue.id,
        actor=actor,
        payload=data.model_dump(mode="json"),
    )
    return await get_queue_view(session, queue.id)


def _hours_json(hours: BusinessHours | None) -> dict[str, Any] | None:
    return None if hours is None else hours.model_dump(mode="json")


async def get_queue(session: AsyncSession, queue_id: uuid.UUID) -> Queue:
    queue = await session.get(Queue, queue_id, populate_existing=True)
    if queue is None:
        raise QueueNotFound(f"no queue with id {queue_id}")
    return queue


async def _levels(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SkillLevel]]:
    levels: dict[uuid.UUID, list[SkillLevel]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(QueueSkill.queue_id, Skill.name, QueueSkill.min_proficiency)
            .join(Skill, Skill.id == QueueSkill.skill_id)
            .where(QueueSkill.queue_id.in_(ids))
            .order_by(Skill.name)
        )
        for queue_id, name, level in rows:
            levels[queue_id].append(SkillLevel(skill=name, level=level))
    return levels


def hours_of(queue: Queue) -> BusinessHours | None:
    if queue.business_hours is None:
        return None
    return BusinessHours.model_validate(queue.business_hours)


def calendar_of(queue: Queue) -> HolidayCalendar:
    return HolidayCalendar.model_validate(queue.holidays)


def _view(queue: Queue, levels: list[SkillLevel], now: datetime) -> QueueOut:
    hours = hours_of(queue)
    calendar = calendar_of(queue)
    return QueueOut(
        id=queue.id,
        name=queue.name,
        description=queue.description,
        service_level=ServiceLevel(
            percent=queue.sl_target_percent, seconds=queue.sl_target_seconds
        ),
        abandon_policy=queue.abandon_policy,
        short_abandon_seconds=queue.short_abandon_seconds,
        offer_timeout_seconds=queue.offer_timeout_seconds,
        tier_weights=TierWeights.model_validate(queue.tier_weights),
        aging_factor=queue.aging_factor,
        wrap_up_seconds=queue.wrap_up_seconds,
        relaxation_steps=[RelaxationStep.model_validate(s) for s in queue.relaxation_steps],
        sticky_seconds=queue.sticky_seconds,
        follow_up_days=queue.follow_up_days,
        complaint_owner_first=queue.complaint_owner_first,
        away_on_missed_offer=queue.away_on_missed_offer,
        announce_every_seconds=queue.announce_every_seconds,
        business_hours=hours,
        holidays=calendar,
        required_skills=levels,
        is_open_now=status_at(hours, calendar, now) is QueueStatus.open,
        created_at=queue.created_at,
        updated_at=queue.updated_at,
    )


async def get_queue_view(session: AsyncSession, queue_id: uuid.UUID) -> QueueOut:
    queue = await get_queue(session, queue_id)
    levels = await _levels(session, [queue.id])
    return _view(queue, levels[queue.id], datetime.now(UTC))


async def get_queue_status(
    session: AsyncSession, queue_id: uuid.UUID, moment: datetime
) -> QueueStatusOut:
    """Open, closed or on a holiday at `moment`, and the next opening (for a voicemail's
    callback, its not-before time)."""
    queue = await get_queue(session, queue_id)
    hours, calendar = hours_of(queue), calendar_of(queue)
    return QueueStatusOut(
        queue_id=queue.id,
        at=moment,
        status=status_at(hours, calendar, moment),
        holiday=holiday_at(hours, calendar, moment),
        next_opening=next_opening(hours, calendar, moment),
    )


async def list_queues(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[QueueOut], int]:
    """A page of the queues by name, and how many there are in all."""
    total = (await session.execute(select(func.count()).select_from(Queue))).scalar_one()
    page = select(Queue).order_by(Queue.name, Queue.id).limit(limit).offset(offset)
    queues = list((await session.execute(page)).scalars())
    levels = await _levels(session, [q.id for q in queues])
    now = datetime.now(UTC)
    return [_view(queue, levels[queue.id], now) for queue in queues], total


async def update_queue(
    session: AsyncSession, queue_id: uuid.UUID, data: QueueUpdate, *, actor: str
) -> QueueOut:
    queue = await get_queue(session, queue_id)
    sent = data.model_fields_set
    hours = data.business_hours if "business_hours" in sent else hours_of(queue)
    calendar = calendar_of(queue) if "holidays" not in sent else data.holidays or HolidayCalendar()
    _ensure_hours_for_holidays(
        hours, calendar, "holidays" if "holidays" in sent else "business_hours"
    )
    if data.name is not None:
        await _ensure_name_free(session, data.name, owner=queue.id)
        queue.name = data.name
    if data.required_skills is not None:
        levels = await skills.resolve_levels(session, data.required_skills, "required_skills")
        await session.execute(delete(QueueSkill).where(QueueSkill.queue_id == queue.id))
        session.add_all(
            QueueSkill(queue_id=queue.id, skill_id=s.id, min_proficiency=lvl) for s, lvl in levels
        )
    _apply_settings(queue, data)
    if "business_hours" in sent:
        queue.business_hours = _hours_json(data.business_hours)
    if "holidays" in sent:
        queue.holidays = calendar.model_dump(mode="json")
    await session.flush()
    events_of(session).add(
        "queue.updated",
        subject_type="queue",
        subject_id=queue.id,
        actor=actor,
        payload=data.model_dump(mode="json", exclude_unset=True),
    )
    return await get_queue_view(session, queue.id)


def _apply_settings(queue: Queue, data: QueueUpdate) -> None:
    """Only what was sent changes, down into service_level and tier_weights."""
    if data.description is not None:
        queue.description = data.description
    if data.service_level is not None:
        sent_level = data.service_level.model_fields_set
        if "percent" in sent_level:
            queue.sl_target_percent = data.service_level.percent
        if "seconds" in sent_level:
            queue.sl_target_seconds = data.service_level.seconds
    if data.abandon_policy is not None:
        queue.abandon_policy = data.abandon_policy
    if data.short_abandon_seconds is not None:
        queue.short_abandon_seconds = data.short_abandon_seconds
    if data.offer_timeout_seconds is not None:
        queue.offer_timeout_seconds = data.offer_timeout_seconds
    if data.tier_weights is not None:
        sent_weights = data.tier_weights.model_dump(exclude_unset=True)
        queue.tier_weights = {**queue.tier_weights, **sent_weights}
    if data.aging_factor is not None:
        queue.aging_factor = data.aging_factor
    if data.wrap_up_seconds is not None:
        queue.wrap_up_seconds = data.wrap_up_seconds
    if data.relaxation_steps is not None:
        queue.relaxation_steps = [step.model_dump() for step in data.relaxation_steps]
    if data.sticky_seconds is not None:
        queue.sticky_seconds = data.sticky_seconds
    if data.follow_up_days is not None:
        queue.follow_up_days = data.follow_up_days
    if data.complaint_owner_first is not None:
        queue.complaint_owner_first = data.complaint_owner_first
    if data.away_on_missed_offer is not None:
        queue.away_on_missed_offer = data.away_on_missed_offer
    if data.announce_every_seconds is not None:
        queue.announce_every_seconds = data.announce_every_seconds


async def delete_queue(session: AsyncSession, queue_id: uuid.UUID, *, actor: str) -> None:
    queue = await get_queue(session, queue_id)
    await session.delete(queue)
    await session.flush()
    events_of(session).add(
        "queue.deleted",
        subject_type="queue",
        subject_id=queue.id,
        actor=actor,
        payload={"name": queue.name},
    )

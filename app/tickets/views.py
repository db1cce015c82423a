"""Complaints as the API shows them: one with its deadlines, notes, links and corrective
actions; lists; the timeline (the event log's entries for it, oldest first)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.events import Event
from app.tickets.acts import SUBJECT, Who
from app.tickets.models import (
    Complaint,
    ComplaintDeadline,
    ComplaintInteraction,
    ComplaintNote,
    CorrectiveAction,
)
from app.tickets.schemas import (
    ComplaintOut,
    ComplaintSummary,
    CorrectiveActionOut,
    DeadlineOut,
    NoteOut,
    TimelineEntry,
)
from app.tickets.workflow import ENDINGS, Actor, Step


async def complaint_out(session: AsyncSession, complaint: Complaint) -> ComplaintOut:
    deadlines = await session.scalars(
        select(ComplaintDeadline)
        .where(ComplaintDeadline.complaint_id == complaint.id)
        .order_by(ComplaintDeadline.id)
    )
    notes = await session.scalars(
        select(ComplaintNote)
        .where(ComplaintNote.complaint_id == complaint.id)
        .order_by(ComplaintNote.created_at, ComplaintNote.id)
    )
    actions = await session.scalars(
        select(CorrectiveAction)
        .where(CorrectiveAction.complaint_id == complaint.id)
        .order_by(CorrectiveAction.created_at)
    )
    linked = await session.scalars(
        select(ComplaintInteraction.interaction_id)
        .where(ComplaintInteraction.complaint_id == complaint.id)
        .order_by(ComplaintInteraction.linked_at)
    )
    return ComplaintOut.model_validate(
        {
            **{column: getattr(complaint, column) for column in _COLUMNS},
            "step_number": Step(complaint.step).number,
            "interaction_ids": list(linked),
            "deadlines": [_deadline(row) for row in deadlines],
            "notes": [NoteOut.model_validate(row) for row in notes],
            "corrective_actions": [CorrectiveActionOut.model_validate(row) for row in actions],
        }
    )


_COLUMNS = [
    name
    for name in ComplaintOut.model_fields
    if name not in {"step_number", "interaction_ids", "deadlines", "notes", "corrective_actions"}
]


def _deadline(row: ComplaintDeadline) -> DeadlineOut:
    met = None if row.ended_at is None else row.ended_at <= row.due_at
    return DeadlineOut.model_validate(
        {
            "clock": row.clock,
            "started_at": row.started_at,
            "due_at": row.due_at,
            "paused_since": row.paused_since,
            "ended_at": row.ended_at,
            "warned_at": row.warned_at,
            "escalated_at": row.escalated_at,
            "met": met,
        }
    )


@dataclass(frozen=True, slots=True)
class ComplaintFilter:
    step: Step | None = None
    open_only: bool = False
    overdue: bool | None = None
    customer_id: uuid.UUID | None = None
    owner_agent_id: uuid.UUID | None = None
    raised_from: datetime | None = None
    raised_to: datetime | None = None


# The soonest running deadline of each complaint.
_DUE = (
    select(func.min(ComplaintDeadline.due_at))
    .where(
        ComplaintDeadline.complaint_id == Complaint.id,
        ComplaintDeadline.ended_at.is_(None),
        ComplaintDeadline.paused_since.is_(None),
    )
    .scalar_subquery()
)


async def list_complaints(
    session: AsyncSession, where: ComplaintFilter, who: Who, *, limit: int, offset: int
) -> tuple[list[ComplaintSummary], int]:
    """Newest first; an agent's list holds the complaints it owns or raised."""
    conditions = _conditions(where, who)
    query = select(Complaint, _DUE.label("due_at")).where(*conditions)
    total = await session.scalar(select(func.count(Complaint.id)).where(*conditions))
    rows = await session.execute(
        query.order_by(Complaint.raised_at.desc(), Complaint.id).limit(limit).offset(offset)
    )
    items = [
        ComplaintSummary.model_validate(
            {
                **{name: getattr(complaint, name) for name in _SUMMARY_COLUMNS},
                "due_at": due_at,
            }
        )
        for complaint, due_at in rows.all()
    ]
    return items, total or 0


_SUMMARY_COLUMNS = [name for name in ComplaintSummary.model_fields if name != "due_at"]


def _conditions(where: ComplaintFilter, who: Who) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.step is not None:
        conditions.append(Complaint.step == where.step.value)
    if where.open_only:
        conditions.append(Complaint.step.not_in([step.value for step in ENDINGS]))
    if where.overdue is not None:
        conditions.append(Complaint.overdue.is_(where.overdue))
    if where.customer_id is not None:
        conditions.append(Complaint.customer_id == where.customer_id)
    if where.owner_agent_id is not None:
        conditions.append(Complaint.owner_agent_id == where.owner_agent_id)
    if where.raised_from is not None:
        conditions.append(Complaint.raised_at >= where.raised_from)
    if where.raised_to is not None:
        conditions.append(Complaint.raised_at < where.raised_to)
    if who.kind is Actor.agent:
        conditions.append(
            (Complaint.owner_agent_id == who.agent_id) | (Complaint.raised_by == who.actor)
        )
    return conditions


async def timeline(
    session: AsyncSession, complaint: Complaint, *, limit: int, offset: int
) -> tuple[list[TimelineEntry], int]:
    """Oldest first, a page at a time (the events' subject index)."""
    of_it = (Event.subject_type == SUBJECT, Event.subject_id == str(complaint.id))
    total = await session.scalar(select(func.count()).where(*of_it))
    rows = await session.scalars(
        select(Event).where(*of_it).order_by(Event.id).limit(limit).offset(offset)
    )
    items = [
        TimelineEntry(
            id=row.id,
            occurred_at=row.occurred_at,
            kind=row.kind,
            actor=row.actor,
            payload=row.payload,
        )
        for row in rows
    ]
    return items, total or 0

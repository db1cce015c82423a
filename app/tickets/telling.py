"""What the customer is told as their complaint moves: step 2's acknowledgement (or the text
kept for the agent to read out), a rejection's reason, step 4's reply with its answer link; on
the newest interaction about the complaint that carries writing (`acts.CustomerNotices`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions.models import Interaction
from app.tickets import clocks, customer_texts, links
from app.tickets import policy as policies
from app.tickets.acts import Context, Who
from app.tickets.deadlines import add_business_days
from app.tickets.models import Complaint, ComplaintInteraction
from app.tickets.workflow import Action


async def tell_customer(
    session: AsyncSession,
    complaint: Complaint,
    action: Action,
    who: Who,
    context: Context,
    policy: policies.Policy,
    calendar: policies.Calendar,
) -> dict[str, Any]:
    """Step 2's acknowledgement, a rejection, step 4's reply with its answer link. Answers
    what the event should say of it."""
    match action:
        case Action.complete_intake:
            return await _acknowledge(session, complaint, who, context, calendar)
        case Action.reject:
            text = customer_texts.rejection(complaint.reference, complaint.rejected_reason)
            return {"told": await _tell(session, complaint, text, who, context)}
        case Action.send_reply:
            return await _send_reply(session, complaint, who, context, policy, calendar)
    return {}


async def _acknowledge(
    session: AsyncSession,
    complaint: Complaint,
    who: Who,
    context: Context,
    calendar: policies.Calendar,
) -> dict[str, Any]:
    """Sent on the customer's channel when it carries writing; else kept for the agent to read
    out (`acknowledgement_said` records that it was)."""
    running = await clocks.running(session, complaint.id)
    due = min(clock.due_at for clock in running)
    complaint.acknowledgement = customer_texts.acknowledgement(
        complaint.reference, complaint.summary, due, calendar
    )
    how = await _tell(session, complaint, complaint.acknowledgement, who, context)
    if how is not None:
        complaint.acknowledged_by, complaint.acknowledged_at = how, context.now
    return {"acknowledged_by": how or "to_read_out"}


async def _send_reply(
    session: AsyncSession,
    complaint: Complaint,
    who: Who,
    context: Context,
    policy: policies.Policy,
    calendar: policies.Calendar,
) -> dict[str, Any]:
    answer_by = add_business_days(
        context.now, policy.answer_days, calendar.hours, calendar.holidays
    )
    complaint.answer_due_at = answer_by
    token = await links.issue(session, complaint.id, now=context.now, expires_at=answer_by)
    text = customer_texts.reply(
        complaint.reference,
        complaint.reply,
        links.url(context.link_base, token),
        answer_by,
        calendar,
    )
    how = await _tell(session, complaint, text, who, context)
    return {"told": how or "to_read_out", "answer_due_at": answer_by.isoformat()}


async def _tell(
    session: AsyncSession, complaint: Complaint, text: str, who: Who, context: Context
) -> str | None:
    """On the newest interaction about the complaint that carries writing; None: none does."""
    subject = customer_texts.subject(complaint.reference, complaint.summary)
    for interaction_id in await _interactions_newest_first(session, complaint.id):
        how = await context.notices(session, interaction_id, text, subject=subject, actor=who.actor)
        if how is not None:
            return how
    return None


async def _interactions_newest_first(
    session: AsyncSession, complaint_id: uuid.UUID
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(ComplaintInteraction.interaction_id)
        .join(Interaction, Interaction.id == ComplaintInteraction.interaction_id)
        .where(ComplaintInteraction.complaint_id == complaint_id)
        .order_by(Interaction.created_at.desc())
    )
    return list(rows)

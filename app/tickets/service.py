"""Complaints: raise one, take an action on it. The workflow (app/tickets/workflow.py,
`decide`) says whether an action may be taken and where it leads; this carries it out: the
records, the visits and clocks (clocks.py), what the customer is told (telling.py, through the
channels main hands over as `acts.CustomerNotices`), and an event for every change, with its
actor, in the change's transaction (acts.record). The records kept between actions (notes,
links, corrective actions) are work.py's. Nothing here commits.

Every function takes `now`: the API passes the time of the request, the deadline sweep its own
clock, and the tests whatever moment they need (evenings, weekends, holidays).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError, Forbidden, InvalidField
from app.customers.models import Customer
from app.interactions.models import Interaction, InteractionState
from app.tickets import clocks, references, telling, work
from app.tickets import policy as policies
from app.tickets.acts import (
    ASSIGNED,
    MOVED,
    ComplaintNotFound,
    Context,
    RecordsMissing,
    StepRefused,
    Who,
    owns,
    raised_it,
    record,
    text_of,
)
from app.tickets.models import (
    SUMMARY_LENGTH,
    TEXT_LENGTH,
    Complaint,
    ComplaintChannel,
    ComplaintInteraction,
    ComplaintNote,
    CorrectiveAction,
)
from app.tickets.schemas import ActionRecords, ComplaintRaise
from app.tickets.workflow import Action, Actor, Attempt, Move, Step, Why, decide

# --- finding ------------------------------------------------------------------------------------


async def find(session: AsyncSession, key: str, *, lock: bool = False) -> Complaint:
    """The complaint of an id or a reference (as a customer says it: `c 2026 4217`)."""
    query = select(Complaint)
    try:
        query = query.where(Complaint.id == uuid.UUID(key))
    except ValueError:
        reference = references.parse(key)
        if reference is None:
            raise ComplaintNotFound(
                f"{key[:40]!r} is neither a complaint's id nor a reference like C-2026-004217"
            ) from None
        query = query.where(Complaint.reference == reference)
    if lock:
        query = query.with_for_update()
    complaint = await session.scalar(query)
    if complaint is None:
        raise ComplaintNotFound(f"no complaint {key[:40]!r}")
    return complaint


async def ensure_visible(session: AsyncSession, complaint: Complaint, who: Who) -> None:
    """Supervisors see every complaint; an agent those it owns or raised, and one nobody owns
    yet that is about an interaction it holds (the customer raised it: see `claim`)."""
    if who.kind is not Actor.agent or owns(complaint, who) or raised_it(complaint, who):
        return
    if complaint.owner_agent_id is None and await _holds_one_about(session, complaint, who):
        return
    raise Forbidden("an agent sees only the complaints it owns or raised")


async def claim(session: AsyncSession, complaint: Complaint, who: Who) -> None:
    """A complaint the customer raised (by mail, in the IVR) has no owner until an agent works
    on it: the agent holding an interaction about it takes it, and the log says so."""
    if complaint.owner_agent_id is not None or who.kind is not Actor.agent:
        return
    if await _holds_one_about(session, complaint, who):
        complaint.owner_agent_id = who.agent_id
        await clocks.warn_the_new_owner(session, complaint.id)
        record(
            session,
            complaint,
            ASSIGNED,
            who,
            {"action": "claim", "owner_agent_id": text_of(who.agent_id)},
        )


async def _holds_one_about(session: AsyncSession, complaint: Complaint, who: Who) -> bool:
    held = await session.scalar(
        select(ComplaintInteraction.interaction_id)
        .join(Interaction, Interaction.id == ComplaintInteraction.interaction_id)
        .where(
            ComplaintInteraction.complaint_id == complaint.id,
            Interaction.agent_id == who.agent_id,
            Interaction.state.in_(HELD),
        )
        .limit(1)
    )
    return held is not None


# An interaction an agent has in hand: talking, writing, or wrapping it up.
HELD = (InteractionState.assigned, InteractionState.wrap_up)


# --- raising ------------------------------------------------------------------------------------


async def raise_complaint(
    session: AsyncSession, data: ComplaintRaise, who: Who, context: Context
) -> Complaint:
    """A new complaint at step 1, linked to its interaction; with its remedy sought it leaves
    step 1 at once (complete_intake: step 1's records are the raise itself)."""
    source = await _source(session, data, who)
    customer_id = source.customer_id if source is not None else data.customer_id
    if customer_id is None:
        raise InvalidField(
            "customer_id", "a complaint raised from no interaction names its customer"
        )
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise InvalidField("customer_id", f"no customer {customer_id}")
    owner = who.agent_id if who.kind is Actor.agent else data.owner_agent_id
    if owner is not None:
        await work.ensure_agent(session, owner, "owner_agent_id")
    complaint = Complaint(
        id=uuid.uuid4(),
        reference=await references.next_reference(session, context.now.year),
        customer_id=customer.id,
        queue_id=source.queue_id if source is not None else data.queue_id,
        channel=_channel(source, data),
        source_interaction_id=source.id if source is not None else None,
        raised_by=who.actor,
        raised_at=context.now,
        step=Step.intake.value,
        owner_agent_id=owner,
        severity=data.severity.value,
        tier=customer.tier.value,
        summary=data.summary,
        original_message=data.original_message,
        remedy_sought=data.remedy_sought,
    )
    session.add(complaint)
    await session.flush()
    if source is not None:
        await work.link(session, complaint, source.id, who, context.now)
    await clocks.enter(session, complaint, Step.intake, context.now)
    record(session, complaint, "complaint.raised", who, _raised_payload(complaint))
    if data.remedy_sought.strip():
        await act(session, complaint, Action.complete_intake, ActionRecords(), who, context)
    return complaint


async def raised_by_the_customer(
    session: AsyncSession, interaction: Interaction, summary: str, text: str, now: datetime
) -> Complaint | None:
    """The complaint a customer raises through a channel (a mail to the complaints address, the
    IVR's complaints option): at step 1 in their words, for an agent to complete. Once per
    interaction: a channel that delivers again (a mail server's retry, a gateway's) raises
    none more (None)."""
    raised = await session.scalar(
        select(Complaint.id).where(Complaint.source_interaction_id == interaction.id).limit(1)
    )
    if raised is not None:
        return None
    body = ComplaintRaise(
        interaction_id=interaction.id,
        summary=summary.strip()[:SUMMARY_LENGTH] or UNTITLED,
        original_message=text.strip()[:TEXT_LENGTH] or summary.strip()[:TEXT_LENGTH] or UNTITLED,
    )
    who = Who(Actor.customer, f"customer:{interaction.customer_id}")
    return await raise_complaint(session, body, who, Context(now, _tells_nothing, link_base=""))


UNTITLED = "(no subject)"


async def _tells_nothing(
    session: AsyncSession, interaction_id: uuid.UUID, text: str, *, subject: str, actor: str
) -> str | None:
    """A complaint raised without its remedy stays at step 1 and tells the customer nothing
    (the acknowledgement is step 2's): channels raising one need no way to write."""
    raise AssertionError("a complaint at step 1 tells the customer nothing")


async def _source(session: AsyncSession, data: ComplaintRaise, who: Who) -> Interaction | None:
    if data.interaction_id is None:
        if who.kind is Actor.agent:
            raise InvalidField(
                "interaction_id", "an agent raises a complaint from an interaction it handles"
            )
        return None
    interaction = await session.get(Interaction, data.interaction_id)
    if interaction is None:
        raise InvalidField("interaction_id", f"no interaction {data.interaction_id}")
    if who.kind is Actor.agent and interaction.agent_id != who.agent_id:
        raise Forbidden("an agent raises complaints from the interactions it holds or held last")
    if data.customer_id is not None and data.customer_id != interaction.customer_id:
        raise InvalidField("customer_id", "the interaction is another customer's")
    return interaction


def _channel(source: Interaction | None, data: ComplaintRaise) -> str:
    if source is not None:
        return source.channel.value
    return (data.channel or ComplaintChannel.other).value


def _raised_payload(complaint: Complaint) -> dict[str, Any]:
    return {
        "reference": complaint.reference,
        "customer_id": str(complaint.customer_id),
        "channel": complaint.channel,
        "interaction_id": text_of(complaint.source_interaction_id),
        "severity": complaint.severity,
        "tier": complaint.tier,
        "owner_agent_id": text_of(complaint.owner_agent_id),
        "summary": complaint.summary,
    }


# --- actions ------------------------------------------------------------------------------------


async def act(
    session: AsyncSession,
    complaint: Complaint,
    action: Action,
    records: ActionRecords,
    who: Who,
    context: Context,
) -> Complaint:
    """Take `action` (the workflow's `decide` first: refused with what is wrong), then keep its
    records, move the visits and clocks, tell the customer what the step tells them."""
    policy = await policies.load(session)
    outcome = decide(
        Attempt(
            step=Step(complaint.step),
            action=action,
            actor=who.kind,
            records=await _records_for(session, complaint, action, records, policy),
            owns=owns(complaint, who),
            reopen_window_open=_may_reopen(complaint, policy, context.now),
        )
    )
    if not isinstance(outcome, Move):
        raise _refusal(outcome.reason, outcome.why, outcome.missing)
    await _check_references(session, action, records)
    calendar = await policies.calendar_for(session, complaint.queue_id, policy)
    before, owner_before = Step(complaint.step), complaint.owner_agent_id
    _keep(complaint, action, records, policy, context.now)
    if complaint.owner_agent_id != owner_before:
        await clocks.warn_the_new_owner(session, complaint.id)
    if outcome.to is not before:
        complaint.step = outcome.to.value
        await clocks.enter(session, complaint, outcome.to, context.now)
    await clocks.Clocks(session, complaint, policy, calendar, context.now).move(action)
    told = await telling.tell_customer(session, complaint, action, who, context, policy, calendar)
    if action is Action.close and records.corrective_action:
        await work.add_corrective_action(
            session,
            complaint,
            records.corrective_action,
            records.action_owner or "",
            records.action_due_on,
            who,
            context.now,
        )
    await session.flush()
    await refresh_overdue(session, complaint, context.now)
    record(
        session,
        complaint,
        MOVED if action is not Action.assign else ASSIGNED,
        who,
        {
            "action": action.value,
            "from": before.value,
            "to": outcome.to.value,
            "records": records.model_dump(mode="json", exclude_none=True),
            **told,
        },
    )
    return complaint


def _refusal(reason: str, why: Why, missing: tuple[str, ...]) -> AppError:
    match why:
        case Why.actor | Why.owner:
            return Forbidden(reason)
        case Why.records:
            problems = [{"field": name, "problem": "needed"} for name in missing]
            return RecordsMissing(reason, fields=problems)
        case _:
            return StepRefused(reason)


async def _records_for(
    session: AsyncSession,
    complaint: Complaint,
    action: Action,
    body: ActionRecords,
    policy: policies.Policy,
) -> dict[str, object]:
    """The records `decide` checks: what the request brings, over what the complaint keeps."""
    kept = {
        "channel": complaint.channel,
        "original_message": complaint.original_message,
        "customer": complaint.customer_id,
        "remedy_sought": complaint.remedy_sought,
        "acknowledged_at": complaint.acknowledged_at,
        "acknowledgement": complaint.acknowledgement if complaint.acknowledged_at else None,
        "category": complaint.category_id,
        "severity": complaint.severity,
        "assessment": complaint.assessment,
        "owner": complaint.owner_agent_id,
        "notes": await _notes_kept(session, complaint.id) or None,
        "root_cause": complaint.root_cause_id,
        "deemed_after_days": policy.answer_days,
    }
    kept.update(await _corrective_kept(session, complaint.id))
    brought = {
        "remedy_sought": body.remedy_sought,
        "category": body.category_id,
        "severity": body.severity,
        "reason": body.reason,
        "owner": body.owner_agent_id if action is Action.assign else None,
        "assessment": body.assessment,
        "reply": body.reply,
        "actions_taken": body.actions_taken,
        "answer": body.answer,
        "satisfaction": body.satisfaction,
        "root_cause": body.root_cause_id,
        "corrective_action": body.corrective_action,
        "action_owner": body.action_owner,
    }
    return kept | {name: value for name, value in brought.items() if value is not None}


async def _notes_kept(session: AsyncSession, complaint_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).where(ComplaintNote.complaint_id == complaint_id)
    )
    return count or 0


async def _corrective_kept(session: AsyncSession, complaint_id: uuid.UUID) -> dict[str, object]:
    first = await session.scalar(
        select(CorrectiveAction)
        .where(CorrectiveAction.complaint_id == complaint_id)
        .order_by(CorrectiveAction.created_at)
        .limit(1)
    )
    if first is None:
        return {}
    return {"corrective_action": first.action, "action_owner": first.owner}


def _may_reopen(complaint: Complaint, policy: policies.Policy, now: datetime) -> bool:
    closed = complaint.closed_at
    return closed is not None and now - closed <= timedelta(days=policy.reopen_days)


async def _check_references(session: AsyncSession, action: Action, body: ActionRecords) -> None:
    """The ids a request names exist and fit: an agent, a category of the right kind."""
    if action is Action.assign and body.owner_agent_id is not None:
        await work.ensure_agent(session, body.owner_agent_id, "owner_agent_id")
    if body.category_id is not None:
        await work.ensure_category(session, body.category_id, "complaint", "category_id")
    if body.root_cause_id is not None:
        await work.ensure_category(session, body.root_cause_id, "root_cause", "root_cause_id")


def _keep(
    complaint: Complaint,
    action: Action,
    body: ActionRecords,
    policy: policies.Policy,
    now: datetime,
) -> None:
    """The action's records onto the complaint (what the workflow checked)."""
    for name in ("remedy_sought", "assessment", "category_id", "root_cause_id"):
        if (value := getattr(body, name)) is not None:
            setattr(complaint, name, value)
    if body.severity is not None:
        complaint.severity = body.severity.value
    match action:
        case Action.reject:
            complaint.rejected_reason = body.reason or ""
        case Action.assign:
            complaint.owner_agent_id = body.owner_agent_id
        case Action.send_reply:
            complaint.reply = body.reply or ""
            complaint.actions_taken = body.actions_taken or ""
            complaint.replied_at = now
            complaint.answer, complaint.accepted, complaint.satisfaction = "", None, None
            complaint.answered_at = None
        case Action.customer_accepts | Action.customer_rejects:
            complaint.answer = body.answer or ""
            complaint.accepted = action is Action.customer_accepts
            complaint.satisfaction = body.satisfaction
            complaint.answered_at = now
            complaint.answer_due_at = None
        case Action.deemed_accepted:
            complaint.accepted, complaint.answered_at, complaint.answer_due_at = True, now, None
        case Action.close:
            complaint.closed_at = now
        case Action.reopen:
            complaint.closed_at = None


# --- deadlines ----------------------------------------------------------------------------------


async def refresh_overdue(session: AsyncSession, complaint: Complaint, now: datetime) -> None:
    """Overdue while a running clock is past its deadline."""
    complaint.overdue = any(
        clock.paused_since is None and clock.due_at < now
        for clock in await clocks.running(session, complaint.id)
    )

"""Complaints: raise one, take an action on it, keep its records. The workflow
(app/tickets/workflow.py, `decide`) says whether an action may be taken and where it leads; this
carries it out: the records, the visits and clocks (clocks.py), what the customer is told
(customer_texts.py, through the channels main hands over as `CustomerNotices`), and an event
for every change, with its actor, in the change's transaction. Nothing here commits.

Every function takes `now`: the API passes the time of the request, the deadline sweep its own
clock, and the tests whatever moment they need (evenings, weekends, holidays).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.core.errors import AppError, Conflict, Forbidden, InvalidField, NotFound
from app.core.events import events_of
from app.customers.models import Customer
from app.interactions.models import Interaction, InteractionState
from app.tickets import clocks, customer_texts, links, references
from app.tickets import policy as policies
from app.tickets.deadlines import add_business_days
from app.tickets.models import (
    SUMMARY_LENGTH,
    TEXT_LENGTH,
    Complaint,
    ComplaintCategory,
    ComplaintChannel,
    ComplaintInteraction,
    ComplaintNote,
    CorrectiveAction,
)
from app.tickets.schemas import ActionRecords, ComplaintRaise
from app.tickets.workflow import ENDINGS, Action, Actor, Attempt, Move, Step, Why, decide

SUBJECT = "complaint"
MOVED, ASSIGNED = "complaint.moved", "complaint.assigned"


class ComplaintNotFound(NotFound):
    code = "complaint_not_found"


class StepRefused(Conflict):
    code = "complaint_step"


class RecordsMissing(AppError):
    status_code = 422
    code = "complaint_records_missing"


@dataclass(frozen=True, slots=True)
class Who:
    """Who acts: the workflow's kind of actor, the event log's name for them, and their agent
    (an agent's own complaints are those it owns)."""

    kind: Actor
    actor: str
    agent_id: uuid.UUID | None = None


SYSTEM = Who(Actor.system, "system")


class CustomerNotices(Protocol):
    """Tells the customer on the channel of one of their interactions: a mail on its thread, a
    line in its open chat. Answers how ("mail", "chat"), or None when that interaction cannot
    carry it (a call; a chat that has ended). Main hands over app/channels/notices.py."""

    async def __call__(
        self,
        session: AsyncSession,
        interaction_id: uuid.UUID,
        text: str,
        *,
        subject: str,
        actor: str,
    ) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What a change needs beyond the complaint: the time, the channels, the answer page's
    base URL (for the reply's link)."""

    now: datetime
    notices: CustomerNotices
    link_base: str


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
    if who.kind is not Actor.agent or _owns(complaint, who) or _raised(complaint, who):
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
        _record(
            session,
            complaint,
            ASSIGNED,
            who,
            {"action": "claim", "owner_agent_id": _str(who.agent_id)},
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


def _owns(complaint: Complaint, who: Who) -> bool:
    return who.agent_id is not None and complaint.owner_agent_id == who.agent_id


def _raised(complaint: Complaint, who: Who) -> bool:
    return complaint.raised_by == who.actor


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
        await _ensure_agent(session, owner, "owner_agent_id")
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
        await _link(session, complaint, source.id, who, context.now)
    await clocks.enter(session, complaint, Step.intake, context.now)
    _record(session, complaint, "complaint.raised", who, _raised_payload(complaint))
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
        "interaction_id": _str(complaint.source_interaction_id),
        "severity": complaint.severity,
        "tier": complaint.tier,
        "owner_agent_id": _str(complaint.owner_agent_id),
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
            owns=_owns(complaint, who),
            reopen_window_open=_may_reopen(complaint, policy, context.now),
        )
    )
    if not isinstance(outcome, Move):
        raise _refusal(outcome.reason, outcome.why, outcome.missing)
    await _check_references(session, action, records)
    calendar = await policies.calendar_for(session, complaint.queue_id, policy)
    before = Step(complaint.step)
    _keep(complaint, action, records, policy, context.now)
    if outcome.to is not before:
        complaint.step = outcome.to.value
        await clocks.enter(session, complaint, outcome.to, context.now)
    await clocks.Clocks(session, complaint, policy, calendar, context.now).move(action)
    told = await _tell_customer(session, complaint, action, records, who, context, policy, calendar)
    await session.flush()
    await refresh_overdue(session, complaint, context.now)
    _record(
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
        await _ensure_agent(session, body.owner_agent_id, "owner_agent_id")
    if body.category_id is not None:
        await ensure_category(session, body.category_id, "complaint", "category_id")
    if body.root_cause_id is not None:
        await ensure_category(session, body.root_cause_id, "root_cause", "root_cause_id")


async def _ensure_agent(session: AsyncSession, agent_id: uuid.UUID, field: str) -> None:
    if await session.get(Agent, agent_id) is None:
        raise InvalidField(field, f"no agent {agent_id}")


async def ensure_category(
    session: AsyncSession, category_id: uuid.UUID, kind: str, field: str
) -> None:
    category = await session.get(ComplaintCategory, category_id)
    if category is None or category.kind != kind:
        raise InvalidField(field, f"no {kind.replace('_', ' ')} category {category_id}")
    if not category.active:
        raise InvalidField(field, f"the category {category.name!r} is retired")


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


# --- what the customer is told -------------------------------------------------------------------


async def _tell_customer(
    session: AsyncSession,
    complaint: Complaint,
    action: Action,
    body: ActionRecords,
    who: Who,
    context: Context,
    policy: policies.Policy,
    calendar: policies.Calendar,
) -> dict[str, Any]:
    """Step 2's acknowledgement, a rejection, step 4's reply with its answer link; and the
    corrective action a close brings. Answers what the event should say of it."""
    match action:
        case Action.complete_intake:
            return await _acknowledge(session, complaint, who, context, calendar)
        case Action.reject:
            text = customer_texts.rejection(complaint.reference, complaint.rejected_reason)
            return {"told": await _tell(session, complaint, text, who, context)}
        case Action.send_reply:
            return await _send_reply(session, complaint, who, context, policy, calendar)
        case Action.close if body.corrective_action:
            await add_corrective_action(
                session,
                complaint,
                body.corrective_action,
                body.action_owner or "",
                body.action_due_on,
                who,
                context.now,
            )
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


# --- records, notes, links, corrective actions --------------------------------------------------

# The records kept ahead of the action that needs them, by the step they belong to.
RECORDS_AT: dict[Step, frozenset[str]] = {
    Step.intake: frozenset({"summary", "original_message", "remedy_sought", "severity"}),
    Step.accept: frozenset({"category_id", "severity"}),
    Step.investigate: frozenset({"assessment"}),
}


async def keep_records(
    session: AsyncSession, complaint: Complaint, changes: dict[str, Any], who: Who
) -> None:
    """Records of the step the complaint is at (a category chosen before confirming, an
    assessment written as the investigation goes). The event keeps what each was before: the
    history shows every correction."""
    ensure_may_work(complaint, who)
    allowed = RECORDS_AT.get(Step(complaint.step), frozenset())
    for name in changes:
        if name not in allowed:
            raise StepRefused(f"{name} is not kept at {complaint.step}")
    if "category_id" in changes:
        await ensure_category(session, changes["category_id"], "complaint", "category_id")
    before = {name: _json(getattr(complaint, name)) for name in changes}
    for name, value in changes.items():
        setattr(complaint, name, value.value if isinstance(value, enum.Enum) else value)
    after = {name: _json(getattr(complaint, name)) for name in changes}
    _record(session, complaint, "complaint.recorded", who, {"before": before, "after": after})


def _json(value: object) -> object:
    return str(value) if isinstance(value, uuid.UUID) else value


async def acknowledgement_said(
    session: AsyncSession, complaint: Complaint, who: Who, now: datetime
) -> None:
    """The agent read the acknowledgement out (a call): step 2 may now be confirmed."""
    ensure_may_work(complaint, who)
    if Step(complaint.step) is not Step.accept:
        raise StepRefused(f"the acknowledgement is given at accept, not at {complaint.step}")
    if complaint.acknowledged_at is not None:
        raise StepRefused(f"the acknowledgement was given already ({complaint.acknowledged_by})")
    complaint.acknowledged_by, complaint.acknowledged_at = "read_out", now
    _record(session, complaint, "complaint.acknowledged", who, {"acknowledged_by": "read_out"})


def ensure_may_work(complaint: Complaint, who: Who) -> None:
    """Agents work the steps of the complaints they own; supervisors any (the customer and the
    system only through their actions)."""
    if who.kind is Actor.supervisor:
        return
    if who.kind is not Actor.agent or not _owns(complaint, who):
        raise Forbidden("only the complaint's owner (or a supervisor) works on it")
    if Step(complaint.step) in ENDINGS:
        raise StepRefused(f"the complaint is {complaint.step}: a supervisor may reopen it")


async def add_note(
    session: AsyncSession,
    complaint: Complaint,
    text: str,
    evidence: list[str],
    who: Who,
    now: datetime,
) -> ComplaintNote:
    ensure_may_work(complaint, who)
    note = ComplaintNote(
        complaint_id=complaint.id, author=who.actor, text=text, evidence=evidence, created_at=now
    )
    session.add(note)
    await session.flush()
    _record(
        session,
        complaint,
        "complaint.noted",
        who,
        {"note_id": str(note.id), "text": text, "evidence": evidence},
    )
    return note


async def link_interaction(
    session: AsyncSession, complaint: Complaint, interaction_id: uuid.UUID, who: Who, now: datetime
) -> None:
    """Another interaction about the complaint (the customer called again); the same one twice
    is one link. It must be the complaint's customer's."""
    interaction = await session.get(Interaction, interaction_id)
    if interaction is None:
        raise InvalidField("interaction_id", f"no interaction {interaction_id}")
    if interaction.customer_id != complaint.customer_id:
        raise InvalidField("interaction_id", "the interaction is another customer's")
    if who.kind is Actor.agent and not (
        _owns(complaint, who) or interaction.agent_id == who.agent_id
    ):
        raise Forbidden("an agent links interactions it holds, or to complaints it owns")
    if await _link(session, complaint, interaction_id, who, now):
        _record(
            session, complaint, "complaint.linked", who, {"interaction_id": str(interaction_id)}
        )


async def _link(
    session: AsyncSession, complaint: Complaint, interaction_id: uuid.UUID, who: Who, now: datetime
) -> bool:
    exists = await session.get(ComplaintInteraction, (complaint.id, interaction_id))
    if exists is not None:
        return False
    session.add(
        ComplaintInteraction(
            complaint_id=complaint.id,
            interaction_id=interaction_id,
            linked_at=now,
            linked_by=who.actor,
        )
    )
    await session.flush()
    return True


async def add_corrective_action(
    session: AsyncSession,
    complaint: Complaint,
    action: str,
    owner: str,
    due_on: Any,
    who: Who,
    now: datetime,
) -> CorrectiveAction:
    if Step(complaint.step) not in (Step.improve, Step.closed):
        raise StepRefused(f"corrective actions are decided at improve, not at {complaint.step}")
    if not owner.strip():
        raise InvalidField("owner", "say who must act on it")
    row = CorrectiveAction(
        complaint_id=complaint.id,
        action=action,
        owner=owner,
        due_on=due_on,
        created_at=now,
        created_by=who.actor,
    )
    session.add(row)
    await session.flush()
    _record(
        session,
        complaint,
        "complaint.corrective_action",
        who,
        {"corrective_action_id": str(row.id), "corrective_action": action, "owner": owner},
    )
    return row


# --- deadlines ----------------------------------------------------------------------------------


async def refresh_overdue(session: AsyncSession, complaint: Complaint, now: datetime) -> None:
    """Overdue while a running clock is past its deadline."""
    complaint.overdue = any(
        clock.paused_since is None and clock.due_at < now
        for clock in await clocks.running(session, complaint.id)
    )


# --- the log ------------------------------------------------------------------------------------


def _record(
    session: AsyncSession, complaint: Complaint, kind: str, who: Who, payload: dict[str, Any]
) -> None:
    about = {"reference": complaint.reference, "step": complaint.step}
    if kind in (MOVED, ASSIGNED) and complaint.owner_agent_id is not None:
        # The owner's desk hears its complaints move, whoever moved them (the customer's
        # answer, the system, a supervisor): the hub hands an event to its agent's desk.
        about["agent_id"] = str(complaint.owner_agent_id)
    events_of(session).add(
        kind,
        subject_type=SUBJECT,
        subject_id=complaint.id,
        actor=who.actor,
        payload={**about, **payload},
    )


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)

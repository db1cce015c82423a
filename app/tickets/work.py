"""The records kept between actions: a step's records, investigation notes, more interactions
about a complaint, the acknowledgement read out, corrective actions; and the checks of the ids
a request names (an agent, a category). Each leaves its event (acts.record).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.core.errors import Forbidden, InvalidField
from app.interactions.models import Interaction
from app.tickets.acts import StepRefused, Who, ensure_may_work, owns, record
from app.tickets.models import (
    Complaint,
    ComplaintCategory,
    ComplaintInteraction,
    ComplaintNote,
    CorrectiveAction,
)
from app.tickets.workflow import Actor, Step

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
    record(session, complaint, "complaint.recorded", who, {"before": before, "after": after})


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
    record(session, complaint, "complaint.acknowledged", who, {"acknowledged_by": "read_out"})


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
    record(
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
        owns(complaint, who) or interaction.agent_id == who.agent_id
    ):
        raise Forbidden("an agent links interactions it holds, or to complaints it owns")
    if await link(session, complaint, interaction_id, who, now):
        record(session, complaint, "complaint.linked", who, {"interaction_id": str(interaction_id)})


async def link(
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
    due_on: date | None,
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
    record(
        session,
        complaint,
        "complaint.corrective_action",
        who,
        {"corrective_action_id": str(row.id), "corrective_action": action, "owner": owner},
    )
    return row


async def ensure_agent(session: AsyncSession, agent_id: uuid.UUID, field: str) -> None:
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

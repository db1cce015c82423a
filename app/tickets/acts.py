"""Who acts on a complaint, in what context, and the record each act leaves: the event log's
entry (subject `complaint`), with its actor, written in the act's transaction. Shared by the
service (service.py), what the customer is told (telling.py) and the records kept between
actions (work.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError, Conflict, Forbidden, NotFound
from app.core.events import events_of
from app.tickets.models import Complaint
from app.tickets.workflow import ENDINGS, Actor, Step

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


def owns(complaint: Complaint, who: Who) -> bool:
    return who.agent_id is not None and complaint.owner_agent_id == who.agent_id


def raised_it(complaint: Complaint, who: Who) -> bool:
    return complaint.raised_by == who.actor


def ensure_may_work(complaint: Complaint, who: Who) -> None:
    """Agents work the steps of the complaints they own; supervisors any (the customer and the
    system only through their actions)."""
    if who.kind is Actor.supervisor:
        return
    if who.kind is not Actor.agent or not owns(complaint, who):
        raise Forbidden("only the complaint's owner (or a supervisor) works on it")
    if Step(complaint.step) in ENDINGS:
        raise StepRefused(f"the complaint is {complaint.step}: a supervisor may reopen it")


def record(
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


def text_of(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)

"""What a supervisor does to the live center: an agent sent away or logged out, waiting work
moved to another queue or offered to a named agent, its priority changed, a notice to the
agents of a queue. Each is audited as an event whose actor is the supervisor, with the
supervisor's reason in its payload (docs/supervisors.md, "Acting on queues and agents").

Routing's rules hold for every one of them, by routing's own code (app/routing/directing.py
and directed.py): the agent's state moves as the agent's own request would move it, an offer
is written by the one offer writer under the agent's row lock, and a refusal is a 409 that
says why. A logout also closes the agent's desk (app/desk/connection.py). Each runs
in the request's transaction (the ORM session's, with plain SQL on its connection, as the REST
desk does); its events are published after the commit, and those that may make a pair
(`matcher.WAKING_KINDS`) wake the leading matcher wherever it runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.agents.models import AgentState
from app.agents.schemas import AgentOut
from app.auth.dependencies import Session, Staff
from app.auth.models import User
from app.core.db import driver_connection
from app.core.events import events_of
from app.core.inputs import REFUSES_NUL
from app.interactions import service as interactions
from app.interactions.schemas import InteractionOut, QueueRef
from app.queues import service as queues
from app.routing import directed, directing

router = APIRouter(prefix="/v1/supervisor", tags=["supervisor"])

QUEUE_NOTICE = "queue.notice"

# Why the supervisor acted, kept in the action's event. An agent's state reason is its column's
# width; the others go into an offer's reason (300) or only into the event.
StateReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), REFUSES_NUL
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), REFUSES_NUL
]
NoticeText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), REFUSES_NUL
]


class ForcedState(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"state": "away", "reason": "team meeting"}]}
    )

    state: Literal[AgentState.away, AgentState.offline] = Field(
        description="away: out of routing, still at the desk; offline: logged out of routing"
    )
    reason: StateReason = Field(description="Shown as the agent's state reason, and audited")


class MoveIn(BaseModel):
    """Where waiting work goes: another queue, or an offer to a named agent (one of them)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"to_queue": "billing", "reason": "wrong queue"}]}
    )

    to_queue: QueueRef | None = Field(default=None, description="Queue name or id")
    to_agent_id: uuid.UUID | None = Field(
        default=None, description="Offer it to this agent, within its capacity"
    )
    reason: Reason

    @model_validator(mode="after")
    def one_destination(self) -> Self:
        if (self.to_queue is None) == (self.to_agent_id is None):
            raise ValueError("give either to_queue or to_agent_id, not both and not neither")
        return self


class MoveOut(BaseModel):
    interaction: InteractionOut
    offer_id: uuid.UUID | None = Field(description="The offer made to the named agent, if any")


class PriorityIn(BaseModel):
    priority: Annotated[int, Field(ge=-1000, le=1000)]
    reason: Reason


class NoticeIn(BaseModel):
    text: NoticeText
    reason: Reason


class NoticeSent(BaseModel):
    event_id: int
    queue_id: uuid.UUID
    agents: int = Field(description="How many agents with a desk open it was sent to")


@router.post("/agents/{agent_id}/state", summary="Send an agent away, or log it out")
async def force_state(
    agent_id: uuid.UUID,
    body: ForcedState,
    principal: Staff,
    session: Session,
    request: Request,
) -> AgentOut:
    """As the agent's own `set_state`: its pending offers go back to their queues, what it
    holds stays with it; the event (`agent.state_changed`) says a supervisor forced it."""
    connection = await driver_connection(session)
    await directing.force_state(
        connection,
        events_of(session),
        agent_id,
        AgentState(body.state),
        reason=body.reason,
        actor=principal.actor,
    )
    request.app.state.matcher.wake()
    session.expire_all()  # written beside the ORM: read the agent afresh
    return await agents.get_agent_view(session, agent_id)


@router.post(
    "/interactions/{interaction_id}/move",
    summary="Move waiting work to another queue, or offer it to a named agent",
)
async def move(
    interaction_id: uuid.UUID,
    body: MoveIn,
    principal: Staff,
    session: Session,
    request: Request,
) -> MoveOut:
    """Queued or offered work only (a pending offer is withdrawn first). To a queue: it waits
    there with that queue's required skills, its place in line kept (`interaction.moved`). To
    an agent: an ordinary offer (`interaction.offered`, `directed`), refused with a 409 that
    says why when the agent cannot take it."""
    events = events_of(session)
    offer_id = None
    if body.to_queue is not None:
        queue = await interactions.resolve_queue(session, body.to_queue, field="to_queue")
        needs = await interactions.queue_needs(session, queue)
        await directing.move_to_queue(
            await driver_connection(session),
            events,
            interaction_id,
            to_queue_id=queue.id,
            needs=needs,
            reason=body.reason,
            actor=principal.actor,
        )
    elif body.to_agent_id is not None:
        written = await directed.offer_to_agent(
            await driver_connection(session),
            events,
            request.app.state.offer_writer,
            interaction_id,
            body.to_agent_id,
            reason=body.reason,
            actor=principal.actor,
        )
        offer_id = written.offer.id
    request.app.state.matcher.wake()
    return MoveOut(interaction=await _interaction(session, interaction_id), offer_id=offer_id)


@router.post("/interactions/{interaction_id}/priority", summary="Change waiting work's priority")
async def change_priority(
    interaction_id: uuid.UUID,
    body: PriorityIn,
    principal: Staff,
    session: Session,
    request: Request,
) -> InteractionOut:
    """The explicit priority (-1000 to 1000, as at intake) of queued or offered work; the next
    matcher pass weighs it (`interaction.priority_changed`)."""
    await directing.change_priority(
        await driver_connection(session),
        events_of(session),
        interaction_id,
        body.priority,
        reason=body.reason,
        actor=principal.actor,
    )
    request.app.state.matcher.wake()
    return await _interaction(session, interaction_id)


@router.post(
    "/queues/{queue_id}/notices",
    status_code=status.HTTP_201_CREATED,
    summary="Send a notice to the desks of a queue's agents",
)
async def send_notice(
    queue_id: uuid.UUID, body: NoticeIn, principal: Staff, session: Session
) -> NoticeSent:
    """To every agent with a desk open who holds the queue's required skills (a `notice`
    frame, docs/agent-protocol.md), once: a desk opened later does not get it."""
    queue = await queues.get_queue(session, queue_id)
    sender = await session.get(User, principal.id)
    recipients = await directing.agents_serving(await driver_connection(session), queue.id)
    events = events_of(session)
    events.add(
        QUEUE_NOTICE,
        subject_type="queue",
        subject_id=queue.id,
        actor=principal.actor,
        payload={
            "text": body.text,
            "reason": body.reason,
            "from": principal.name if sender is None else sender.display_name,
            "agent_ids": [str(agent_id) for agent_id in recipients],
        },
    )
    # Written now rather than at the commit, for its id; published after the commit all the same.
    await events.write(await driver_connection(session))
    return NoticeSent(event_id=events.written[-1].id, queue_id=queue.id, agents=len(recipients))


async def _interaction(session: AsyncSession, interaction_id: uuid.UUID) -> InteractionOut:
    session.expire_all()  # written beside the ORM: read it afresh
    return InteractionOut.model_validate(
        await interactions.get_interaction(session, interaction_id)
    )

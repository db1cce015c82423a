"""The desk's actions over plain HTTP, for consoles that are not on the socket at that moment,
and the abandon a gateway or a supervisor reports: the same routing service as the socket and
the live call service, in the ORM session's transaction, whose unit of work writes the events
at its commit and publishes them after it."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from app.agents import service as agents
from app.agents.api import visible_agent
from app.agents.models import AgentState
from app.agents.schemas import AgentOut, AgentStateChange
from app.auth.dependencies import AbandonReporter, AnyUser, Session
from app.core.db import driver_connection
from app.core.errors import Forbidden
from app.core.events import events_of
from app.interactions import service as interactions
from app.interactions.api import agent_id_of, visible
from app.interactions.schemas import CompleteIn, InteractionOut, TransferIn
from app.routing import service as routing

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])
agents_router = APIRouter(prefix="/v1/agents", tags=["agents"])


@agents_router.post("/{agent_id}/state", summary="Go available, away or offline")
async def change_state(
    agent_id: uuid.UUID,
    body: AgentStateChange,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> AgentOut:
    """As the desk's `set_state`: away or offline returns the agent's pending offers to the
    queue; available becomes busy at once if the agent still holds work."""
    await visible_agent(principal, session, agent_id)
    connection = await driver_connection(session)
    await routing.change_state(
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


@router.post("/{interaction_id}/transfer", summary="Send assigned work to another queue")
async def transfer(
    interaction_id: uuid.UUID,
    body: TransferIn,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> InteractionOut:
    interaction = await interactions.get_interaction(session, interaction_id)
    await visible(principal, session, interaction)
    connection = await driver_connection(session)
    holder = None
    if interaction.agent_id is not None:  # locked first: the agent, then the interaction
        holder = await routing.lock_agent(connection, interaction.agent_id)
    moved = await interactions.transfer(
        session, interaction_id, body.queue, actor=principal.actor, note=body.note
    )
    if holder is not None:
        await session.flush()
        await routing.refresh_agent_state(
            connection, events_of(session), holder, actor=principal.actor
        )
    request.app.state.matcher.wake()
    return InteractionOut.model_validate(moved)


@router.post("/{interaction_id}/complete", summary="The agent is done (wrap-up may follow)")
async def complete(
    interaction_id: uuid.UUID,
    body: CompleteIn,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> InteractionOut:
    own = await agent_id_of(principal, session)
    if own is None:
        raise Forbidden("only the agent holding an interaction completes it")
    connection = await driver_connection(session)
    await routing.complete(
        connection,
        events_of(session),
        interaction_id,
        disposition=body.disposition,
        notes=body.notes,
        agent_id=own,
        actor=principal.actor,
    )
    request.app.state.matcher.wake()
    return InteractionOut.model_validate(
        await interactions.get_interaction(session, interaction_id)
    )


@router.post("/{interaction_id}/abandon", summary="The customer left (hung up, closed the chat)")
async def abandon(
    interaction_id: uuid.UUID, principal: AbandonReporter, session: Session, request: Request
) -> InteractionOut:
    """While it waited or was being offered (a pending offer is withdrawn), as the live call
    service reports a caller who hangs up: routing's `abandon_waiting`, one rule for both."""
    connection = await driver_connection(session)
    await routing.abandon_waiting(
        connection, events_of(session), interaction_id, actor=principal.actor
    )
    request.app.state.matcher.wake()
    return InteractionOut.model_validate(
        await interactions.get_interaction(session, interaction_id)
    )

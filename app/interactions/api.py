from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.agents import service as agents
from app.auth.dependencies import (
    AnyUser,
    HotConnection,
    Session,
    current_principal,
    hot_principal,
)
from app.auth.models import Role
from app.auth.principal import Principal
from app.core.channels import Channel
from app.core.errors import Forbidden
from app.core.pagination import Page, Pagination
from app.interactions import intake, service
from app.interactions.models import Interaction, InteractionState
from app.interactions.schemas import InteractionCreate, InteractionOut

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])

Caller = Annotated[Principal, Depends(current_principal)]
HotCaller = Annotated[Principal, Depends(hot_principal)]


async def agent_id_of(principal: Principal, session: Session) -> uuid.UUID | None:
    if principal.has_role(Role.agent):
        return await agents.agent_id_for_user(session, principal.id)
    return None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Queue an interaction from any channel (idempotent per channel reference)",
    responses={200: {"description": "The same channel reference was delivered before"}},
)
async def create_interaction(
    body: InteractionCreate,
    principal: HotCaller,
    connection: HotConnection,
    request: Request,
    response: Response,
) -> InteractionOut:
    state = request.app.state
    interaction, created = await intake.queue_interaction(
        connection, body, settings=state.settings, sessions=state.sessions, actor=principal.actor
    )
    if created:
        # The event's NOTIFY would wake this replica's matcher too, but only after a round trip
        # through PostgreSQL and the event hub.
        state.matcher.wake(queued=interaction.id)
    else:
        response.status_code = status.HTTP_200_OK
    return interaction


@router.get("", summary="List interactions (agents see only their own)")
async def list_interactions(
    principal: AnyUser,
    session: Session,
    page: Pagination,
    state: Annotated[InteractionState | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    queue_id: Annotated[uuid.UUID | None, Query()] = None,
    customer_id: Annotated[uuid.UUID | None, Query()] = None,
    agent_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[InteractionOut]:
    own = await agent_id_of(principal, session)
    if own is not None:
        agent_id = own
    where = service.InteractionFilter(
        state=state, channel=channel, queue_id=queue_id, customer_id=customer_id, agent_id=agent_id
    )
    items, total = await service.list_interactions(
        session, where, limit=page.limit, offset=page.offset
    )
    return Page(
        items=[InteractionOut.model_validate(i) for i in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def visible(principal: Principal, session: Session, interaction: Interaction) -> None:
    own = await agent_id_of(principal, session)
    if own is not None and interaction.agent_id != own:
        raise Forbidden("an agent sees only the interactions assigned to it")


@router.get("/{interaction_id}", summary="One interaction")
async def get_interaction(
    interaction_id: uuid.UUID, principal: AnyUser, session: Session
) -> InteractionOut:
    interaction = await service.get_interaction(session, interaction_id)
    await visible(principal, session, interaction)
    return InteractionOut.model_validate(interaction)


@router.post("/{interaction_id}/abandon", summary="The customer left (hung up, closed the chat)")
async def abandon(interaction_id: uuid.UUID, principal: Caller, session: Session) -> InteractionOut:
    if principal.has_role(Role.agent):
        raise Forbidden("agents complete or transfer; gateways and supervisors report abandons")
    return InteractionOut.model_validate(
        await service.abandon(session, interaction_id, actor=principal.actor)
    )

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.agents import service
from app.agents.models import AgentState
from app.agents.schemas import AgentCreate, AgentCreated, AgentOut, AgentUpdate
from app.auth.dependencies import Admin, AnyUser, Session, Staff
from app.auth.models import Role
from app.auth.principal import Principal
from app.core.errors import Forbidden
from app.core.inputs import REFUSES_NUL
from app.core.pagination import Page, Pagination
from app.skills.schemas import SkillLevel

router = APIRouter(prefix="/v1/agents", tags=["agents"])


async def visible_agent(principal: Principal, session: Session, agent_id: uuid.UUID) -> None:
    """Staff see every agent; an agent sees only itself."""
    if principal.has_role(Role.supervisor, Role.admin):
        return
    if await service.agent_id_for_user(session, principal.id) != agent_id:
        raise Forbidden("an agent sees only its own profile")


@router.get("", summary="List agents, by state or skill")
async def list_agents(
    _: Staff,
    session: Session,
    page: Pagination,
    state: Annotated[AgentState | None, Query()] = None,
    skill: Annotated[str | None, Query(max_length=64), REFUSES_NUL] = None,
) -> Page[AgentOut]:
    agents, total = await service.list_agents(
        session, state=state, skill=skill, limit=page.limit, offset=page.offset
    )
    return Page(items=agents, total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an agent with its user")
async def create_agent(body: AgentCreate, principal: Admin, session: Session) -> AgentCreated:
    agent, generated = await service.create_agent(session, body, actor=principal.actor)
    return AgentCreated(**agent.model_dump(), initial_password=generated)


@router.get("/me", summary="The logged-in agent")
async def my_agent(principal: AnyUser, session: Session) -> AgentOut:
    agent_id = await service.agent_id_for_user(session, principal.id)
    return await service.get_agent_view(session, agent_id)


@router.get("/{agent_id}", summary="One agent")
async def get_agent(agent_id: uuid.UUID, principal: AnyUser, session: Session) -> AgentOut:
    await visible_agent(principal, session, agent_id)
    return await service.get_agent_view(session, agent_id)


@router.patch("/{agent_id}", summary="Change an agent's name or capacity")
async def update_agent(
    agent_id: uuid.UUID, body: AgentUpdate, principal: Admin, session: Session
) -> AgentOut:
    return await service.update_agent(session, agent_id, body, actor=principal.actor)


@router.put("/{agent_id}/skills", summary="Replace an agent's skills")
async def replace_skills(
    agent_id: uuid.UUID, body: list[SkillLevel], principal: Admin, session: Session
) -> AgentOut:
    return await service.replace_skills(session, agent_id, body, actor=principal.actor)

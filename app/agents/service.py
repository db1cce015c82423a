"""Agents: created with their user, skills and capacity; state changes are events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.agents.models import Agent, AgentSkill, AgentState
from app.agents.schemas import (
    AgentCreate,
    AgentOut,
    AgentUpdate,
    Capacity,
)
from app.auth import service as users
from app.auth.models import Role, User
from app.auth.schemas import UserCreate
from app.core.errors import NotFound
from app.core.events import events_of
from app.skills import service as skills
from app.skills.models import Skill
from app.skills.schemas import SkillLevel


class AgentNotFound(NotFound):
    code = "agent_not_found"


async def create_agent(
    session: AsyncSession, data: AgentCreate, *, actor: str
) -> tuple[AgentOut, str | None]:
    levels = await skills.resolve_levels(session, data.skills, "skills")
    user_data = UserCreate(
        username=data.username,
        display_name=data.display_name,
        role=Role.agent,
        password=data.password,
    )
    user, generated = await users.create_user(session, user_data, actor=actor, allow_agent=True)
    agent = Agent(
        id=uuid.uuid4(),
        user_id=user.id,
        capacity_voice=data.capacity.voice,
        capacity_chat=data.capacity.chat,
        capacity_email=data.capacity.email,
        voice_endpoint=data.voice_endpoint,
        skills=[AgentSkill(skill_id=skill.id, proficiency=level) for skill, level in levels],
    )
    session.add(agent)
    await session.flush()
    events_of(session).add(
        "agent.created",
        subject_type="agent",
        subject_id=agent.id,
        actor=actor,
        payload={
            "username": user.username,
            "capacity": data.capacity.model_dump(),
            "skills": {skill.name: level for skill, level in levels},
            "voice_endpoint": data.voice_endpoint,
        },
    )
    return await get_agent_view(session, agent.id), generated


async def get_agent(session: AsyncSession, agent_id: uuid.UUID) -> Agent:
    query = (
        select(Agent)
        .options(selectinload(Agent.skills))
        .where(Agent.id == agent_id)
        .execution_options(populate_existing=True)
    )
    agent = (await session.execute(query)).scalar_one_or_none()
    if agent is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    return agent


async def agent_id_for_user(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID:
    query = select(Agent.id).where(Agent.user_id == user_id)
    agent_id = (await session.execute(query)).scalar_one_or_none()
    if agent_id is None:
        raise AgentNotFound("this user has no agent profile")
    return agent_id


async def _views(session: AsyncSession, agents: Sequence[tuple[Agent, User]]) -> list[AgentOut]:
    ids = [agent.id for agent, _ in agents]
    levels: dict[uuid.UUID, list[SkillLevel]] = defaultdict(list)
    if ids:
        rows = await session.execute(
            select(AgentSkill.agent_id, Skill.name, AgentSkill.proficiency)
            .join(Skill, Skill.id == AgentSkill.skill_id)
            .where(AgentSkill.agent_id.in_(ids))
            .order_by(Skill.name)
        )
        for agent_id, name, proficiency in rows:
            levels[agent_id].append(SkillLevel(skill=name, level=proficiency))
    return [_view(agent, user, levels[agent.id]) for agent, user in agents]


def _view(agent: Agent, user: User, levels: list[SkillLevel]) -> AgentOut:
    return AgentOut(
        id=agent.id,
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        is_active=user.is_active,
        capacity=Capacity(
            voice=agent.capacity_voice, chat=agent.capacity_chat, email=agent.capacity_email
        ),
        skills=levels,
        state=agent.state,
        state_reason=agent.state_reason,
        state_since=agent.state_since,
        voice_endpoint=agent.voice_endpoint,
    )


async def get_agent_view(session: AsyncSession, agent_id: uuid.UUID) -> AgentOut:
    query = (
        select(Agent, User)
        .join(User, User.id == Agent.user_id)
        .where(Agent.id == agent_id)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    return (await _views(session, [row]))[0]


async def list_agents(
    session: AsyncSession,
    *,
    state: AgentState | None,
    skill: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AgentOut], int]:
    query = select(Agent, User).join(User, User.id == Agent.user_id)
    if state is not None:
        query = query.where(Agent.state == state)
    if skill is not None:
        holders = (
            select(AgentSkill.agent_id)
            .join(Skill, Skill.id == AgentSkill.skill_id)
            .where(func.lower(Skill.name) == skill.lower())
        )
        query = query.where(Agent.id.in_(holders))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = query.order_by(User.username).limit(limit).offset(offset)
    rows = (await session.execute(page)).all()
    return await _views(session, rows), total


async def update_agent(
    session: AsyncSession, agent_id: uuid.UUID, data: AgentUpdate, *, actor: str
) -> AgentOut:
    agent = await get_agent(session, agent_id)
    payload: dict[str, object] = {}
    if data.capacity is not None:
        # A partial patch: channels left out keep their current value, not the defaults.
        current = Capacity(
            voice=agent.capacity_voice, chat=agent.capacity_chat, email=agent.capacity_email
        )
        capacity = current.model_copy(update=data.capacity.model_dump(exclude_unset=True))
        agent.capacity_voice = capacity.voice
        agent.capacity_chat = capacity.chat
        agent.capacity_email = capacity.email
        payload["capacity"] = capacity.model_dump()
    if "voice_endpoint" in data.model_fields_set:  # null clears it
        agent.voice_endpoint = data.voice_endpoint
        payload["voice_endpoint"] = data.voice_endpoint
    if data.display_name is not None:
        user = await users.get_user(session, agent.user_id)
        user.display_name = data.display_name
        payload["display_name"] = data.display_name
    await session.flush()
    events_of(session).add(
        "agent.updated",
        subject_type="agent",
        subject_id=agent.id,
        actor=actor,
        payload=payload,
    )
    return await get_agent_view(session, agent.id)


async def replace_skills(
    session: AsyncSession, agent_id: uuid.UUID, levels: Sequence[SkillLevel], *, actor: str
) -> AgentOut:
    agent = await get_agent(session, agent_id)
    resolved = await skills.resolve_levels(session, levels, "skills")
    agent.skills = [AgentSkill(skill_id=skill.id, proficiency=level) for skill, level in resolved]
    # The matcher keeps an agent's skills while this is unchanged; an SQL increment, so two
    # replacements at once still move it twice.
    agent.skills_version = Agent.skills_version + 1
    await session.flush()
    events_of(session).add(
        "agent.skills_changed",
        subject_type="agent",
        subject_id=agent.id,
        actor=actor,
        payload={"skills": {skill.name: level for skill, level in resolved}},
    )
    return await get_agent_view(session, agent.id)

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, InvalidField, NotFound
from app.core.events import events_of
from app.skills.models import Skill
from app.skills.schemas import SkillCreate, SkillLevel, SkillUpdate


class SkillNotFound(NotFound):
    code = "skill_not_found"


class SkillNameTaken(Conflict):
    code = "skill_name_taken"


async def list_skills(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[Skill], int]:
    """A page of the catalogue by name, and how many skills there are in all."""
    total = (await session.execute(select(func.count()).select_from(Skill))).scalar_one()
    page = select(Skill).order_by(Skill.name, Skill.id).limit(limit).offset(offset)
    return list((await session.execute(page)).scalars()), total


async def get_skill(session: AsyncSession, skill_id: uuid.UUID) -> Skill:
    skill = await session.get(Skill, skill_id)
    if skill is None:
        raise SkillNotFound(f"no skill with id {skill_id}")
    return skill


async def _find_by_name(session: AsyncSession, name: str) -> Skill | None:
    query = select(Skill).where(func.lower(Skill.name) == name.lower())
    return (await session.execute(query)).scalar_one_or_none()


async def create_skill(session: AsyncSession, data: SkillCreate, *, actor: str) -> Skill:
    if await _find_by_name(session, data.name) is not None:
        raise SkillNameTaken(f"a skill named {data.name!r} already exists")
    skill = Skill(id=uuid.uuid4(), name=data.name, description=data.description)
    session.add(skill)
    await session.flush()
    events_of(session).add(
        "skill.created",
        subject_type="skill",
        subject_id=skill.id,
        actor=actor,
        payload={"name": skill.name},
    )
    return skill


async def update_skill(
    session: AsyncSession, skill: Skill, data: SkillUpdate, *, actor: str
) -> Skill:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes:
        other = await _find_by_name(session, changes["name"])
        if other is not None and other.id != skill.id:
            raise SkillNameTaken(f"a skill named {changes['name']!r} already exists")
    for field, value in changes.items():
        setattr(skill, field, value)
    await session.flush()
    events_of(session).add(
        "skill.updated",
        subject_type="skill",
        subject_id=skill.id,
        actor=actor,
        payload=changes,
    )
    return skill


async def delete_skill(session: AsyncSession, skill: Skill, *, actor: str) -> None:
    try:
        async with session.begin_nested():
            await session.delete(skill)
    except IntegrityError as error:
        raise Conflict(
            f"skill {skill.name!r} is held by agents or required by queues; remove it there first"
        ) from error
    events_of(session).add(
        "skill.deleted",
        subject_type="skill",
        subject_id=skill.id,
        actor=actor,
        payload={"name": skill.name},
    )


async def resolve_levels(
    session: AsyncSession, levels: Sequence[SkillLevel], field: str
) -> list[tuple[Skill, int]]:
    """Turn named skill levels into skills, refusing unknown names and duplicates by field."""
    seen: set[str] = set()
    resolved: list[tuple[Skill, int]] = []
    for index, level in enumerate(levels):
        if level.skill in seen:
            raise InvalidField(f"{field}[{index}].skill", f"skill {level.skill!r} is listed twice")
        seen.add(level.skill)
        skill = await _find_by_name(session, level.skill)
        if skill is None:
            raise InvalidField(
                f"{field}[{index}].skill", f"unknown skill {level.skill!r}; create it at /v1/skills"
            )
        resolved.append((skill, level.level))
    return resolved

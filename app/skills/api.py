from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.auth.dependencies import Admin, AnyUser, Session
from app.core.pagination import Page, Pagination
from app.skills import service
from app.skills.schemas import SkillCreate, SkillOut, SkillUpdate

router = APIRouter(prefix="/v1/skills", tags=["skills"])


@router.get("", summary="List skills")
async def list_skills(_: AnyUser, session: Session, page: Pagination) -> Page[SkillOut]:
    skills, total = await service.list_skills(session, limit=page.limit, offset=page.offset)
    items = [SkillOut.model_validate(s) for s in skills]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a skill")
async def create_skill(body: SkillCreate, principal: Admin, session: Session) -> SkillOut:
    return SkillOut.model_validate(await service.create_skill(session, body, actor=principal.actor))


@router.get("/{skill_id}", summary="One skill")
async def get_skill(skill_id: uuid.UUID, _: AnyUser, session: Session) -> SkillOut:
    return SkillOut.model_validate(await service.get_skill(session, skill_id))


@router.patch("/{skill_id}", summary="Rename or describe a skill")
async def update_skill(
    skill_id: uuid.UUID, body: SkillUpdate, principal: Admin, session: Session
) -> SkillOut:
    skill = await service.get_skill(session, skill_id)
    return SkillOut.model_validate(
        await service.update_skill(session, skill, body, actor=principal.actor)
    )


@router.delete(
    "/{skill_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an unused skill"
)
async def delete_skill(skill_id: uuid.UUID, principal: Admin, session: Session) -> None:
    skill = await service.get_skill(session, skill_id)
    await service.delete_skill(session, skill, actor=principal.actor)

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import REFUSES_NUL

# Pydantic checks the pattern before `to_lower` applies, so it must admit capitals:
# "Billing" is accepted and stored as "billing".
SkillName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    ),
    REFUSES_NUL,
]
Description = Annotated[str, StringConstraints(max_length=500), REFUSES_NUL]
Proficiency = Annotated[int, Field(ge=1, le=5, description="1 (novice) to 5 (expert)")]


class SkillCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "billing", "description": "Invoices, refunds"}]}
    )

    name: SkillName
    description: Description = ""


class SkillUpdate(BaseModel):
    name: SkillName | None = None
    description: Description | None = None


class SkillOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str


class SkillLevel(BaseModel):
    """A skill named with its level: an agent's proficiency or a queue's minimum."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"skill": "billing", "level": 4}]})

    skill: SkillName
    level: Proficiency

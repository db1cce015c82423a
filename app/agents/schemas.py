from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.agents import voice
from app.agents.models import AgentState
from app.auth.schemas import DisplayName, Password, Username
from app.core.inputs import REFUSES_NUL
from app.skills.schemas import SkillLevel


class Capacity(BaseModel):
    """How much an agent holds at once, per channel. A call excludes chats (routing's rule)."""

    voice: Annotated[int, Field(ge=0, le=1)] = 1
    chat: Annotated[int, Field(ge=0, le=20)] = 3
    email: Annotated[int, Field(ge=0, le=20)] = 2


AGENT_EXAMPLE: dict[str, Any] = {
    "username": "mei",
    "display_name": "Mei Chen",
    "capacity": {"voice": 1, "chat": 3, "email": 2},
    "skills": [{"skill": "billing", "level": 4}, {"skill": "mandarin", "level": 5}],
}


def _a_voice_endpoint(value: str) -> str:
    voice.voice_endpoint(value)  # a ValueError names the shapes taken
    return value


# Where the agent's leg of a call rings (app/agents/voice.py): `client:<name>` for a softphone,
# `sip:<user>@<host>`, or an E.164 number.
VoiceEndpointText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=voice.LONGEST),
    AfterValidator(_a_voice_endpoint),
    REFUSES_NUL,
]


class AgentCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [AGENT_EXAMPLE]})

    username: Username
    display_name: DisplayName
    password: Password | None = Field(
        default=None, description="Left out, a password is generated and returned once."
    )
    capacity: Capacity = Capacity()
    skills: list[SkillLevel] = Field(default_factory=list, max_length=50)
    voice_endpoint: VoiceEndpointText | None = Field(
        default=None, description="Where the agent's calls ring: client:<name>, sip:..., +E.164"
    )


class AgentUpdate(BaseModel):
    display_name: DisplayName | None = None
    voice_endpoint: VoiceEndpointText | None = Field(
        default=None, description="Where the agent's calls ring; null clears it"
    )
    capacity: Capacity | None = Field(
        default=None, description="Only the channels sent change; the others keep their value."
    )


class AgentStateChange(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"state": "away", "reason": "break"}]}
    )

    state: Literal[AgentState.available, AgentState.away, AgentState.offline] = Field(
        description="busy and wrap_up are entered by routing, not set by hand"
    )
    reason: Annotated[str, StringConstraints(max_length=200), REFUSES_NUL] | None = None


class AgentOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    display_name: str
    is_active: bool
    capacity: Capacity
    skills: list[SkillLevel]
    state: AgentState
    state_reason: str | None
    state_since: datetime
    voice_endpoint: str | None


class AgentCreated(AgentOut):
    initial_password: str | None = Field(
        default=None, description="Only when the server generated the password; shown this once."
    )

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.channels import Channel
from app.core.inputs import REFUSES_NUL
from app.customers.models import ContactKind
from app.customers.schemas import Name
from app.interactions.models import InteractionState
from app.skills.schemas import SkillLevel

ExternalRef = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), REFUSES_NUL
]
QueueRef = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), REFUSES_NUL
]
Disposition = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), REFUSES_NUL
]
Subject = Annotated[str, StringConstraints(max_length=500), REFUSES_NUL]
LongText = Annotated[str, StringConstraints(max_length=20_000), REFUSES_NUL]
TransferNote = Annotated[str, StringConstraints(max_length=2000), REFUSES_NUL]

INTERACTION_EXAMPLE: dict[str, Any] = {
    "channel": "voice",
    "queue": "billing",
    "contact": {"kind": "phone", "value": "+86 138 0013 8000"},
    "external_ref": "call-7f3a9c",
    "subject": "Invoice question",
    "priority": 0,
}


class ContactIn(BaseModel):
    kind: ContactKind
    value: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320), REFUSES_NUL
    ]


class InteractionCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [INTERACTION_EXAMPLE]})

    channel: Channel
    queue: QueueRef = Field(description="Queue name or id")
    customer_id: uuid.UUID | None = None
    contact: ContactIn | None = Field(
        default=None,
        description="Who is calling or writing; an unknown contact becomes a new customer",
    )
    customer_name: Name | None = Field(
        default=None, description="Name for a new customer, if one is created"
    )
    external_ref: ExternalRef | None = Field(
        default=None,
        description="The channel's own id (call id, Message-ID, chat id): a retried delivery "
        "with the same one is the same interaction",
    )
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    skills: list[SkillLevel] = Field(
        default_factory=list, max_length=20, description="Needs beyond the queue's own"
    )
    subject: Subject = ""
    summary: LongText = ""

    @model_validator(mode="after")
    def _someone(self) -> InteractionCreate:
        if self.customer_id is None and self.contact is None:
            raise ValueError("give customer_id or contact: every interaction has a customer")
        return self


class InteractionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: Channel
    external_ref: str | None
    queue_id: uuid.UUID
    customer_id: uuid.UUID
    priority: int
    needs: list[SkillLevel]
    subject: str
    summary: str
    state: InteractionState
    agent_id: uuid.UUID | None
    waiting_since: datetime
    created_at: datetime
    offered_at: datetime | None
    assigned_at: datetime | None
    wrap_up_at: datetime | None
    ended_at: datetime | None
    disposition: str | None
    notes: str
    transferred_from: uuid.UUID | None


class InteractionReceived(InteractionOut):
    """What `POST /v1/interactions` answers: the interaction as it stood when its write
    committed, and the agent it is offered to. `agent_id` stays the agent who holds it (none
    until one accepts), as everywhere else; an offer is not a holding."""

    offered_to: uuid.UUID | None = Field(
        default=None,
        description="The agent whose pending offer it waits on (state `offered`), else null",
    )


class CompleteIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"disposition": "resolved", "notes": "refund issued"}]}
    )

    disposition: Disposition
    notes: LongText = ""


class TransferIn(BaseModel):
    queue: QueueRef
    note: TransferNote = ""

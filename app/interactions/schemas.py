from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.channels import Channel
from app.core.inputs import REFUSES_NUL
from app.customers.models import ContactKind
from app.customers.schemas import Language, Name
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
# What an agent writes to the customer (a reply by mail, over HTTP or from the desk): one limit.
ReplyText = Annotated[str, StringConstraints(min_length=1, max_length=20_000), REFUSES_NUL]
TransferNote = Annotated[str, StringConstraints(max_length=2000), REFUSES_NUL]
IvrNode = Annotated[str, StringConstraints(min_length=1, max_length=64), REFUSES_NUL]
MenuKey = Annotated[str, StringConstraints(max_length=1, pattern=r"^[0-9*#]$"), REFUSES_NUL]
IvrVariable = Annotated[str, StringConstraints(min_length=1, max_length=32), REFUSES_NUL]
# What a caller typed at a keypad, kept as typed: an account number's leading zeros stay.
KeyedDigits = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9*#]+$"), REFUSES_NUL
]
SelfServiceStep = Annotated[str, StringConstraints(min_length=1, max_length=100), REFUSES_NUL]

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


class IvrLearned(BaseModel):
    """What the IVR learned about a call, for the interaction and the agent's screen pop: kept
    whole with the interaction (`interactions.ivr`, jsonb), never in its events."""

    model_config = ConfigDict(frozen=True)

    path: list[IvrNode] = Field(
        default_factory=list,
        max_length=100,
        description="The nodes the call went through, in order",
    )
    keys: list[MenuKey] = Field(
        default_factory=list, max_length=50, description="The menu keys chosen, in order"
    )
    collected: dict[IvrVariable, KeyedDigits] = Field(
        default_factory=dict,
        max_length=20,
        description="The digits collected (an account number), by variable, as the caller "
        "typed them",
    )
    account_verified: bool | None = Field(
        default=None,
        description="Whether the account number passed its check; null: none was asked",
    )
    language: Language | None = Field(default=None, description="The language the call spoke")
    self_service: list[SelfServiceStep] = Field(
        default_factory=list,
        max_length=20,
        description="The self-service steps the caller completed (a balance heard, a card "
        "blocked), in order",
    )


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
    ivr: IvrLearned | None = Field(
        default=None,
        description="What the IVR learned about a call (its path, keys, collected digits, "
        "whether the account was verified, self-service done), shown to the agent with the "
        "offer: set by the voice channel; a gateway with an IVR of its own may set it too",
    )

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
    ivr: IvrLearned | None = Field(description="What the IVR learned, for a call that had one")
    not_before: datetime | None = Field(
        description="Not offered before this moment (a voicemail's callback waits for its "
        "queue to open); null: as soon as an agent is free"
    )
    linked_to: uuid.UUID | None = Field(
        default=None,
        description="The interaction this one continues (a reply to a completed email thread)",
    )


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

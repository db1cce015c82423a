"""Every message on the customer's chat socket, both ways, as pydantic models
(docs/chat-protocol.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, TypeAdapter

from app.core.inputs import REFUSES_NUL

CHAT_TEXT_LIMIT = 4000  # one chat message: a chat is not a letter (an email is)
ChatText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=CHAT_TEXT_LIMIT),
    REFUSES_NUL,
]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64), REFUSES_NUL]

# Customer -> server


class Identity(BaseModel):
    """A customer logged in to the host site: their id there, signed by the host site's
    server with the site's secret (hex HMAC-SHA256 of `customer`)."""

    customer: Annotated[str, StringConstraints(min_length=1, max_length=200), REFUSES_NUL]
    signature: Annotated[str, StringConstraints(min_length=64, max_length=64), REFUSES_NUL]


class Hello(BaseModel):
    type: Literal["hello"]
    visitor_token: Annotated[str, StringConstraints(max_length=100), REFUSES_NUL] | None = None
    identity: Identity | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), REFUSES_NUL] = ""


class Say(BaseModel):
    """A message from the customer; `client_id` makes a resend after a drop the same one."""

    type: Literal["message"]
    client_id: ClientId
    text: ChatText


class Typing(BaseModel):
    type: Literal["typing"]
    active: bool


class Read(BaseModel):
    """The customer has read the agent's messages up to this one."""

    type: Literal["read"]
    message_id: uuid.UUID


class Leave(BaseModel):
    type: Literal["leave"]


class LeaveMessage(BaseModel):
    """After hours: a message to be answered by mail."""

    type: Literal["leave_message"]
    email: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320), REFUSES_NUL
    ]
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000), REFUSES_NUL
    ]


class Heartbeat(BaseModel):
    type: Literal["heartbeat"]


CustomerMessage = Annotated[
    Hello | Say | Typing | Read | Leave | LeaveMessage | Heartbeat, Field(discriminator="type")
]
customer_message = TypeAdapter[CustomerMessage](CustomerMessage)

# Server -> customer


class ChatLine(BaseModel):
    """One line of the transcript as the customer sees it."""

    type: Literal["message"] = "message"
    message_id: uuid.UUID
    sender: Literal["customer", "agent", "system"]
    agent: str | None = Field(default=None, description="The agent's name, for theirs")
    text: str
    sent_at: datetime
    delivered: bool = False
    read: bool = False


class ChatNow(BaseModel):
    chat_id: uuid.UUID
    state: str
    agent: str | None
    messages: list[ChatLine]


class Welcome(BaseModel):
    type: Literal["welcome"] = "welcome"
    visitor_token: str
    open: bool
    next_opening: datetime | None
    chat: ChatNow | None


class Stored(BaseModel):
    type: Literal["stored"] = "stored"
    client_id: str
    message_id: uuid.UUID
    chat_id: uuid.UUID


class Waiting(BaseModel):
    type: Literal["waiting"] = "waiting"
    position: int
    estimated_wait_seconds: int | None


class AgentJoined(BaseModel):
    type: Literal["agent_joined"] = "agent_joined"
    agent: str


class TypingFrame(BaseModel):
    type: Literal["typing"] = "typing"
    active: bool


class Receipt(BaseModel):
    type: Literal["receipt"] = "receipt"
    message_id: uuid.UUID
    delivered: bool
    read: bool


class Closed(BaseModel):
    type: Literal["closed"] = "closed"
    reason: str


class LeftMessage(BaseModel):
    type: Literal["left_message"] = "left_message"


class ErrorFrame(BaseModel):
    type: Literal["error"] = "error"
    of: str | None = None
    error: str
    detail: str
    retry_after_seconds: int | None = None


ChatFrame = (
    Welcome
    | Stored
    | Waiting
    | AgentJoined
    | ChatLine
    | TypingFrame
    | Receipt
    | Closed
    | LeftMessage
    | ErrorFrame
)

"""Every message on the agent websocket, both ways, as pydantic models (docs/agent-protocol.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from app.agents.models import AgentState
from app.core.inputs import BIGINT_MAX, REFUSES_NUL
from app.desk.screen_pop import ScreenPop
from app.interactions.schemas import ReplyText
from app.tickets.deadlines import Severity
from app.tickets.models import TEXT_LENGTH
from app.tickets.schemas import LongText, Summary

# Agent -> server


class Hello(BaseModel):
    type: Literal["hello"]
    # An event id is a bigint: a larger one could only fail in the database.
    last_event_id: int | None = Field(default=None, ge=0, le=BIGINT_MAX)


class Heartbeat(BaseModel):
    type: Literal["heartbeat"]


class SetState(BaseModel):
    type: Literal["set_state"]
    state: Literal[AgentState.available, AgentState.away, AgentState.offline]
    reason: Annotated[str, StringConstraints(max_length=200), REFUSES_NUL] | None = None


class Accept(BaseModel):
    type: Literal["accept"]
    offer_id: uuid.UUID


class Reject(BaseModel):
    type: Literal["reject"]
    offer_id: uuid.UUID
    reason: Annotated[str, StringConstraints(max_length=300), REFUSES_NUL] = "rejected by agent"


Disposition = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), REFUSES_NUL
]
Notes = Annotated[str, StringConstraints(max_length=20_000), REFUSES_NUL]


class Complete(BaseModel):
    type: Literal["complete"]
    interaction_id: uuid.UUID
    disposition: Disposition
    notes: Notes = ""


class EndWrapUp(BaseModel):
    """Wrap-up is over. A call the caller ended went to wrap-up with no disposition: the agent
    gives it here (and notes); one given at `complete` stays unless another is given."""

    type: Literal["end_wrap_up"]
    interaction_id: uuid.UUID
    disposition: Disposition | None = None
    notes: Notes | None = None


class Reply(BaseModel):
    """The agent answers the customer of an interaction it holds (by mail for an email, a line
    for a chat): as `POST /v1/interactions/{id}/replies`, with its rules and limits."""

    type: Literal["reply"]
    interaction_id: uuid.UUID
    text: ReplyText


# What the agent does: each is answered by an ack or an error (hello and heartbeat are not).
# Routing's decisions run on the hot pool; a reply is the channel's, in a unit of work.
class Typing(BaseModel):
    """The agent is typing in a chat it holds (or stopped): its customer sees it. Not
    answered (a sign, not an action)."""

    type: Literal["typing"]
    interaction_id: uuid.UUID
    active: bool


class MarkRead(BaseModel):
    """The agent has read a chat's customer lines up to this one: the customer sees it."""

    type: Literal["read"]
    interaction_id: uuid.UUID
    message_id: uuid.UUID


class RaiseComplaint(BaseModel):
    """The agent raises a complaint from an interaction it holds or held, as `POST
    /v1/complaints` does (the same limits); it owns the complaint. Answered by an ack with the
    complaint's id and reference."""

    type: Literal["raise_complaint"]
    interaction_id: uuid.UUID
    summary: Summary
    original_message: Annotated[
        str, StringConstraints(min_length=1, max_length=TEXT_LENGTH), REFUSES_NUL
    ]
    remedy_sought: LongText = ""
    severity: Severity = Severity.major


RoutingAction = SetState | Accept | Reject | Complete | EndWrapUp
AgentAction = RoutingAction | Reply | MarkRead | RaiseComplaint

AgentMessage = Annotated[Hello | Heartbeat | Typing | AgentAction, Field(discriminator="type")]
agent_message = TypeAdapter[AgentMessage](AgentMessage)

# Server -> agent


class StateFrame(BaseModel):
    type: Literal["state"] = "state"
    event_id: int | None = None
    state: AgentState
    reason: str | None


class OfferFrame(BaseModel):
    type: Literal["offer"] = "offer"
    event_id: int | None = None
    offer_id: uuid.UUID
    interaction_id: uuid.UUID
    channel: str
    deadline: datetime
    screen_pop: ScreenPop


class OfferWithdrawnFrame(BaseModel):
    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    event_id: int | None = None
    offer_id: uuid.UUID
    interaction_id: uuid.UUID
    reason: str


class AssignmentFrame(BaseModel):
    type: Literal["assignment"] = "assignment"
    event_id: int | None = None
    interaction: dict[str, Any]


class InteractionUpdateFrame(BaseModel):
    type: Literal["interaction_update"] = "interaction_update"
    event_id: int | None = None
    interaction_id: uuid.UUID
    state: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ComplaintDeadlineFrame(BaseModel):
    """A deadline of a complaint the agent owns: near (`escalated` false: it is due within
    the policy's warning time) or passed (`escalated` true: supervisors see it overdue)."""

    type: Literal["complaint_deadline"] = "complaint_deadline"
    event_id: int | None = None
    complaint_id: uuid.UUID
    reference: str
    step: str
    clock: str = Field(description="The deadline: accept, investigate, reply or improve")
    due_at: datetime
    escalated: bool


class ComplaintUpdateFrame(BaseModel):
    """A complaint the agent owns moved, or was given to it: by the customer's answer through
    their link (`customer_accepts`, `customer_rejects`: back to step 3), by the system
    (`deemed_accepted`), by a supervisor, or by the agent itself (`action`, `actor` say which)."""

    type: Literal["complaint_update"] = "complaint_update"
    event_id: int | None = None
    complaint_id: uuid.UUID
    reference: str
    step: str = Field(description="The step it is at now")
    action: str = Field(description="The workflow's action, or `assign` / `claim`")
    actor: str


class NoticeFrame(BaseModel):
    """A supervisor's notice to the agents of a queue this agent serves (it holds the queue's
    required skills): shown, never answered, and not replayed to a desk that was away."""

    type: Literal["notice"] = "notice"
    event_id: int | None = None
    queue_id: uuid.UUID
    text: str
    from_: str = Field(alias="from", description="The supervisor's name")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ReadyFrame(BaseModel):
    """Sent once after the replay: from here on, frames are live."""

    type: Literal["ready"] = "ready"
    agent_id: uuid.UUID
    last_event_id: int
    heartbeat_seconds: float


class TypingFrame(BaseModel):
    """A chat's customer is typing (or stopped)."""

    type: Literal["typing"] = "typing"
    interaction_id: uuid.UUID
    active: bool


class ReceiptFrame(BaseModel):
    """The agent's lines in a chat reached the customer's screen, or were read there."""

    type: Literal["receipt"] = "receipt"
    interaction_id: uuid.UUID
    message_ids: list[uuid.UUID]
    delivered: bool
    read: bool


class AckFrame(BaseModel):
    type: Literal["ack"] = "ack"
    of: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ErrorFrame(BaseModel):
    type: Literal["error"] = "error"
    of: str | None = None
    error: str
    detail: str


DeskFrame = Annotated[
    ReadyFrame
    | StateFrame
    | OfferFrame
    | OfferWithdrawnFrame
    | AssignmentFrame
    | InteractionUpdateFrame
    | TypingFrame
    | ReceiptFrame
    | ComplaintDeadlineFrame
    | ComplaintUpdateFrame
    | NoticeFrame
    | AckFrame
    | ErrorFrame,
    Field(discriminator="type"),
]
desk_frame = TypeAdapter[DeskFrame](DeskFrame)

"""What the complaints API takes and answers (docs/complaints.md, docs/api.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import REFUSES_NUL
from app.tickets.deadlines import Severity
from app.tickets.models import (
    CATEGORY_NAME_LENGTH,
    OWNER_NAME_LENGTH,
    SUMMARY_LENGTH,
    TEXT_LENGTH,
    CategoryKind,
    ComplaintChannel,
)
from app.tickets.workflow import Step

Summary = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_LENGTH),
    REFUSES_NUL,
]
LongText = Annotated[str, StringConstraints(max_length=TEXT_LENGTH), REFUSES_NUL]
OwnerName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=OWNER_NAME_LENGTH),
    REFUSES_NUL,
]
CategoryName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=CATEGORY_NAME_LENGTH),
    REFUSES_NUL,
]
Evidence = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), REFUSES_NUL
]

_STRICT = ConfigDict(extra="forbid")


class ComplaintRaise(BaseModel):
    """A complaint as raised: from an interaction (its customer, channel and queue follow), or
    for a customer (a supervisor recording a letter, say). Raised with its remedy sought, it
    leaves step 1 at once (its records are all there)."""

    model_config = _STRICT

    interaction_id: uuid.UUID | None = Field(
        None, description="The interaction it is raised from (an agent: one it holds or held)"
    )
    customer_id: uuid.UUID | None = Field(
        None, description="Without an interaction: whose complaint it is (supervisors)"
    )
    channel: ComplaintChannel | None = Field(
        None, description="Without an interaction: how it came in (default other)"
    )
    queue_id: uuid.UUID | None = Field(
        None, description="Without an interaction: the queue whose calendar counts its deadlines"
    )
    summary: Summary
    original_message: Annotated[
        str, StringConstraints(min_length=1, max_length=TEXT_LENGTH), REFUSES_NUL
    ] = Field(description="The complaint in the customer's words")
    remedy_sought: LongText = Field("", description="What the customer asks for")
    severity: Severity = Field(Severity.major, description="A first estimate; confirmed at step 2")
    owner_agent_id: uuid.UUID | None = Field(
        None, description="Supervisors: who owns it (an agent raising one owns it)"
    )


class ActionRecords(BaseModel):
    """The records an action brings (docs/complaints.md, "Who may do what", names which each
    needs); records kept before (the assessment, the notes, the acknowledgement) count too."""

    model_config = _STRICT

    remedy_sought: LongText | None = None
    category_id: uuid.UUID | None = None
    severity: Severity | None = None
    reason: LongText | None = Field(None, description="Why it is rejected or reopened")
    owner_agent_id: uuid.UUID | None = None
    assessment: LongText | None = None
    reply: LongText | None = Field(None, description="The decision and remedy, as sent")
    actions_taken: LongText | None = None
    answer: LongText | None = Field(None, description="The customer's answer to the reply")
    satisfaction: int | None = Field(None, ge=1, le=5)
    root_cause_id: uuid.UUID | None = None
    corrective_action: LongText | None = None
    action_owner: OwnerName | None = Field(
        None, description="Who must act on it (a person, a team)"
    )
    action_due_on: date | None = None


class RecordsUpdate(BaseModel):
    """Records of the step the complaint is at, kept before the action that needs them."""

    model_config = _STRICT

    summary: Summary | None = None
    original_message: LongText | None = None
    remedy_sought: LongText | None = None
    category_id: uuid.UUID | None = None
    severity: Severity | None = None
    assessment: LongText | None = None


class NoteCreate(BaseModel):
    model_config = _STRICT

    text: Annotated[str, StringConstraints(min_length=1, max_length=TEXT_LENGTH), REFUSES_NUL]
    evidence: list[Evidence] = Field(
        default_factory=list, max_length=20, description="What it rests on: links, file names"
    )


class InteractionLink(BaseModel):
    model_config = _STRICT

    interaction_id: uuid.UUID


class AcknowledgementSaid(BaseModel):
    """The agent read the acknowledgement out to the customer."""

    model_config = _STRICT

    said: bool = Field(description="true: it was said (false is refused)")


class DeadlineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    clock: str
    started_at: datetime
    due_at: datetime
    paused_since: datetime | None
    ended_at: datetime | None
    warned_at: datetime | None
    escalated_at: datetime | None
    met: bool | None = Field(description="null while it runs")


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    author: str
    text: str
    evidence: list[str]
    created_at: datetime


class CorrectiveActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    complaint_id: uuid.UUID
    action: str
    owner: str
    due_on: date | None
    created_at: datetime
    created_by: str
    done_at: datetime | None
    done_by: str | None
    done_note: str


class CorrectiveActionCreate(BaseModel):
    model_config = _STRICT

    action: Annotated[str, StringConstraints(min_length=1, max_length=TEXT_LENGTH), REFUSES_NUL]
    owner: OwnerName
    due_on: date | None = None


class CorrectiveActionDone(BaseModel):
    model_config = _STRICT

    note: LongText = ""


class ComplaintOut(BaseModel):
    """A complaint as it stands; its history is `GET .../timeline`."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    customer_id: uuid.UUID
    queue_id: uuid.UUID | None
    channel: ComplaintChannel
    source_interaction_id: uuid.UUID | None
    raised_by: str
    raised_at: datetime
    step: Step
    step_number: int | None
    owner_agent_id: uuid.UUID | None
    severity: Severity
    tier: str
    summary: str
    original_message: str
    remedy_sought: str
    acknowledgement: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    category_id: uuid.UUID | None
    rejected_reason: str
    assessment: str
    reply: str
    actions_taken: str
    replied_at: datetime | None
    answer: str
    accepted: bool | None
    satisfaction: int | None
    answered_at: datetime | None
    answer_due_at: datetime | None
    root_cause_id: uuid.UUID | None
    closed_at: datetime | None
    overdue: bool
    interaction_ids: list[uuid.UUID]
    deadlines: list[DeadlineOut]
    notes: list[NoteOut]
    corrective_actions: list[CorrectiveActionOut]


class ComplaintSummary(BaseModel):
    """A complaint in a list."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    customer_id: uuid.UUID
    step: Step
    owner_agent_id: uuid.UUID | None
    severity: Severity
    tier: str
    summary: str
    channel: ComplaintChannel
    raised_at: datetime
    overdue: bool
    due_at: datetime | None = Field(description="The soonest running deadline")


class TimelineEntry(BaseModel):
    """One event of the complaint's history, as written (never edited)."""

    id: int
    occurred_at: datetime
    kind: str
    actor: str
    payload: dict[str, Any]


class CategoryCreate(BaseModel):
    model_config = _STRICT

    kind: CategoryKind
    name: CategoryName


class CategoryUpdate(BaseModel):
    model_config = _STRICT

    name: CategoryName | None = None
    active: bool | None = None


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: CategoryKind
    name: str
    active: bool

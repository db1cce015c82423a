"""What the IVR's admin API takes and answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.core.inputs import INTEGER_MAX, REFUSES_NUL
from app.ivr.engine import CallerHungUp, CallFacts, DigitsEntered, NoInput, RecordingDone
from app.ivr.flow import Flow, KeyedValue
from app.ivr.models import VersionState

FlowName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
    ),
    REFUSES_NUL,
]
Description = Annotated[str, StringConstraints(max_length=500), REFUSES_NUL]
VersionNumber = Annotated[int, Field(ge=1, le=INTEGER_MAX)]

# What a dry run's caller does at each wait: keys ("2", "12345674#") or an event.
CallerInput = Annotated[
    DigitsEntered | NoInput | RecordingDone | CallerHungUp, Field(discriminator="type")
]

DRY_RUN_EXAMPLE: dict[str, Any] = {
    "document": {
        "start": "menu",
        "nodes": {
            "menu": {
                "type": "menu",
                "prompts": [{"text": "For billing, press 1."}],
                "options": {"1": "billing"},
                "on_invalid": "bye",
            },
            "billing": {"type": "enqueue", "queue": "billing"},
            "bye": {"type": "hangup", "prompts": [{"text": "Goodbye."}]},
        },
    },
    "inputs": ["7", {"type": "no_input"}, "1"],
    "facts": {"tier": "iron"},
}


class DryRunIn(BaseModel):
    """A flow (a document, or a stored flow's version) and what the caller does, one input
    per wait."""

    model_config = ConfigDict(json_schema_extra={"examples": [DRY_RUN_EXAMPLE]})

    document: Flow | None = Field(default=None, description="A flow document, saved or not")
    flow_id: uuid.UUID | None = Field(default=None, description="Or a stored flow...")
    version: VersionNumber | None = Field(
        default=None, description="...and its version (null: the published one)"
    )
    inputs: list[KeyedValue | CallerInput] = Field(
        default_factory=list,
        max_length=100,
        description='Keys as a string ("2", "12345674#"), or {"type": "no_input"}, '
        '{"type": "recording", "url": ...}, {"type": "hung_up"}',
    )
    facts: CallFacts = Field(default_factory=CallFacts)

    @model_validator(mode="after")
    def _one_flow(self) -> DryRunIn:
        if (self.document is None) == (self.flow_id is None):
            raise ValueError("give either document or flow_id (with version, if not published)")
        if self.version is not None and self.flow_id is None:
            raise ValueError("version goes with flow_id")
        return self

    def events(self) -> list[CallerInput]:
        return [DigitsEntered(digits=i) if isinstance(i, str) else i for i in self.inputs]


class FlowCreate(BaseModel):
    """A new flow and its version 1."""

    name: FlowName
    description: Description = ""
    document: Flow
    publish: bool = Field(default=False, description="Publish version 1 at once")
    is_default: bool = Field(
        default=False, description="The flow of every number with no flow of its own"
    )


class FlowUpdate(BaseModel):
    name: FlowName | None = None
    description: Description | None = None
    is_default: bool | None = Field(
        default=None,
        description="true: this becomes the default flow (the previous one stops being it); "
        "false: no flow is the default",
    )


class FlowVersionCreate(BaseModel):
    """A new version of a flow: its document is kept as it is, for ever."""

    document: Flow
    publish: bool = Field(default=False, description="Publish it at once")


class VersionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    state: VersionState
    created_by: str
    created_at: datetime
    published_at: datetime | None = Field(description="When it was last published")


class FlowVersionOut(VersionSummary):
    flow_id: uuid.UUID
    document: Flow


class FlowOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    is_default: bool
    published_version: int | None = Field(description="The version new calls get")
    versions: list[VersionSummary] = Field(description="Every version, the newest first")
    created_by: str
    created_at: datetime
    updated_at: datetime


class NumberMapping(BaseModel):
    flow_id: uuid.UUID


class NumberOut(BaseModel):
    number: str = Field(description="E.164")
    flow_id: uuid.UUID
    flow_name: str
    created_by: str
    created_at: datetime
    updated_at: datetime

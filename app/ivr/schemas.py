"""What the IVR's admin API takes and answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.ivr.engine import CallerHungUp, CallFacts, DigitsEntered, NoInput, RecordingDone
from app.ivr.flow import Flow, KeyedValue

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
    """A flow document and what the caller does, one input per wait."""

    model_config = ConfigDict(json_schema_extra={"examples": [DRY_RUN_EXAMPLE]})

    document: Flow
    inputs: list[KeyedValue | CallerInput] = Field(
        default_factory=list,
        max_length=100,
        description='Keys as a string ("2", "12345674#"), or {"type": "no_input"}, '
        '{"type": "recording", "url": ...}, {"type": "hung_up"}',
    )
    facts: CallFacts = Field(default_factory=CallFacts)

    def events(self) -> list[CallerInput]:
        return [DigitsEntered(digits=i) if isinstance(i, str) else i for i in self.inputs]

"""A dry run: a flow, what a caller would do, and the facts, to what the caller would hear and
where the call ends. Pure: the engine itself runs the call, so the dry run cannot disagree
with a real one. `POST /v1/ivr/dry-run` (app/ivr/api.py) serves it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import InvalidField
from app.ivr.actions import Action, Gather, Language, Play, Record, Say
from app.ivr.engine import (
    CallEvent,
    CallFacts,
    EventOutOfTurn,
    Outcome,
    Step,
    advance,
    begin,
)
from app.ivr.flow import Flow


class Heard(BaseModel):
    """One prompt the caller hears: text spoken (`say`) or a recording played (`play`)."""

    model_config = ConfigDict(frozen=True)

    say: str | None = None
    play: str | None = None
    language: Language | None = None


class TranscriptStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    input: CallEvent | None = Field(description="What the caller did; null: the call started")
    through: list[str] = Field(description="The nodes the call went through")
    heard: list[Heard]
    actions: list[Action] = Field(description="What the gateway would be told, as sent")
    waiting_at: str | None = Field(description="The node then waiting for the caller")


class Transcript(BaseModel):
    model_config = ConfigDict(frozen=True)

    steps: list[TranscriptStep]
    heard: list[Heard] = Field(description="Every prompt the caller hears, in order")
    path: list[str]
    outcome: Outcome | None = Field(description="How the IVR's part ended; null: not yet")
    waiting_at: str | None = Field(description="Where the call waits when the inputs ran out")
    unused_inputs: int = Field(description="Inputs left over after the call ended")


def dry_run(flow: Flow, inputs: Sequence[CallEvent], facts: CallFacts) -> Transcript:
    """Run a call through `flow` with `inputs`, one per wait, until they or the call end.
    An input the call is not waiting for there is a 422 naming it (`inputs[2]`)."""
    step = begin(flow, facts)
    steps = [_told(None, step)]
    used = 0
    for index, event in enumerate(inputs):
        if step.outcome is not None:
            break
        try:
            step = advance(flow, step.state, event, facts)
        except EventOutOfTurn as error:
            raise InvalidField(f"inputs[{index}]", error.detail) from error
        steps.append(_told(event, step))
        used += 1
    return Transcript(
        steps=steps,
        heard=[heard for told in steps for heard in told.heard],
        path=step.state.path,
        outcome=step.outcome,
        waiting_at=step.state.node,
        unused_inputs=len(inputs) - used,
    )


def _told(event: CallEvent | None, step: Step) -> TranscriptStep:
    return TranscriptStep(
        input=event,
        through=step.visited,
        heard=heard(step.actions),
        actions=step.actions,
        waiting_at=step.state.node,
    )


def heard(actions: Sequence[Action]) -> list[Heard]:
    """The prompts in `actions`, in the order the caller hears them (a gather's and a
    recording's prompts included)."""
    found: list[Heard] = []
    for action in actions:
        prompts: Sequence[Say | Play] = ()
        if isinstance(action, Say | Play):
            prompts = (action,)
        elif isinstance(action, Gather | Record):
            prompts = action.prompts
        for prompt in prompts:
            if isinstance(prompt, Say):
                found.append(Heard(say=prompt.text, language=prompt.language))
            else:
                found.append(Heard(play=prompt.url))
    return found

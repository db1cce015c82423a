"""The generic JSON call-event API's wire format: for gateways that do not speak Twilio's.

A gateway (a PBX through a small adapter, a carrier of its own) posts one JSON object per
thing that happened on a call to `POST /v1/voice/events`, with its gateway key, and is answered
with what to do next: `{"call_id": ..., "actions": [...]}`, the very models of app/ivr/actions.py
(their `type` tells them apart). docs/telephony.md shows every event and answer.

What a call does with these events is the switchboard's (app/ivr/calls.py); the endpoint is
app/ivr/call_events_api.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import INTEGER_MAX, REFUSES_NUL
from app.ivr.actions import Action
from app.ivr.flow import AudioUrl

# The gateway's own id of the call (Twilio's CallSid, a PBX's channel id, a UUID).
CallRef = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), REFUSES_NUL
]
EventRef = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), REFUSES_NUL
]
# A party: an E.164 number (or one written as the caller's carrier wrote it), a SIP URI, a
# softphone's name, "anonymous".
Party = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), REFUSES_NUL]
GatewayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), REFUSES_NUL
]
Keys = Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9*#]*$"), REFUSES_NUL]
# A recording's URL, as the IVR engine keeps it (app/ivr/flow.py `AudioUrl`).
Url = AudioUrl


class Leg(StrEnum):
    """Which side of the call: the caller's, or the agent's (the leg a `connect` rang)."""

    caller = "caller"
    agent = "agent"


class EndCause(StrEnum):
    """Why a leg ended. The caller's leg: `completed` (we or the far end hung up after the
    IVR or the talk) or `caller_hung_up`. The agent's leg: `busy`, `no_answer`, `failed`
    (never answered: the call goes back to its queue) or `completed` (the talk is over)."""

    completed = "completed"
    caller_hung_up = "caller_hung_up"
    busy = "busy"
    no_answer = "no_answer"
    failed = "failed"


class _CallEvent(BaseModel):
    # Our own format: a misspelt field is refused (422), not silently dropped.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    call_id: CallRef = Field(description="The gateway's id of the call, the same in every event")
    event_id: EventRef | None = Field(
        default=None,
        description="The gateway's id of this event: a retried delivery sends the same one, "
        "and is answered as before without being applied twice",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="When it happened at the gateway, with its offset: kept for your logs; we "
        "time what happens to the call (a caller's wait) as we receive it",
    )


class CallStarted(_CallEvent):
    """A call arrived at a number of ours."""

    event: Literal["started"] = "started"
    from_: Party = Field(alias="from", description="Who is calling (E.164 when known)")
    to: Party = Field(description="The number dialled: it picks the IVR flow")
    gateway: GatewayName | None = Field(default=None, description="Which gateway took the call")


class DigitsEntered(_CallEvent):
    """What the caller keyed after a `gather` (or during a `hold` that listens for a key)."""

    event: Literal["digits"] = "digits"
    digits: Keys = Field(description="The keys, without the finishing key; empty: silence")


class StillWaiting(_CallEvent):
    """A `hold` came due (its `recheck_seconds` passed): what now? The generic format has no
    way for us to call the gateway, so this is also how it learns an agent took the call."""

    event: Literal["waiting"] = "waiting"


class LegAnswered(_CallEvent):
    """The agent's phone picked up, after a `connect`."""

    event: Literal["answered"] = "answered"
    leg: Literal["agent"] = "agent"
    endpoint: Party | None = Field(default=None, description="The endpoint that answered")


class CallTransferred(_CallEvent):
    """The call left us for another number (after a `transfer`, or moved by the gateway)."""

    event: Literal["transferred"] = "transferred"
    to: Party = Field(description="Where the call went")


class CallEnded(_CallEvent):
    """A leg ended: the caller's (the whole call) or the agent's (the caller stays)."""

    event: Literal["ended"] = "ended"
    leg: Leg = Leg.caller
    cause: EndCause


class RecordingDone(_CallEvent):
    """A `record` ended: the recording's URL, or none when nothing was said."""

    event: Literal["recording"] = "recording"
    recording_url: Url | None = None
    duration_seconds: Annotated[int, Field(ge=0, le=INTEGER_MAX)] | None = None


CallEvent = Annotated[
    CallStarted
    | DigitsEntered
    | StillWaiting
    | LegAnswered
    | CallTransferred
    | CallEnded
    | RecordingDone,
    Field(discriminator="event"),
]


class CallAnswer(BaseModel):
    """What the gateway does next: the actions in order (the last ends the turn)."""

    call_id: str
    actions: list[Action]

"""The generic JSON call-event API: `POST /v1/voice/events`, with a gateway key.

One JSON object per thing that happened on a call (app/ivr/call_events.py), answered with the
actions the gateway takes next (app/ivr/actions.py's models as JSON). The same switchboard as
Twilio's webhooks (app/ivr/calls.py) does the work: only the wire differs. An `event_id` makes
a retry safe: the same one again is answered as the first time and applied once.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.auth.dependencies import Gateway as GatewayCaller
from app.ivr import engine
from app.ivr.call_events import (
    CallAnswer,
    CallEnded,
    CallEvent,
    CallStarted,
    CallTransferred,
    DigitsEntered,
    EndCause,
    Leg,
    LegAnswered,
    RecordingDone,
    StillWaiting,
)
from app.ivr.call_records import AgentLeg, Answer, CallKey
from app.ivr.calls import Switchboard
from app.ivr.models import Gateway

router = APIRouter(prefix="/v1/voice", tags=["voice: generic call events"])

AGENT_LEG_ENDS = {
    EndCause.completed: AgentLeg.answered_and_over,
    EndCause.caller_hung_up: AgentLeg.answered_and_over,
    EndCause.busy: AgentLeg.busy,
    EndCause.no_answer: AgentLeg.no_answer,
    EndCause.failed: AgentLeg.failed,
}


@router.post("/events", summary="Something happened on a call: what does it do next?")
async def call_event(event: CallEvent, principal: GatewayCaller, request: Request) -> CallAnswer:
    switchboard: Switchboard = request.app.state.switchboard
    actor, delivery = principal.actor, event.event_id
    key = CallKey(Gateway.generic, event.call_id)
    answer: Answer | None = None
    match event:
        case CallStarted():
            answer = await switchboard.start(
                Gateway.generic,
                event.call_id,
                caller=event.from_,
                dialled_number=event.to,
                actor=actor,
            )
        case DigitsEntered():
            answer = await switchboard.keys(key, event.digits, delivery=delivery, actor=actor)
        case StillWaiting():
            answer = await switchboard.hold(key, digits="", delivery=delivery, actor=actor)
        case RecordingDone():
            heard: engine.RecordingDone | engine.NoInput = (
                engine.RecordingDone(url=event.recording_url)
                if event.recording_url
                else engine.NoInput()
            )
            answer = await switchboard.respond(key, heard, delivery=delivery, actor=actor)
        case LegAnswered():
            answer = await switchboard.agent_answered(key, delivery=delivery)
        case CallEnded() if event.leg is Leg.agent:
            answer = await switchboard.agent_leg_ended(
                key, AGENT_LEG_ENDS[event.cause], delivery=delivery, actor=actor
            )
        case CallEnded():
            await switchboard.call_ended(
                key, cause=event.cause.value, delivery=delivery, actor=actor
            )
        case CallTransferred():
            await switchboard.call_ended(key, cause="transferred", delivery=delivery, actor=actor)
    return CallAnswer(call_id=event.call_id, actions=[] if answer is None else answer.actions)

"""Twilio's voice webhooks: each request, its signature checked (app/ivr/twilio.py), handed to
the switchboard (app/ivr/calls.py), and its answer rendered as TwiML (app/ivr/twiml.py).

    POST /v1/voice/twilio/incoming   the number's voice URL: a call arrives
    POST /v1/voice/twilio/status     the number's status callback: the call ended (or rang)
    POST /v1/voice/twilio/{gather|record|hold|dial|answered}?call=<id>&turn=<n>
                                     the action URLs our TwiML hands out, one per step

Who may call them is the signature: `X-Twilio-Signature` over the public URL and the form,
with `CC_TWILIO_AUTH_TOKEN` (the `TWILIO_SIGNATURE` row of docs/api.md's table). The callback
URLs carry our call id and the turn they answer, so a retry (the same turn again) is answered
as the first time and a request for another call's id is refused (404).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from app.core.inputs import INTEGER_MAX
from app.ivr import engine
from app.ivr.call_records import AgentLeg, Answer, CallKey
from app.ivr.calls import Switchboard
from app.ivr.models import Gateway
from app.ivr.twilio import (
    AgentLegAnswered,
    CallStatus,
    CallStatusChanged,
    DialCallStatus,
    DialDone,
    GatherDone,
    HoldRecheck,
    IncomingCall,
    RecordingDone,
    TwilioForm,
)
from app.ivr.twiml import WEBHOOKS, CallbackUrls, render_twiml

router = APIRouter(prefix=WEBHOOKS, tags=["voice: Twilio webhooks"])

ACTOR = "gateway:twilio"
TWIML = "application/xml"
ENDED = frozenset(
    {
        CallStatus.completed,
        CallStatus.busy,
        CallStatus.failed,
        CallStatus.no_answer,
        CallStatus.canceled,
    }
)
LEG_ENDS = {
    DialCallStatus.completed: AgentLeg.answered_and_over,
    DialCallStatus.answered: AgentLeg.answered_and_over,
    DialCallStatus.busy: AgentLeg.busy,
    DialCallStatus.no_answer: AgentLeg.no_answer,
    DialCallStatus.failed: AgentLeg.failed,
    DialCallStatus.canceled: "canceled",
}
TWIML_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {TWIML: {}}, "description": "TwiML: what the call does next"}
}

CallId = Annotated[uuid.UUID, Query(alias="call", description="Our id of the call")]
Turn = Annotated[int, Query(ge=0, le=INTEGER_MAX, description="The turn this step answers")]


def _switchboard(request: Request) -> Switchboard:
    switchboard: Switchboard = request.app.state.switchboard
    return switchboard


def _twiml(request: Request, answer: Answer) -> Response:
    base = request.app.state.settings.public_base_url or str(request.base_url).rstrip("/")
    urls = CallbackUrls(base, answer.call_id, turn=answer.turn)
    return Response(render_twiml(answer.actions, urls), media_type=TWIML)


@router.post("/incoming", summary="A call arrives (the number's voice URL)", responses=TWIML_ANSWER)
async def incoming(request: Request, form: TwilioForm) -> Response:
    call = form.parsed(IncomingCall)
    answer = await _switchboard(request).start(
        Gateway.twilio, call.call_sid, caller=call.from_, dialled_number=call.to, actor=ACTOR
    )
    return _twiml(request, answer)


@router.post(
    "/status",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="The call's status changed (the number's status callback)",
)
async def status_changed(request: Request, form: TwilioForm) -> Response:
    """Only an end matters: a caller who hangs up in the IVR, while waiting or talking."""
    change = form.parsed(CallStatusChanged)
    if change.call_status in ENDED:
        cause = "completed" if change.call_status is CallStatus.completed else "caller_hung_up"
        await _switchboard(request).call_ended(
            CallKey(Gateway.twilio, change.call_sid),
            cause=cause if change.call_status is not CallStatus.canceled else "canceled",
            delivery=None,
            actor=ACTOR,
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/gather", summary="A <Gather> ended: keys, or silence", responses=TWIML_ANSWER)
async def gathered(request: Request, form: TwilioForm, call_id: CallId, turn: Turn) -> Response:
    done = form.parsed(GatherDone)
    event = engine.DigitsEntered(digits=done.digits) if done.digits else engine.NoInput()
    answer = await _switchboard(request).respond(
        _key(done.call_sid, call_id, turn), event, delivery=f"gather:{turn}", actor=ACTOR
    )
    return _twiml(request, answer)


@router.post("/record", summary="A <Record> ended: the recording, or none", responses=TWIML_ANSWER)
async def recorded(request: Request, form: TwilioForm, call_id: CallId, turn: Turn) -> Response:
    done = form.parsed(RecordingDone)
    event: engine.RecordingDone | engine.NoInput = (
        engine.RecordingDone(url=done.recording_url) if done.recording_url else engine.NoInput()
    )
    answer = await _switchboard(request).respond(
        _key(done.call_sid, call_id, turn), event, delivery=f"record:{turn}", actor=ACTOR
    )
    return _twiml(request, answer)


@router.post(
    "/hold", summary="The wait loop comes back, or a key while holding", responses=TWIML_ANSWER
)
async def held(request: Request, form: TwilioForm, call_id: CallId, turn: Turn) -> Response:
    recheck = form.parsed(HoldRecheck)
    answer = await _switchboard(request).hold(
        _key(recheck.call_sid, call_id, turn),
        digits=recheck.digits,
        delivery=f"hold:{turn}",
        actor=ACTOR,
    )
    return _twiml(request, answer)


@router.post("/dial", summary="The <Dial> to the agent ended", responses=TWIML_ANSWER)
async def dialled(request: Request, form: TwilioForm, call_id: CallId, turn: Turn) -> Response:
    done = form.parsed(DialDone)
    answer = await _switchboard(request).agent_leg_ended(
        _key(done.call_sid, call_id, turn),
        LEG_ENDS[done.dial_call_status],
        delivery=f"dial:{turn}",
        actor=ACTOR,
    )
    return _twiml(request, answer)


@router.post(
    "/answered",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="The agent picked up (the <Dial> noun's status callback)",
)
async def answered(request: Request, form: TwilioForm, call_id: CallId, turn: Turn) -> Response:
    leg = form.parsed(AgentLegAnswered)
    # This request is about the agent's leg: the caller's call is its parent.
    await _switchboard(request).agent_answered(
        CallKey(Gateway.twilio, leg.parent_call_sid, call_id), delivery=f"answered:{turn}"
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _key(call_sid: str, call_id: uuid.UUID, turn: int) -> CallKey:
    return CallKey(Gateway.twilio, call_sid, call_id, turn)

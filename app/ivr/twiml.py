"""Twilio's answers, out: the IVR engine's actions (app/ivr/actions.py) rendered as TwiML.

Each step that waits for the caller or the agent hands Twilio an `action` URL to post the
outcome to, built by `callback_url`: the public base URL, one path per kind of step, and the
call's id (and the engine's turn) in the query. Twilio signs the URL it requests, query
included, so a call id in it cannot be changed on the way (app/ivr/twilio.py).

    {base}/v1/voice/twilio/gather?call={id}&turn={n}    Digits (empty: the caller was silent)
    {base}/v1/voice/twilio/record?call={id}&turn={n}    RecordingUrl, RecordingDuration, Digits
    {base}/v1/voice/twilio/hold?call={id}&turn={n}      the wait loop's recheck, or Digits
    {base}/v1/voice/twilio/dial?call={id}&turn={n}      DialCallStatus: the agent's leg ended
    {base}/v1/voice/twilio/answered?call={id}&turn={n}  the agent's leg answered

Which actions a call gets is the IVR engine's and the switchboard's (app/ivr/calls.py).
Twilio's own `VoiceResponse` builds the XML (escaping, attribute names, nesting).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from app.agents.voice import EndpointKind, voice_endpoint
from app.ivr.actions import (
    Action,
    Connect,
    Gather,
    Hangup,
    Hold,
    Language,
    Play,
    Prompt,
    Record,
    Say,
    Transfer,
)

WEBHOOKS = "/v1/voice/twilio"
INCOMING_PATH = f"{WEBHOOKS}/incoming"  # the number's voice URL, set in Twilio's console
STATUS_PATH = f"{WEBHOOKS}/status"  # the number's status callback URL, likewise


class Callback(StrEnum):
    """The steps whose outcome Twilio posts back, each to a path of its own."""

    gather = "gather"
    record = "record"
    hold = "hold"
    dial = "dial"
    answered = "answered"


def callback_url(
    public_base_url: str, callback: Callback, call_id: uuid.UUID | str, *, turn: int | None = None
) -> str:
    """Where Twilio posts a step's outcome: `{base}/v1/voice/twilio/{step}?call={id}[&turn=n]`.

    `turn` (the engine's step counter) makes every step's URL unique, so that a request
    Twilio sends twice is known for a repeat, not taken for the caller's next keys."""
    query: dict[str, str] = {"call": str(call_id)}
    if turn is not None:
        query["turn"] = str(turn)
    return f"{public_base_url.rstrip('/')}{WEBHOOKS}/{callback.value}?{urlencode(query)}"


@dataclass(frozen=True)
class CallbackUrls:
    """The action URLs of one call's turn."""

    public_base_url: str
    call_id: uuid.UUID | str
    turn: int | None = None

    def __call__(self, callback: Callback) -> str:
        return callback_url(self.public_base_url, callback, self.call_id, turn=self.turn)


@dataclass(frozen=True)
class TwilioVoice:
    """How Twilio speaks a language: its `language` attribute and a voice that speaks it."""

    language: str
    voice: str


# Amazon Polly's neural voices through Twilio: clearer on a phone line than Twilio's basic
# voices, and a woman's voice in both languages, so a caller who switches hears the same kind
# of voice. Twilio names Mandarin `cmn-CN` for its Polly and Google voices. A `Say` that names
# a voice of its own keeps it (and the language attribute below).
VOICES = {
    Language.en_us: TwilioVoice(language="en-US", voice="Polly.Joanna-Neural"),
    Language.zh_cn: TwilioVoice(language="cmn-CN", voice="Polly.Zhiyu-Neural"),
}


def render_twiml(actions: Sequence[Action], urls: CallbackUrls) -> str:
    """The TwiML document that has Twilio do `actions`, in order (docs/telephony.md shows each).

    Gather, Record, Hold, Connect, Transfer and Hangup end a turn: Twilio posts their outcome
    to the turn's URLs (or the call ends), so actions after one of them are never reached."""
    response = VoiceResponse()
    for action in actions:
        _render(response, action, urls)
    return str(response.to_xml())


def _render(response: VoiceResponse, action: Action, urls: CallbackUrls) -> None:
    match action:
        case Say() | Play():
            _prompt(response, action)
        case Gather():
            _gather(response, action, urls)
        case Record():
            _record(response, action, urls)
        case Hold():
            _hold(response, action, urls)
        case Connect():
            _connect(response, action, urls)
        case Transfer():
            _transfer(response, action)
        case Hangup():
            response.hangup()


def _prompt(parent: Any, prompt: Prompt) -> None:
    """A `<Say>` or `<Play>` in the response or nested in a `<Gather>`."""
    if isinstance(prompt, Play):
        parent.play(prompt.url)
        return
    voice = VOICES[prompt.language]
    parent.say(prompt.text, voice=prompt.voice or voice.voice, language=voice.language)


def _gather(response: VoiceResponse, gather: Gather, urls: CallbackUrls) -> None:
    # actionOnEmptyResult: a silent caller is posted too (empty Digits), so the engine counts
    # the retry; without it Twilio would go on to the next verb on its own.
    element = response.gather(
        input="dtmf",
        action=urls(Callback.gather),
        method="POST",
        timeout=gather.timeout_seconds,
        num_digits=gather.num_digits,
        finish_on_key=gather.finish_on_key or "",  # "": no key ends it
        action_on_empty_result=True,
    )
    for prompt in gather.prompts:
        _prompt(element, prompt)


def _record(response: VoiceResponse, record: Record, urls: CallbackUrls) -> None:
    for prompt in record.prompts:
        _prompt(response, prompt)
    response.record(
        action=urls(Callback.record),
        method="POST",
        max_length=record.max_seconds,
        finish_on_key=record.finish_on_key or "",
        play_beep=True,
    )
    # Twilio posts nothing to the action when nothing was recorded: it goes on to the next
    # verb. This one tells the engine so (a post without RecordingUrl).
    response.redirect(urls(Callback.record), method="POST")


def _hold(response: VoiceResponse, hold: Hold, urls: CallbackUrls) -> None:
    """Our own wait loop: the prompts, a pause, then back to us to decide again (the caller
    may be connected, moved up, or told the position anew). An agent who accepts does not
    wait for the loop: the live call is redirected (app/ivr/twilio_api.py)."""
    if hold.listen_for is not None:
        # A key pressed during the prompts or the pause is posted to the same URL; silence
        # falls through to the redirect below.
        element = response.gather(
            input="dtmf",
            action=urls(Callback.hold),
            method="POST",
            num_digits=1,
            timeout=hold.recheck_seconds,
            finish_on_key="",
        )
        for prompt in hold.prompts:
            _prompt(element, prompt)
    else:
        for prompt in hold.prompts:
            _prompt(response, prompt)
        response.pause(length=hold.recheck_seconds)
    response.redirect(urls(Callback.hold), method="POST")


def _connect(response: VoiceResponse, connect: Connect, urls: CallbackUrls) -> None:
    endpoint = voice_endpoint(connect.endpoint)
    dial = response.dial(action=urls(Callback.dial), method="POST", timeout=connect.timeout_seconds)
    answered = {
        "status_callback_event": "answered",
        "status_callback": urls(Callback.answered),
        "status_callback_method": "POST",
    }
    if endpoint.kind is EndpointKind.client:
        dial.client(endpoint.address, **answered)
    elif endpoint.kind is EndpointKind.sip:
        dial.sip(endpoint.address, **answered)
    else:
        dial.number(endpoint.address, **answered)


def render_ring(endpoint: str) -> str:
    """A `<Dial>` to `endpoint` with no action of ours: a call we placed (a callback) that rings
    the agent once the customer answers; the agent's desk, not the line, ends the callback."""
    response = VoiceResponse()
    address = voice_endpoint(endpoint)
    dial = response.dial()
    match address.kind:
        case EndpointKind.client:
            dial.client(address.address)
        case EndpointKind.sip:
            dial.sip(address.address)
        case _:
            dial.number(address.address)
    return str(response.to_xml())


def _transfer(response: VoiceResponse, transfer: Transfer) -> None:
    """The call leaves us: no action URL, so when the far end hangs up the call ends (and
    the status callback says so)."""
    endpoint = voice_endpoint(transfer.number)
    if endpoint.kind is not EndpointKind.number:
        raise ValueError(f"a transfer goes to an E.164 number, not {transfer.number!r}")
    response.dial().number(endpoint.address)

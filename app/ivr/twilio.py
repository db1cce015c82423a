"""Twilio's webhooks, in: the signature check and the form-encoded requests as typed models.

Twilio (and the carriers that copy its webhooks) posts a form for every step of a call: the
number's voice URL when a call arrives, the `action` URLs our TwiML hands out (app/ivr/twiml.py)
when a step ends, the status callback when the call's state changes. Each carries an
`X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + every field's name and value, sorted
by name)), over the URL Twilio requested. A proxy in front of the app changes the URL the app
sees, so the URL checked is `CC_PUBLIC_BASE_URL` + path + query (docs/telephony.md). Twilio's
own `RequestValidator` does the arithmetic: the rule is theirs to define.

The endpoints are app/ivr/webhooks.py; what a call does with these requests is the
switchboard's (app/ivr/calls.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, ValidationError
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from app.core.errors import AppError, Forbidden
from app.core.inputs import INTEGER_MAX, REFUSES_NUL
from app.core.logging import get_logger
from app.core.settings import Settings
from app.ivr.flow import AudioUrl

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's voice webhooks are a few dozen short fields; a body past these is no webhook.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200


class BadSignature(Forbidden):
    """A webhook without a valid `X-Twilio-Signature` (or none can be checked): 403."""

    code = "bad_signature"


class FormTooLarge(AppError):
    status_code = 413
    code = "too_large"


class InvalidWebhook(AppError):
    """A signed webhook whose fields are not what Twilio sends: 422, naming each field."""

    status_code = 422
    code = "validation_error"


# The form's values. Sids are Twilio's 34 characters (CA..., AC...); carriers that copy its
# webhooks use their own ids (UUIDs), so only a bound is checked.
Sid = Annotated[str, StringConstraints(min_length=1, max_length=64), REFUSES_NUL]
# A party: an E.164 number, `client:name`, a SIP URI, or "Anonymous".
Party = Annotated[str, StringConstraints(max_length=255), REFUSES_NUL]
# A recording's URL, as the IVR engine keeps it (app/ivr/flow.py `AudioUrl`).
Url = AudioUrl
Word = Annotated[str, StringConstraints(max_length=32), REFUSES_NUL]
Keys = Annotated[str, StringConstraints(max_length=32, pattern=r"^[0-9*#]*$"), REFUSES_NUL]
# A recording's end: the key that ended it, or "hangup" when the caller hung up.
RecordingKeys = Annotated[
    str, StringConstraints(max_length=128, pattern=r"^([0-9*#]*|hangup)$"), REFUSES_NUL
]
Seconds = Annotated[int, Field(ge=0, le=INTEGER_MAX)]


class CallStatus(StrEnum):
    """A call's state as Twilio reports it (`CallStatus`)."""

    queued = "queued"
    ringing = "ringing"
    in_progress = "in-progress"
    completed = "completed"
    busy = "busy"
    failed = "failed"
    no_answer = "no-answer"
    canceled = "canceled"


class DialCallStatus(StrEnum):
    """How the agent's leg (a `<Dial>`) ended (`DialCallStatus`)."""

    completed = "completed"
    answered = "answered"
    busy = "busy"
    no_answer = "no-answer"
    failed = "failed"
    canceled = "canceled"


class TwilioCallRequest(BaseModel):
    """The fields of every voice webhook; the others Twilio sends (ApiVersion, CallerCity,
    ...) are ignored, as are those it adds tomorrow."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    call_sid: Sid = Field(alias="CallSid")
    account_sid: Sid = Field(alias="AccountSid")
    from_: Party = Field(default="", alias="From")
    to: Party = Field(default="", alias="To")
    call_status: CallStatus = Field(alias="CallStatus")
    # inbound, outbound-api, outbound-dial, trunking-...: a word, not a list that may grow.
    direction: Word = Field(default="", alias="Direction")


class IncomingCall(TwilioCallRequest):
    """A call arrives: the number's voice URL (`/v1/voice/twilio/incoming`)."""


class CallStatusChanged(TwilioCallRequest):
    """The status callback (`/v1/voice/twilio/status`): the call rang, was answered, ended."""

    call_duration: Seconds | None = Field(default=None, alias="CallDuration")
    # Twilio numbers a call's status callbacks from 0: one seen twice is a retry.
    sequence_number: Seconds | None = Field(default=None, alias="SequenceNumber")


class GatherDone(TwilioCallRequest):
    """A `<Gather>` ended: the keys pressed, or none when the caller was silent."""

    digits: Keys = Field(default="", alias="Digits")


class HoldRecheck(TwilioCallRequest):
    """The wait loop comes back (its `<Redirect>`), or the caller pressed a key while holding."""

    digits: Keys = Field(default="", alias="Digits")


class RecordingDone(TwilioCallRequest):
    """A `<Record>` ended: the recording, or none (nothing was said) after its `<Redirect>`."""

    recording_url: Url | None = Field(default=None, alias="RecordingUrl")
    recording_sid: Sid | None = Field(default=None, alias="RecordingSid")
    recording_duration: Seconds | None = Field(default=None, alias="RecordingDuration")
    digits: RecordingKeys = Field(default="", alias="Digits")


class DialDone(TwilioCallRequest):
    """The `<Dial>` to an agent ended: never answered (busy, no-answer, failed, canceled), or
    answered and over (completed, answered). The caller's call goes on with our answer."""

    dial_call_status: DialCallStatus = Field(alias="DialCallStatus")
    dial_call_sid: Sid | None = Field(default=None, alias="DialCallSid")
    dial_call_duration: Seconds | None = Field(default=None, alias="DialCallDuration")


class AgentLegAnswered(TwilioCallRequest):
    """The agent picked up: the status callback of the `<Dial>`'s noun. `call_sid` is the
    agent's leg; `parent_call_sid` the caller's call."""

    parent_call_sid: Sid = Field(alias="ParentCallSid")


Webhook = TypeVar("Webhook", bound=TwilioCallRequest)


@dataclass(frozen=True)
class SignedForm:
    """A webhook's form, its signature checked: the URL it was signed over and its fields."""

    url: str
    fields: tuple[tuple[str, str], ...]

    def parsed(self, model: type[Webhook]) -> Webhook:
        """The form as `model` (the first value of a repeated field), or a 422 naming each
        field that is not what Twilio sends."""
        values: dict[str, str] = {}
        for name, value in self.fields:
            values.setdefault(name, value)
        try:
            return model.model_validate(values)
        except ValidationError as error:
            problems = [
                {"field": ".".join(str(part) for part in e["loc"]), "problem": e["msg"]}
                for e in error.errors(include_url=False, include_input=False)
            ]
            detail = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
            raise InvalidWebhook(detail, fields=problems) from None


def public_url(request: Request, public_base_url: str | None) -> str:
    """The URL the gateway requested: `public_base_url` + path + query as sent (unset: the
    URL the app saw, right only when no proxy stands in front)."""
    base = public_base_url or f"{request.url.scheme}://{request.url.netloc}"
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


def signature_matches(
    auth_token: SecretStr, url: str, fields: tuple[tuple[str, str], ...], signature: str
) -> bool:
    """Whether `signature` is Twilio's for this URL and form (fields in any order)."""
    validator = RequestValidator(auth_token.get_secret_value())
    return bool(validator.validate(url, ImmutableMultiDict(fields), signature))


async def signed_form(request: Request) -> SignedForm:
    """The webhook's form when its `X-Twilio-Signature` is right; else a logged 403.

    A FastAPI dependency (`TwilioForm`); the endpoint parses the form into the model of its
    step (`form.parsed(GatherDone)`)."""
    settings: Settings = request.app.state.settings
    fields = _form_fields(await _capped_body(request))
    url = public_url(request, settings.public_base_url)
    signature = request.headers.get(SIGNATURE_HEADER)
    reason = None
    if settings.twilio_auth_token is None:
        reason = "CC_TWILIO_AUTH_TOKEN is not set: no Twilio webhook can be checked"
    elif not signature:
        reason = f"no {SIGNATURE_HEADER} header"
    elif not signature_matches(settings.twilio_auth_token, url, fields, signature):
        reason = f"the {SIGNATURE_HEADER} does not match this URL and form"
    if reason is not None:
        call_sid = next((value for name, value in fields if name == "CallSid"), None)
        log.warning("Twilio webhook refused", reason=reason, url=url, call_sid=call_sid)
        raise BadSignature(
            f"{reason}; the signature is checked over {url} (CC_PUBLIC_BASE_URL + path)"
        )
    return SignedForm(url=url, fields=fields)


TwilioForm = Annotated[SignedForm, Depends(signed_form)]


async def _capped_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge(f"a webhook's form is at most {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge(f"a webhook's form is at most {MAX_FORM_BYTES} bytes")
    return bytes(body)


def _form_fields(body: bytes) -> tuple[tuple[str, str], ...]:
    """The form's fields in order, blank ones kept: Twilio signs `Digits=` too. Bytes that are
    not UTF-8 become U+FFFD, which no signature then matches (a 403, not a 500)."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:  # more fields than that
        raise FormTooLarge(f"a webhook's form has at most {MAX_FORM_FIELDS} fields") from None
    return tuple(pairs)

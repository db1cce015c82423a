"""The generic JSON call-event API's wire format (app/ivr/call_events.py), and the inputs of
both gateways' formats held to the hardening rules (tests/core/request_inputs.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.core.inputs import BIGINT_MAX, REFUSES_NUL
from app.ivr import call_events, twilio
from app.ivr.actions import Connect, Hangup, Say
from app.ivr.call_events import (
    CallAnswer,
    CallEnded,
    CallEvent,
    CallStarted,
    DigitsEntered,
    EndCause,
    Leg,
)
from tests.core.request_inputs import Input, fields_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "telephony.md"
EVENTS: TypeAdapter[CallEvent] = TypeAdapter(CallEvent)


def _examples(kind: str) -> list[str]:
    text = DOCS.read_text()
    found = re.findall(rf"<!-- {kind} example -->\n```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(found) == text.count(f"<!-- {kind} example -->"), "an example lost its block"
    return found


@pytest.mark.parametrize("example", _examples("event"))
def test_every_event_in_the_docs_is_valid(example: str) -> None:
    event = EVENTS.validate_json(example)

    # Nothing in the example is dropped or defaulted away: it says what it means.
    assert json.loads(event.model_dump_json(by_alias=True, exclude_unset=True)) == json.loads(
        example
    ) | {"event": event.event}


@pytest.mark.parametrize("example", _examples("answer"))
def test_every_answer_in_the_docs_is_valid_and_complete(example: str) -> None:
    answer = CallAnswer.model_validate_json(example)

    assert json.loads(answer.model_dump_json()) == json.loads(example)


def test_the_docs_show_every_event() -> None:
    shown = {EVENTS.validate_json(example).event for example in _examples("event")}

    assert shown == {
        "started",
        "digits",
        "waiting",
        "answered",
        "transferred",
        "ended",
        "recording",
    }


def test_a_started_call_reads_from_and_to() -> None:
    started = EVENTS.validate_python(
        {"event": "started", "call_id": " c-1 ", "from": "+8613800138000", "to": "+864001234567"}
    )

    assert isinstance(started, CallStarted)
    assert (started.call_id, started.from_, started.to) == (
        "c-1",
        "+8613800138000",
        "+864001234567",
    )
    assert started.gateway is None
    assert started.event_id is None
    assert started.occurred_at is None


def test_an_ended_leg_is_the_caller_s_unless_said() -> None:
    ended = EVENTS.validate_python({"event": "ended", "call_id": "c-1", "cause": "caller_hung_up"})
    agent = EVENTS.validate_python(
        {"event": "ended", "call_id": "c-1", "cause": "busy", "leg": "agent"}
    )

    assert isinstance(ended, CallEnded)
    assert ended.leg is Leg.caller
    assert isinstance(agent, CallEnded)
    assert agent.cause is EndCause.busy


@pytest.mark.parametrize(
    ("event", "where"),
    [
        ({"event": "digits", "call_id": "c-1", "digits": "12", "dgits": "3"}, "dgits"),
        ({"event": "digits", "call_id": "c-1", "digits": "1a"}, "digits"),
        ({"event": "digits", "call_id": "c\x00-1", "digits": "1"}, "call_id"),
        ({"event": "digits", "call_id": "c" * 65, "digits": "1"}, "call_id"),
        ({"event": "hungup", "call_id": "c-1"}, "event"),
        ({"event": "ended", "call_id": "c-1", "cause": "bored"}, "cause"),
        ({"event": "answered", "call_id": "c-1", "leg": "caller"}, "leg"),
        ({"event": "recording", "call_id": "c-1", "duration_seconds": -1}, "duration_seconds"),
        ({"event": "started", "call_id": "c-1", "to": "+86400"}, "from"),
    ],
)
def test_what_is_not_the_format_is_refused_naming_the_field(
    event: dict[str, object], where: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        EVENTS.validate_python(event)

    fields = {str(part) for e in refused.value.errors() for part in e["loc"]}
    # An unknown event has no field to blame: the message names the tag and those taken.
    assert where in fields or f"using '{where}'" in str(refused.value)


def test_the_answer_is_the_engine_s_actions_as_json() -> None:
    answer = CallAnswer(
        call_id="c-1",
        actions=[Say(text="One moment"), Connect(endpoint="client:mei"), Hangup()],
    )

    sent = json.loads(answer.model_dump_json())

    assert sent["call_id"] == "c-1"
    assert [action["type"] for action in sent["actions"]] == ["say", "connect", "hangup"]
    assert CallAnswer.model_validate(sent) == answer
    assert isinstance(DigitsEntered(call_id="c", digits=""), DigitsEntered)  # silence is valid


# The hardening rules, held by the same walker that walks the app's endpoints: these models
# are read by hand (the Twilio form) or will be (the JSON events), so the route walk cannot
# find them until the endpoints exist.
READ_FROM_GATEWAYS: list[type[BaseModel]] = [
    twilio.IncomingCall,
    twilio.CallStatusChanged,
    twilio.GatherDone,
    twilio.HoldRecheck,
    twilio.RecordingDone,
    twilio.DialDone,
    twilio.AgentLegAnswered,
    call_events.CallStarted,
    call_events.DigitsEntered,
    call_events.LegAnswered,
    call_events.CallTransferred,
    call_events.CallEnded,
    call_events.RecordingDone,
]


def _inputs() -> list[Input]:
    return [i for model in READ_FROM_GATEWAYS for i in fields_of(model, model.__name__)]


def test_the_walk_finds_the_gateways_fields() -> None:
    where = {i.where for i in _inputs()}

    assert {"GatherDone.digits", "DialDone.dial_call_sid", "CallStarted.from_"} <= where


def test_every_gateway_string_is_bounded_and_refuses_nul_last() -> None:
    strings = [i for i in _inputs() if i.type is str]
    unguarded = [i.where for i in strings if i.constraints[-1:] != (REFUSES_NUL,)]
    unlimited = [i.where for i in strings if i.max_length() is None]

    assert strings
    assert not unguarded, "end these strings' Annotated with REFUSES_NUL: " + ", ".join(unguarded)
    assert not unlimited, "give these strings a max_length: " + ", ".join(unlimited)


def test_every_gateway_integer_fits_a_bigint() -> None:
    integers = [i for i in _inputs() if i.type is int]
    bounds = [i.bounds() for i in integers]

    assert integers
    assert all(low is not None and high is not None for low, high in bounds)
    assert all((low or 0) >= 0 and (high or 0) <= BIGINT_MAX for low, high in bounds)


def test_every_type_is_one_the_walk_knows() -> None:
    assert {i.type for i in _inputs()} <= {str, int}

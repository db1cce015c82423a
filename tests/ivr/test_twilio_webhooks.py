"""Twilio's webhooks come in only signed (app/ivr/twilio.py), over the URL Twilio requested.

The app here sits behind a "proxy": it sees http://testserver/..., while Twilio requested
https://cc.example.com/... (CC_PUBLIC_BASE_URL), as a TLS-terminating proxy makes it. A small
app of the test's own carries the dependency, to try it apart from the endpoints;
tests/ivr/test_calls.py drives the real ones with whole calls.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from app.core.errors import install_error_handlers
from app.core.settings import Settings
from app.ivr.twilio import (
    MAX_FORM_BYTES,
    SIGNATURE_HEADER,
    CallStatus,
    CallStatusChanged,
    DialCallStatus,
    DialDone,
    GatherDone,
    RecordingDone,
    TwilioForm,
    signature_matches,
)
from tests.ivr.twilio_standin import (
    AUTH_TOKEN,
    CALL_SID,
    call_form,
    post_signed,
    twilio_signature,
)

PUBLIC = "https://cc.example.com"
SEEN = "http://testserver"  # what the app sees behind the proxy
GATHER = "/v1/voice/twilio/gather?call=5b8e0f9a-4a7e-4c47-9a53-4f1c2d9e7b10&turn=2"


def _app(**settings: Any) -> FastAPI:
    app = FastAPI()
    given: dict[str, Any] = {"twilio_auth_token": AUTH_TOKEN, "public_base_url": PUBLIC}
    app.state.settings = Settings(environment="test", **(given | settings))
    install_error_handlers(app)

    @app.post("/v1/voice/twilio/gather")
    async def gathered(form: TwilioForm) -> dict[str, Any]:
        done = form.parsed(GatherDone)
        return {"url": form.url, "call_sid": done.call_sid, "digits": done.digits}

    @app.post("/v1/voice/twilio/dial")
    async def dialled(form: TwilioForm) -> dict[str, Any]:
        return form.parsed(DialDone).model_dump(mode="json")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(_app()) as client:
        yield client


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SEEN)


def _gather_form(digits: str = "2") -> dict[str, str]:
    return call_form(CallStatus="in-progress", Digits=digits)


async def test_a_signed_webhook_is_taken_and_parsed(client: httpx.AsyncClient) -> None:
    response = await post_signed(client, GATHER, _gather_form(), public_base_url=PUBLIC)

    assert response.status_code == 200, response.text
    assert response.json() == {"url": PUBLIC + GATHER, "call_sid": CALL_SID, "digits": "2"}


async def test_a_wrong_signature_is_refused_and_logged(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    response = await post_signed(
        client, GATHER, _gather_form(), public_base_url=PUBLIC, auth_token="another-accounts"
    )

    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"
    assert "does not match" in response.json()["detail"]
    refusal = [line for line in log_lines.getvalue().splitlines() if "webhook refused" in line]
    assert len(refusal) == 1
    assert CALL_SID in refusal[0]
    assert PUBLIC + GATHER in refusal[0]


async def test_a_missing_signature_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(GATHER, data=_gather_form())

    assert response.status_code == 403
    assert f"no {SIGNATURE_HEADER}" in response.json()["detail"]


async def test_a_signature_over_the_url_the_proxy_rewrote_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """Signed over what the app sees, not what Twilio requested: not Twilio's signature."""
    response = await post_signed(client, GATHER, _gather_form(), public_base_url=SEEN)

    assert response.status_code == 403
    assert PUBLIC + GATHER in response.json()["detail"]  # says which URL it checked


async def test_without_a_public_base_url_the_url_the_app_saw_is_checked() -> None:
    """Right with no proxy in front; behind one, every webhook is refused until it is set."""
    async with _client(_app(public_base_url=None)) as client:
        direct = await post_signed(client, GATHER, _gather_form(), public_base_url=SEEN)
        proxied = await post_signed(client, GATHER, _gather_form(), public_base_url=PUBLIC)

    assert direct.status_code == 200, direct.text
    assert proxied.status_code == 403


async def test_the_fields_may_come_in_any_order(client: httpx.AsyncClient) -> None:
    pairs = list(_gather_form().items())
    signature = twilio_signature(AUTH_TOKEN, PUBLIC + GATHER, pairs)
    reordered = "&".join(f"{name}={value}" for name, value in reversed(pairs)).replace("+", "%2B")

    response = await client.post(
        GATHER,
        content=reordered,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: signature,
        },
    )

    assert response.status_code == 200, response.text


async def test_a_field_or_the_call_in_the_url_changed_after_signing_is_refused(
    client: httpx.AsyncClient,
) -> None:
    form = _gather_form()
    signature = twilio_signature(AUTH_TOKEN, PUBLIC + GATHER, form)
    headers = {SIGNATURE_HEADER: signature}

    other_digits = await client.post(GATHER, data={**form, "Digits": "9"}, headers=headers)
    other_call = await client.post(GATHER.replace("turn=2", "turn=3"), data=form, headers=headers)
    as_signed = await client.post(GATHER, data=form, headers=headers)

    assert other_digits.status_code == 403
    assert other_call.status_code == 403
    assert as_signed.status_code == 200  # the control: the same request, unchanged


async def test_blank_fields_are_signed_too(client: httpx.AsyncClient) -> None:
    """A silent caller's Gather posts `Digits=` (actionOnEmptyResult): Twilio signs it."""
    response = await post_signed(client, GATHER, _gather_form(digits=""), public_base_url=PUBLIC)

    assert response.status_code == 200, response.text
    assert response.json()["digits"] == ""


async def test_without_an_auth_token_every_webhook_is_refused() -> None:
    async with _client(_app(twilio_auth_token=None)) as client:
        response = await post_signed(client, GATHER, _gather_form(), public_base_url=PUBLIC)

    assert response.status_code == 403
    assert "CC_TWILIO_AUTH_TOKEN is not set" in response.json()["detail"]


async def test_no_auth_token_in_any_log_line_or_answer(
    client: httpx.AsyncClient, log_lines: io.StringIO
) -> None:
    answers = [
        await post_signed(client, GATHER, _gather_form(), public_base_url=PUBLIC),
        await post_signed(client, GATHER, _gather_form(), public_base_url=SEEN),
        await client.post(GATHER, data=_gather_form()),
        await post_signed(client, GATHER, _gather_form("x"), public_base_url=PUBLIC),
    ]

    assert [a.status_code for a in answers] == [200, 403, 403, 422]
    assert "webhook refused" in log_lines.getvalue()  # the refusals were logged...
    assert AUTH_TOKEN not in log_lines.getvalue()  # ...without the token
    assert not [a.text for a in answers if AUTH_TOKEN in a.text]


def test_the_settings_never_show_the_auth_token() -> None:
    settings = Settings(environment="test", twilio_auth_token=AUTH_TOKEN)

    assert isinstance(settings.twilio_auth_token, SecretStr)
    assert AUTH_TOKEN not in repr(settings)
    assert AUTH_TOKEN not in str(settings)
    assert Settings(environment="test", twilio_auth_token="").twilio_auth_token is None


def test_the_public_base_url_is_a_base() -> None:
    settings = Settings(environment="test", public_base_url="https://cc.example.com/voice/")

    assert settings.public_base_url == "https://cc.example.com/voice"
    with pytest.raises(ValueError, match="no query or fragment"):
        Settings(environment="test", public_base_url="https://cc.example.com/?x=1")
    with pytest.raises(ValueError, match="http:// or https://"):
        Settings(environment="test", public_base_url="cc.example.com")


async def test_a_signed_form_is_parsed_into_its_step_unknown_fields_ignored(
    client: httpx.AsyncClient,
) -> None:
    form = call_form(
        CallStatus="in-progress",
        DialCallStatus="no-answer",
        DialCallSid="CA" + "1" * 32,
        DialCallDuration="0",
        SomethingTwilioAddsTomorrow="whatever",
    )

    response = await post_signed(
        client, "/v1/voice/twilio/dial?call=x", form, public_base_url=PUBLIC
    )

    assert response.status_code == 200, response.text
    dial = DialDone.model_validate(response.json(), by_alias=False, by_name=True)
    assert dial.dial_call_status is DialCallStatus.no_answer
    assert dial.call_status is CallStatus.in_progress
    assert dial.from_ == "+8613800138000"
    assert dial.dial_call_duration == 0


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("Digits", "12a", "should match pattern"),
        ("From", "+86\x00138", "NUL"),
        ("CallSid", "CA" + "0" * 100, "at most 64"),
        ("CallStatus", "exploded", "should be"),
    ],
)
async def test_a_signed_form_that_is_not_what_twilio_sends_is_a_422_naming_the_field(
    client: httpx.AsyncClient, field: str, value: str, problem: str
) -> None:
    response = await post_signed(
        client, GATHER, {**_gather_form(), field: value}, public_base_url=PUBLIC
    )

    assert response.status_code == 422, response.text
    [found] = response.json()["fields"]
    assert found["field"] == field
    assert problem in found["problem"]


async def test_a_form_too_large_or_not_utf8_is_refused_without_a_500(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", SIGNATURE_HEADER: "x"}
    large = await client.post(GATHER, content=b"a=" + b"x" * MAX_FORM_BYTES, headers=headers)
    many = await client.post(GATHER, content="&".join(["a=1"] * 1000), headers=headers)
    garbled = await client.post(GATHER, content=b"Digits=%ff%fe\xff", headers=headers)

    assert [large.status_code, many.status_code, garbled.status_code] == [413, 413, 403]


def test_twilio_documented_example_signature() -> None:
    """Twilio's own worked example (its security docs), so that our use of the validator is
    the rule Twilio signs by, not a rule we sign and check ourselves alike."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }

    assert signature_matches(SecretStr("12345"), url, tuple(form.items()), _TWILIO_EXAMPLE)
    assert not signature_matches(SecretStr("12346"), url, tuple(form.items()), _TWILIO_EXAMPLE)


_TWILIO_EXAMPLE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_every_step_has_a_model() -> None:
    status = CallStatusChanged.model_validate(
        call_form(CallStatus="completed", CallDuration="42", SequenceNumber="3")
    )
    recording = RecordingDone.model_validate(
        call_form(
            CallStatus="in-progress",
            RecordingUrl="https://api.twilio.com/recordings/RE1",
            RecordingDuration="12",
            Digits="hangup",
        )
    )

    assert status.call_duration == 42
    assert status.sequence_number == 3
    assert recording.recording_duration == 12
    assert recording.digits == "hangup"

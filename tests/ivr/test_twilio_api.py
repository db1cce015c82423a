"""Redirecting a live call through the Calls API (app/ivr/twilio_api.py), against a stand-in
that speaks Twilio's wire format on a loopback port (tests/ivr/twilio_standin.py)."""

from __future__ import annotations

import base64
import io
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from pydantic import SecretStr

from app.core.settings import Settings
from app.ivr.actions import Connect
from app.ivr.twilio_api import (
    TWIML_MAX_CHARS,
    CallsApiRequest,
    TwilioAccount,
    TwilioApiError,
    redirect_call_request,
    send_calls_api_request,
)
from app.ivr.twiml import CallbackUrls, render_twiml
from tests.ivr.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, CALL_SID, TwilioStandIn

BRIDGE = render_twiml(
    [Connect(endpoint="client:mei")], CallbackUrls("https://cc.example.com", "c-1", turn=7)
)


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    with TwilioStandIn.running() as running:
        yield running


def _account(standin: TwilioStandIn, token: str = AUTH_TOKEN) -> TwilioAccount:
    return TwilioAccount(standin.base_url, ACCOUNT_SID, SecretStr(token))


def test_the_request_is_built_without_sending_and_without_credentials() -> None:
    account = TwilioAccount("https://api.twilio.com", ACCOUNT_SID, SecretStr(AUTH_TOKEN))

    request = redirect_call_request(account, CALL_SID, twiml=BRIDGE)

    assert request.method == "POST"
    assert request.url == (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
    )
    assert request.form == {"Twiml": BRIDGE}
    stored = request.model_dump_json()  # what the outbox keeps
    assert AUTH_TOKEN not in stored
    assert CallsApiRequest.model_validate_json(stored) == request


def test_a_redirect_to_a_url_and_the_request_s_limits() -> None:
    account = TwilioAccount("https://api.twilio.com", ACCOUNT_SID, SecretStr(AUTH_TOKEN))

    by_url = redirect_call_request(account, CALL_SID, url="https://cc.example.com/twiml")
    odd_sid = redirect_call_request(account, "../../Accounts/AC1", twiml="<Response/>")

    assert by_url.form == {"Url": "https://cc.example.com/twiml", "Method": "POST"}
    assert odd_sid.url.endswith("/Calls/..%2F..%2FAccounts%2FAC1.json")  # stays in its path
    with pytest.raises(ValueError, match="one of the two"):
        redirect_call_request(account, CALL_SID)
    with pytest.raises(ValueError, match="one of the two"):
        redirect_call_request(account, CALL_SID, twiml="<Response/>", url="https://x")
    with pytest.raises(ValueError, match=str(TWIML_MAX_CHARS)):
        redirect_call_request(account, CALL_SID, twiml="<Response>" + " " * 4000 + "</Response>")


def test_the_account_comes_from_the_settings_when_both_are_set() -> None:
    both = Settings(
        environment="test",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_url="http://127.0.0.1:9/",
    )

    account = TwilioAccount.from_settings(both)
    assert account is not None
    assert (account.api_url, account.account_sid) == ("http://127.0.0.1:9", ACCOUNT_SID)
    assert account.auth_token.get_secret_value() == AUTH_TOKEN
    assert TwilioAccount.from_settings(Settings(environment="test")) is None
    assert AUTH_TOKEN not in repr(account)


async def test_a_redirect_reaches_twilio_with_basic_auth_and_the_twiml(
    standin: TwilioStandIn,
) -> None:
    account = _account(standin)

    answer = await send_calls_api_request(
        account, redirect_call_request(account, CALL_SID, twiml=BRIDGE)
    )

    assert answer.status_code == 200
    assert answer.call["sid"] == CALL_SID
    assert answer.call["status"] == "in-progress"
    [got] = standin.requests
    assert (got.method, got.account_sid, got.call_sid) == ("POST", ACCOUNT_SID, CALL_SID)
    assert got.username == ACCOUNT_SID
    assert got.authenticated
    dial = ET.fromstring(got.form["Twiml"]).find("Dial")  # noqa: S314 -- our own TwiML
    assert dial is not None
    assert dial.findtext("Client") == "mei"


async def test_a_shared_client_sends_the_same(standin: TwilioStandIn) -> None:
    account = _account(standin)
    async with httpx.AsyncClient() as client:
        answer = await send_calls_api_request(
            account, redirect_call_request(account, CALL_SID, twiml=BRIDGE), client=client
        )

    assert answer.status_code == 200
    assert standin.requests[0].authenticated


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [("wrong token", 401, 20003), ("another account", 404, 20404), ("call ended", 400, 21220)],
)
async def test_a_refusal_is_final_and_says_why(
    standin: TwilioStandIn, case: str, status: int, code: int
) -> None:
    account = _account(standin, "not-the-token" if case == "wrong token" else AUTH_TOKEN)
    # Right credentials, and a URL that names an account they are not: Twilio's 404.
    named = replace(account, account_sid="AC" + "9" * 32) if case == "another account" else account
    request = redirect_call_request(named, CALL_SID, twiml=BRIDGE)
    if case == "call ended":
        standin.end_call(CALL_SID)

    with pytest.raises(TwilioApiError) as refused:
        await send_calls_api_request(account, request)

    assert (refused.value.status_code, refused.value.twilio_code) == (status, code)
    assert not refused.value.retryable


async def test_an_unknown_call_is_a_404() -> None:
    with TwilioStandIn.running(known_calls={CALL_SID}) as strict:
        account = _account(strict)
        with pytest.raises(TwilioApiError) as refused:
            await send_calls_api_request(
                account, redirect_call_request(account, "CA" + "7" * 32, twiml=BRIDGE)
            )
        await send_calls_api_request(
            account, redirect_call_request(account, CALL_SID, twiml=BRIDGE)
        )

    assert refused.value.status_code == 404


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (429, 3)])
async def test_twilio_s_trouble_is_retryable_and_the_next_try_goes_through(
    standin: TwilioStandIn, status: int, retry_after: int | None
) -> None:
    account = _account(standin)
    request = redirect_call_request(account, CALL_SID, twiml=BRIDGE)
    standin.fail_next(status, retry_after=retry_after)

    with pytest.raises(TwilioApiError) as failed:
        await send_calls_api_request(account, request)
    answer = await send_calls_api_request(account, request)

    assert failed.value.status_code == status
    assert failed.value.retryable
    assert failed.value.retry_after == retry_after
    assert answer.status_code == 200
    assert len(standin.requests) == 2


async def test_no_answer_is_retryable() -> None:
    with socket.socket() as listener:  # a port that takes no connection: nothing listens
        listener.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{listener.getsockname()[1]}"
    account = TwilioAccount(closed, ACCOUNT_SID, SecretStr(AUTH_TOKEN))

    with pytest.raises(TwilioApiError) as failed:
        await send_calls_api_request(
            account, redirect_call_request(account, CALL_SID, twiml=BRIDGE)
        )

    assert failed.value.status_code is None
    assert failed.value.retryable


async def test_the_credentials_go_only_to_the_configured_api(standin: TwilioStandIn) -> None:
    elsewhere = CallsApiRequest(url=f"{standin.base_url}.evil.example/x", form={"Twiml": "x"})
    other_host = CallsApiRequest(url="http://127.0.0.1:9/2010-04-01/x.json", form={})

    for request in (elsewhere, other_host):
        with pytest.raises(ValueError, match="not sending"):
            await send_calls_api_request(_account(standin), request)
    assert standin.requests == []


async def test_no_auth_token_in_any_log_line_or_error(
    standin: TwilioStandIn, log_lines: io.StringIO
) -> None:
    account = _account(standin)
    request = redirect_call_request(account, CALL_SID, twiml=BRIDGE)
    errors = []
    await send_calls_api_request(account, request)
    standin.fail_next(500)
    for attempt in (account, _account(standin, AUTH_TOKEN + "x")):
        try:
            await send_calls_api_request(attempt, request)
        except TwilioApiError as error:
            errors.append(f"{error!s} {error!r}")
    standin.end_call(CALL_SID)
    try:
        await send_calls_api_request(account, request)
    except TwilioApiError as error:
        errors.append(str(error))

    assert len(errors) == 3
    lines = log_lines.getvalue()
    assert "Twilio refused a request" in lines
    assert "Twilio took a request" in lines
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert AUTH_TOKEN not in lines
    assert basic not in lines
    assert not [error for error in errors if AUTH_TOKEN in error or basic in error]


async def test_the_standin_refuses_what_twilio_refuses(standin: TwilioStandIn) -> None:
    """The stand-in is a strict Twilio: a bad request to it fails, as it would at Twilio."""
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    async with httpx.AsyncClient(base_url=standin.base_url) as client:
        no_auth = await client.post(path, data={"Twiml": "<Response/>"})
        nothing = await client.post(path, data={}, auth=auth)
        not_xml = await client.post(path, data={"Twiml": "<Response>"}, auth=auth)
        other_path = await client.post("/2010-04-01/Accounts", data={}, auth=auth)
        fetched = await client.get(path, auth=auth)

    assert no_auth.status_code == 401
    assert no_auth.json()["code"] == 20003
    assert "Basic" in no_auth.headers["WWW-Authenticate"]
    assert (nothing.status_code, nothing.json()["code"]) == (400, 21205)
    assert (not_xml.status_code, not_xml.json()["code"]) == (400, 12100)
    assert other_path.status_code == 404
    assert fetched.status_code == 405
    assert len(standin.until_requests(5)) == 5

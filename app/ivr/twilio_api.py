"""Twilio's Calls REST API, out: redirect a live call to new TwiML (bridge it to an agent).

A caller waits in our wait loop (app/ivr/twiml.py's Hold); when an agent accepts, we do not
wait for the loop to come back: the live call is told at once to follow new TwiML, with
`POST {api}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` and `Twiml=` (or `Url=`),
HTTP basic auth with the account SID and the auth token.

Building a request and sending it are apart: the outbox (issue 14) stores what to send in the
transaction that decided it and sends it after the commit, retrying with backoff. A stored
request holds no credentials: they are added when it is sent, from the settings, and only to
the configured API's own URL. httpx sends (Twilio's own REST client is not used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.logging import get_logger
from app.core.outbox import Outgoing, enqueue_in, http_message
from app.core.settings import Settings
from app.ivr.actions import Action
from app.ivr.twiml import CallbackUrls, render_twiml

log = get_logger(__name__)

API_VERSION = "2010-04-01"
# Twilio refuses a `Twiml` parameter longer than this.
TWIML_MAX_CHARS = 4000
SEND_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class TwilioAccount:
    """Where the Calls API is and who we are there."""

    api_url: str
    account_sid: str
    auth_token: SecretStr

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioAccount | None:
        """The account the settings name; None unless CC_TWILIO_ACCOUNT_SID and
        CC_TWILIO_AUTH_TOKEN are both set."""
        if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
            return None
        return cls(settings.twilio_api_url, settings.twilio_account_sid, settings.twilio_auth_token)


class CallsApiRequest(BaseModel):
    """An HTTP request to the Calls API, to send later: JSON for the outbox's row. No
    credentials: `send_calls_api_request` adds them."""

    model_config = ConfigDict(frozen=True)

    method: Literal["POST"] = "POST"
    url: str
    form: dict[str, str]


class CallsApiAnswer(BaseModel):
    """Twilio's answer to a request it took: its status and the call resource (JSON)."""

    status_code: int
    call: dict[str, Any]


class TwilioApiError(Exception):
    """Twilio refused the request, or could not be reached. `retryable`: a later try may
    succeed (429, 5xx, no answer); `retry_after`: seconds Twilio asked us to wait."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None,
        twilio_code: int | None = None,
        retryable: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.twilio_code = twilio_code
        self.retryable = retryable
        self.retry_after = retry_after


def call_url(account: TwilioAccount, call_sid: str) -> str:
    """The call resource's URL (the account and call quoted: no id reaches another path)."""
    account_part, call_part = quote(account.account_sid, safe=""), quote(call_sid, safe="")
    return f"{account.api_url}/{API_VERSION}/Accounts/{account_part}/Calls/{call_part}.json"


def redirect_call_request(
    account: TwilioAccount, call_sid: str, *, twiml: str | None = None, url: str | None = None
) -> CallsApiRequest:
    """The request that has the live call `call_sid` follow `twiml` (a TwiML document, such
    as render_twiml([Connect(...)], ...)) or fetch its TwiML from `url`; one of the two."""
    if (twiml is None) == (url is None):
        raise ValueError("redirect a call to TwiML or to a URL: one of the two")
    if twiml is not None and len(twiml) > TWIML_MAX_CHARS:
        raise ValueError(f"Twilio takes at most {TWIML_MAX_CHARS} characters of TwiML")
    form = {"Twiml": twiml} if twiml is not None else {"Url": str(url), "Method": "POST"}
    return CallsApiRequest(url=call_url(account, call_sid), form=form)


def place_call_request(
    account: TwilioAccount, *, to: str, from_: str, twiml: str
) -> CallsApiRequest:
    """The request that places a new call from `from_` (a number of the account's) to `to`,
    which follows `twiml` once answered: a callback that rings the agent when the customer
    picks up."""
    account_part = quote(account.account_sid, safe="")
    url = f"{account.api_url}/{API_VERSION}/Accounts/{account_part}/Calls.json"
    return CallsApiRequest(url=url, form={"To": to, "From": from_, "Twiml": twiml})


def calls_api_message(
    account: TwilioAccount, request: CallsApiRequest, *, dedupe_key: str, call_id: object
) -> Outgoing:
    """`request` as an outbox message for the `twilio` sender (which adds the credentials):
    its URL a path under the API's."""
    return http_message(
        sender="twilio",
        method=request.method,
        url=request.url.removeprefix(account.api_url),
        form=request.form,
        dedupe_key=dedupe_key,
        subject_type="call",
        subject_id=call_id,
    )


def redirect_message(
    account: TwilioAccount, call_sid: str, twiml: str, *, dedupe_key: str, call_id: object
) -> Outgoing:
    """The outbox message that redirects the live call `call_sid` to `twiml`, for the outbox's
    `twilio` sender (which adds the credentials): its URL is a path under the API's."""
    request = redirect_call_request(account, call_sid, twiml=twiml)
    return calls_api_message(account, request, dedupe_key=dedupe_key, call_id=call_id)


async def redirect_live_call(
    session: AsyncSession,
    settings: Settings,
    call_id: object,
    call_sid: str,
    answer: TurnAnswer,
    *,
    dedupe_key: str,
) -> bool:
    """Have the live call follow `answer` at once, through the outbox: written in the session's
    transaction (with the decision), sent after its commit, retried, visible when it fails.
    Without an account and a public URL nothing can be sent (False): the wait loop's next
    round gives the same answer, late."""
    account = TwilioAccount.from_settings(settings)
    base = settings.public_base_url
    if account is None or base is None:
        log.warning(
            "cannot redirect a Twilio call: CC_TWILIO_ACCOUNT_SID, CC_TWILIO_AUTH_TOKEN and "
            "CC_PUBLIC_BASE_URL are needed; the wait loop connects it at its next round",
            call_id=str(call_id),
        )
        return False
    twiml = render_twiml(answer.actions, CallbackUrls(base, str(call_id), turn=answer.turn))
    message = redirect_message(account, call_sid, twiml, dedupe_key=dedupe_key, call_id=call_id)
    await enqueue_in(session, message)
    return True


class TurnAnswer(Protocol):
    """A turn's answer (app/ivr/call_records.py's `Answer`)."""

    @property
    def actions(self) -> Sequence[Action]: ...

    @property
    def turn(self) -> int: ...


async def send_calls_api_request(
    account: TwilioAccount,
    request: CallsApiRequest,
    *,
    client: httpx.AsyncClient | None = None,
    answer_within: float = SEND_TIMEOUT_SECONDS,
) -> CallsApiAnswer:
    """Send `request` with the account's credentials: Twilio's answer, or TwilioApiError
    (Twilio refused it, or gave no answer within `answer_within` seconds)."""
    if not request.url.startswith(f"{account.api_url}/"):
        # A stored request names its URL; the token goes only to the API the settings name.
        raise ValueError(f"{request.url} is not under {account.api_url}: not sending it there")
    auth = httpx.BasicAuth(account.account_sid, account.auth_token.get_secret_value())
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=answer_within) as own:
                response = await own.request(
                    request.method, request.url, data=request.form, auth=auth
                )
        else:
            response = await client.request(
                request.method, request.url, data=request.form, auth=auth, timeout=answer_within
            )
    except httpx.HTTPError as error:  # no answer: the message names the URL, never the auth
        log.warning("Twilio unreachable", url=request.url, error=type(error).__name__)
        raise TwilioApiError(
            f"Twilio did not answer {request.method} {request.url}: {type(error).__name__}",
            status_code=None,
            retryable=True,
        ) from None
    if response.is_success:
        log.info("Twilio took a request", url=request.url, status=response.status_code)
        return CallsApiAnswer(status_code=response.status_code, call=_json(response))
    raise _refusal(request, response)


def _refusal(request: CallsApiRequest, response: httpx.Response) -> TwilioApiError:
    body = _json(response)
    code = body.get("code") if isinstance(body.get("code"), int) else None
    message = str(body.get("message") or response.reason_phrase)
    retryable = response.status_code == 429 or response.status_code >= 500
    retry_after = response.headers.get("Retry-After", "")
    log.warning(
        "Twilio refused a request",
        url=request.url,
        status=response.status_code,
        twilio_code=code,
        message=message,
    )
    return TwilioApiError(
        f"Twilio answered {response.status_code} (code {code}): {message}",
        status_code=response.status_code,
        twilio_code=code,
        retryable=retryable,
        retry_after=float(retry_after) if retry_after.isdigit() else None,
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

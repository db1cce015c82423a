"""Twilio, for the tests: a real HTTP server speaking the Calls API's wire format, and requests
signed the way Twilio signs its webhooks.

Twilio is unreachable from here, so `TwilioStandIn` stands in for `api.twilio.com` on a
loopback port: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` (redirect a live
call) and `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (place a call: 201), form-encoded,
HTTP basic auth (the account SID and the auth token), answered as Twilio answers: the call
resource as JSON (200), or an error body `{"code", "message", "more_info", "status"}` with
401 (bad credentials), 404 (another account, or a call it does not know), 400 (a call that
has ended: 21220; neither `Url` nor `Twiml`; TwiML that is not XML), 405 (another method).
It records every request it got, and can be told to fail the next ones (500, 429) for the
outbox's retries.

`twilio_signature` and `post_signed` sign a webhook with Twilio's own
`RequestValidator.compute_signature`, over the URL Twilio would have requested.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from app.ivr.twilio import SIGNATURE_HEADER

# Shaped like Twilio's (AC/CA and 32 hex digits); the token is a test's own.
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f00dfacecafe" + "5ec2e7" * 3 + "0ff1ce"
CALL_SID = "CA" + "fedcba9876543210" * 2

_CALL_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)\.json")
_CALLS_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Calls\.json")  # placing a new call

Form = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the stand-in got: what was asked, of which call, with which fields. The
    password is never kept, only whether it was right."""

    method: str
    path: str
    account_sid: str | None
    call_sid: str | None
    form: dict[str, str]
    username: str | None
    authenticated: bool


@dataclass
class _Script:
    failures: list[tuple[int, int | None]] = field(default_factory=list)  # status, Retry-After
    ended: set[str] = field(default_factory=set)
    known: set[str] | None = None  # None: every call is a live one
    received: list[ReceivedRequest] = field(default_factory=list)


class TwilioStandIn:
    """The Calls API on a loopback port; `base_url` goes in CC_TWILIO_API_URL."""

    def __init__(
        self,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        *,
        known_calls: set[str] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = ""
        self._script = _Script(known=known_calls)
        self._changed = threading.Condition()

    @classmethod
    @contextlib.contextmanager
    def running(
        cls,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        *,
        known_calls: set[str] | None = None,
    ) -> Iterator[TwilioStandIn]:
        standin = cls(account_sid, auth_token, known_calls=known_calls)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(standin))
        server.daemon_threads = True
        standin.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield standin
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    # What the test tells it.

    def fail_next(self, status: int, *, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `times` requests with `status` (500, 503, 429), whatever they are."""
        with self._changed:
            self._script.failures.extend([(status, retry_after)] * times)

    def end_call(self, call_sid: str) -> None:
        """The call is over: redirecting it is refused from now on (400, code 21220)."""
        with self._changed:
            self._script.ended.add(call_sid)

    # What the test reads.

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._changed:
            return list(self._script.received)

    def until_requests(self, count: int, *, within: float = 10.0) -> list[ReceivedRequest]:
        """The requests once there are at least `count` (blocking; AssertionError if not)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self._script.received) >= count, within)
            if not arrived:
                raise AssertionError(
                    f"the Twilio stand-in got {len(self._script.received)} requests, not {count}"
                )
            return list(self._script.received)

    async def received(self, count: int, *, within: float = 10.0) -> list[ReceivedRequest]:
        """`until_requests`, for async tests (waits in a thread, not on the event loop)."""
        return await asyncio.to_thread(self.until_requests, count, within=within)

    # The server's side.

    def _answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        username, authenticated = self._credentials(headers.get("Authorization", ""))
        found = _CALL_PATH.fullmatch(path)
        account_sid, call_sid = found.groups() if found else (None, None)
        placing = _CALLS_PATH.fullmatch(path)
        if placing is not None:
            account_sid = placing.group(1)
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        with self._changed:
            self._script.received.append(
                ReceivedRequest(method, path, account_sid, call_sid, form, username, authenticated)
            )
            failure = self._script.failures.pop(0) if self._script.failures else None
            ended = call_sid in self._script.ended
            known = self._script.known is None or call_sid in self._script.known
            self._changed.notify_all()
        if failure is not None:
            status, retry_after = failure
            headers_out = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return (
                status,
                headers_out,
                _error(status, 20000 + status, "The stand-in was told to fail"),
            )
        if not authenticated:
            return (
                401,
                {"WWW-Authenticate": 'Basic realm="Twilio API"'},
                _error(401, 20003, "Authenticate"),
            )
        if placing is not None and account_sid == self.account_sid and method == "POST":
            return self._place(account_sid, form)
        if found is None or account_sid != self.account_sid or not known or call_sid is None:
            return 404, {}, _error(404, 20404, f"The requested resource {path} was not found")
        if method != "POST":
            return 405, {}, _error(405, 20004, "Method not allowed")
        return self._redirect(account_sid, call_sid, form, ended=ended)

    def _redirect(
        self, account_sid: str, call_sid: str, form: dict[str, str], *, ended: bool
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if ended:
            return 400, {}, _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if "Twiml" not in form and "Url" not in form:
            return 400, {}, _error(400, 21205, "Url or Twiml parameter is required")
        if "Twiml" in form:
            try:
                ET.fromstring(form["Twiml"])  # noqa: S314 -- our own TwiML, in a test
            except ET.ParseError:
                return 400, {}, _error(400, 12100, "Document parse failure")
        return 200, {}, _call_resource(account_sid, call_sid)

    def _place(
        self, account_sid: str, form: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """A new outbound call (a callback): 201 with its resource, as Twilio answers."""
        for needed in ("To", "From"):
            if not form.get(needed):
                return 400, {}, _error(400, 21201, f"No '{needed}' number is specified")
        if "Twiml" not in form and "Url" not in form:
            return 400, {}, _error(400, 21205, "Url or Twiml parameter is required")
        placed = "CA" + uuid.uuid4().hex
        return (
            201,
            {},
            {**_call_resource(account_sid, placed), "to": form["To"], "from": form["From"]},
        )

    def _credentials(self, header: str) -> tuple[str | None, bool]:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None, False
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, False
        right = hmac.compare_digest(username, self.account_sid) and hmac.compare_digest(
            password.encode(), self.auth_token.encode()
        )
        return username, right


def _handler_for(standin: TwilioStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = standin._answer(
                self.command, self.path, dict(self.headers.items()), body
            )
            encoded = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(encoded)

        do_POST = do_GET = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads `requests`, not stderr."""

    return Handler


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _call_resource(account_sid: str, call_sid: str) -> dict[str, Any]:
    """The call as Twilio's API shows it (the fields a redirect's answer carries)."""
    now = format_datetime(datetime.now(UTC), usegmt=True)
    uri = f"/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json"
    return {
        "sid": call_sid,
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "date_created": now,
        "date_updated": now,
        "start_time": now,
        "end_time": None,
        "direction": "inbound",
        "from": "+8613800138000",
        "to": "+864000000000",
        "status": "in-progress",
        "duration": None,
        "parent_call_sid": None,
        "answered_by": None,
        "uri": uri,
    }


# Webhooks signed as Twilio signs them.


def twilio_signature(auth_token: str, url: str, form: Form) -> str:
    """The `X-Twilio-Signature` Twilio sends with `form` posted to `url` (the URL it requested)."""
    signature: str = RequestValidator(auth_token).compute_signature(url, ImmutableMultiDict(form))
    return signature


def call_form(call_sid: str = CALL_SID, **fields: str) -> dict[str, str]:
    """The fields Twilio posts for an inbound call, `fields` added or replacing them."""
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": "+864000000000",
        "Caller": "+8613800138000",
        "Direction": "inbound",
        "From": "+8613800138000",
        "FromCountry": "CN",
        "To": "+864000000000",
        "ToCountry": "CN",
    }
    form.update(fields)
    return form


async def post_signed(
    client: httpx.AsyncClient,
    path: str,
    form: Form,
    *,
    public_base_url: str,
    auth_token: str = AUTH_TOKEN,
) -> httpx.Response:
    """POST `form` to `path` (query included) as Twilio does, signed over the public URL
    `public_base_url + path` that Twilio would have requested (the client's own base URL is
    where the app really listens, behind the "proxy")."""
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    signature = twilio_signature(auth_token, f"{public_base_url}{path}", pairs)
    return await client.post(
        path,
        content=urlencode(pairs),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: signature,
        },
    )

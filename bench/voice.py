"""The voice phase: calls arriving through Twilio's signed webhook, placed as Twilio places them.

Twilio is unreachable here, so the benchmark plays both of its parts:

- `Line`, the phone network. Each call is a task that posts the number's voice URL
  (`/v1/voice/twilio/incoming`), signed as Twilio signs (`X-Twilio-Signature`: HMAC-SHA1 with
  the auth token over the public URL and the form, by Twilio's own `RequestValidator`), then
  follows the TwiML it is answered with: it holds (the wait loop's pause, then its `<Redirect>`)
  until the live call is redirected to an agent, rings the agent (the `<Dial>` noun's status
  callback: the agent picked up), talks for an exponential time and hangs up (the `<Dial>`'s
  action with `DialCallStatus=completed`, then the number's status callback with
  `CallStatus=completed`).
- `CallsApi`, Twilio's Calls REST API on a loopback port (the server's `CC_TWILIO_API_URL`).
  When an agent accepts a call, the server's outbox redirects the live call to the agent with
  `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` (basic auth, the `<Dial>` in
  `Twiml`); it is answered 200 with the call resource as JSON, and the TwiML goes to the call.

The desks (bench/agents.py) accept the offers; the talk's end puts the agent in wrap-up, which
the desk ends at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import random
import re
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
from twilio.request_validator import RequestValidator

from bench import load
from bench.agents import Fleet
from bench.http import HttpError, Pool
from bench.load import poisson
from bench.stats import summary_ms

# What an integrator types into Twilio's console for the number (docs/telephony.md), and the
# URL the benchmark's "proxy" stands for: Twilio signs the URL it requested, not the one the
# server listens on.
PUBLIC_BASE_URL = "https://cc.bench.example"
INCOMING_PATH = "/v1/voice/twilio/incoming"
STATUS_PATH = "/v1/voice/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
DIALLED_NUMBER = "+864000000000"
# A `<Pause>` with no length is a second; the wait loop always gives one.
DEFAULT_PAUSE_SECONDS = 1.0
_CALL_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/Calls/([^/]+)\.json")


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """The account the server is told to use (its CC_TWILIO_* settings), made up for the run."""

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))

    def server_env(self, api_url: str) -> dict[str, str]:
        return {
            "CC_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "CC_TWILIO_ACCOUNT_SID": self.account_sid,
            "CC_TWILIO_AUTH_TOKEN": self.auth_token,
            "CC_TWILIO_API_URL": api_url,
        }


# Twilio's Calls API, standing in.


@dataclass
class CallsApi:
    """`POST /2010-04-01/Accounts/{sid}/Calls/{sid}.json` on a loopback port, as Twilio answers
    it: 401 without the account's credentials, 404 for another account or path, 400 without
    `Twiml` or `Url`, else 200 and the call resource. Keep-alive HTTP/1.1, in the benchmark's
    own event loop: every redirect is handed to `listener` (CallSid, TwiML) as it arrives."""

    account: TwilioAccount
    listener: Callable[[str, str], None] | None = None
    port: int = 0
    redirects: Counter[str] = field(default_factory=Counter)  # by CallSid
    first_redirect: dict[str, float] = field(default_factory=dict)  # CallSid -> perf_counter
    refused: Counter[str] = field(default_factory=Counter)  # by status
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)  # the server's connections

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening, and close the connections the server keeps alive (their handlers
        end at the end of the stream)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, _ = head[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in head[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, payload = self._answer(method, target, headers, body)
                encoded = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(encoded)}\r\n\r\n".encode("latin-1")
                    + encoded
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except ValueError:  # no HTTP request line: nothing to answer
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    def _answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        path = urlsplit(target).path
        found = _CALL_PATH.fullmatch(path)
        if not self._authenticated(headers.get("authorization", "")):
            return self._refuse(401, 20003, "Authenticate")
        if found is None or found.group(1) != self.account.account_sid or method != "POST":
            return self._refuse(404, 20404, f"The requested resource {path} was not found")
        form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        if "Twiml" not in form and "Url" not in form:
            return self._refuse(400, 21205, "Url or Twiml parameter is required")
        call_sid = found.group(2)
        self.redirects[call_sid] += 1
        self.first_redirect.setdefault(call_sid, time.perf_counter())
        if self.listener is not None and "Twiml" in form:
            self.listener(call_sid, form["Twiml"])
        return 200, {
            "sid": call_sid,
            "account_sid": self.account.account_sid,
            "api_version": "2010-04-01",
            "direction": "inbound",
            "status": "in-progress",
            "uri": path,
        }

    def _authenticated(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return False
        return hmac.compare_digest(username, self.account.account_sid) and hmac.compare_digest(
            password, self.account.auth_token
        )

    def _refuse(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        self.refused[str(status)] += 1
        return status, {"code": code, "message": message, "status": status}


# The phone network.


@dataclass(slots=True)
class Call:
    sid: str
    phase: str
    caller: str
    sent: float  # perf_counter when the call was due (open loop, as the interactions)
    sent_wall: float
    redirected: asyncio.Future[str]  # the TwiML of the Calls API's redirect, once it comes
    answered: float | None = None  # perf_counter of the incoming webhook's answer
    status: int | None = None  # its HTTP status
    connected_by: str | None = None  # "bridge" (the Calls API) or "wait loop" (its redirect)
    ended: bool = False  # hung up after the talk, every webhook answered as Twilio expects


@dataclass(frozen=True, slots=True)
class Webhook:
    """One webhook the line posted: its step, how long its answer took, and its status."""

    phase: str
    step: str  # incoming, hold, answered, dial, status
    seconds: float
    status: int


@dataclass
class Line:
    """Twilio's side of every call: places calls at a Poisson rate and drives each to its end."""

    http: Pool
    account: TwilioAccount
    fleet: Fleet
    known_numbers: Sequence[str]  # customers' phones: most callers are known
    talk_mean: float
    seed: int = 7
    calls: dict[str, Call] = field(default_factory=dict)  # by CallSid
    webhooks: list[Webhook] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # non-2xx answers, broken TwiML
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._validator = RequestValidator(self.account.auth_token)
        self._unknown = 0

    def on_redirect(self, call_sid: str, twiml: str) -> None:
        """The Calls API redirected a live call (CallsApi's listener)."""
        call = self.calls.get(call_sid)
        if call is not None and not call.redirected.done():
            call.redirected.set_result(twiml)

    async def poisson(self, rate: float, seconds: float, phase: str) -> int:
        return await poisson(self.rng, rate, seconds, lambda: self.place(phase))

    def place(self, phase: str) -> str:
        """A new call now, from a known customer's phone or (one in five) an unknown one."""
        sid = "CA" + uuid.uuid4().hex
        if self.known_numbers and self.rng.random() < 0.8:
            caller = self.rng.choice(self.known_numbers)
        else:
            self._unknown += 1
            caller = f"+86137{self._unknown:08d}"
        loop = asyncio.get_running_loop()
        call = Call(sid, phase, caller, time.perf_counter(), time.time(), loop.create_future())
        self.calls[sid] = call
        self.fleet.live_calls.add(sid)
        task = loop.create_task(self._life(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return sid

    @property
    def in_progress(self) -> int:
        return len(self._tasks)

    async def settle(self, within: float) -> int:
        """Wait for the calls under way to end; returns how many were cut off."""
        return await load.settle(self._tasks, within)

    async def _life(self, call: Call) -> None:
        answer = await self._post(call, "incoming", INCOMING_PATH, self._form(call), due=call.sent)
        if answer is None:
            return
        dial = await self._hold(call, answer)
        if dial is not None:
            await self._talk(call, dial)

    async def _hold(self, call: Call, twiml: str) -> ET.Element | None:
        """Hold until the call is connected: the `<Dial>` of the Calls API's redirect, or of
        the wait loop's own answer when its redirect came first."""
        while True:
            document = _parsed(twiml)
            dial = next(document.iter("Dial"), None)
            if dial is not None:
                call.connected_by = "wait loop"
                return dial
            redirect = next(document.iter("Redirect"), None)
            if redirect is None or not redirect.text:
                self.failures["held call not kept waiting (no <Redirect>)"] += 1
                return None
            try:
                bridged = await asyncio.wait_for(asyncio.shield(call.redirected), _pause(document))
            except TimeoutError:
                form = self._form(call, CallStatus="in-progress")
                answer = await self._post(call, "hold", _path(redirect.text), form)
                if answer is None:
                    return None
                twiml = answer
                continue
            dial = next(_parsed(bridged).iter("Dial"), None)
            if dial is None:
                self.failures["redirect without <Dial>"] += 1
                return None
            call.connected_by = "bridge"
            return dial

    async def _talk(self, call: Call, dial: ET.Element) -> None:
        """The agent's leg answers, the two talk, the caller hangs up."""
        noun = next(iter(dial), None)
        if noun is None or "statusCallback" not in noun.attrib or "action" not in dial.attrib:
            self.failures["<Dial> without its callbacks"] += 1
            return
        leg = "CA" + uuid.uuid4().hex
        picked_up = self._form(call, CallSid=leg, ParentCallSid=call.sid, CallStatus="in-progress")
        picked_up["Direction"] = "outbound-dial"
        if (
            await self._post(call, "answered", _path(noun.attrib["statusCallback"]), picked_up)
            is None
        ):
            return
        talk = self.rng.expovariate(1.0 / self.talk_mean) if self.talk_mean > 0 else 0.0
        await asyncio.sleep(talk)
        seconds = str(round(talk))
        over = self._form(
            call,
            CallStatus="in-progress",
            DialCallStatus="completed",
            DialCallSid=leg,
            DialCallDuration=seconds,
        )
        goodbye = await self._post(call, "dial", _path(dial.attrib["action"]), over)
        if goodbye is None:
            return
        if next(_parsed(goodbye).iter("Hangup"), None) is None:
            self.failures["no <Hangup> after the talk"] += 1
        ended = self._form(call, CallStatus="completed", CallDuration=seconds)
        if await self._post(call, "status", STATUS_PATH, ended) is not None:
            call.ended = True

    def _form(self, call: Call, **fields: str) -> dict[str, str]:
        """The fields Twilio posts about an inbound call, `fields` added or replacing them."""
        form = {
            "AccountSid": self.account.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": "ringing",
            "Called": DIALLED_NUMBER,
            "Caller": call.caller,
            "Direction": "inbound",
            "From": call.caller,
            "To": DIALLED_NUMBER,
        }
        form.update(fields)
        return form

    async def _post(
        self, call: Call, step: str, path: str, form: dict[str, str], *, due: float | None = None
    ) -> str | None:
        """A signed webhook; its answer's body, or None when it was not a 2xx."""
        signature = self._validator.compute_signature(PUBLIC_BASE_URL + path, form)
        sent = time.perf_counter() if due is None else due
        try:
            answer = await self.http.send(
                path, urlencode(form).encode(), FORM, {SIGNATURE_HEADER: signature}
            )
        except HttpError as error:
            self.failures[f"{step}: {str(error).split(':', 1)[0]}"] += 1
            return None
        now = time.perf_counter()
        self.webhooks.append(Webhook(call.phase, step, now - sent, answer.status))
        if step == "incoming":
            call.answered, call.status = now, answer.status
        if not 200 <= answer.status < 300:
            self.failures[f"{step}: HTTP {answer.status}"] += 1
            return None
        return answer.body.decode()


def _parsed(twiml: str) -> ET.Element:
    return ET.fromstring(twiml)  # noqa: S314 -- the server's own TwiML, on loopback


def _pause(document: ET.Element) -> float:
    """How long Twilio holds the caller before following the wait loop's `<Redirect>`: the
    `<Pause>`'s length, or the `<Gather>`'s timeout when the loop listens for a key."""
    for element in document.iter():
        if element.tag == "Pause":
            return float(element.attrib.get("length", DEFAULT_PAUSE_SECONDS))
        if element.tag == "Gather" and "timeout" in element.attrib:
            return float(element.attrib["timeout"])
    return 0.0


def _path(url: str) -> str:
    """The path and query of a URL our TwiML handed out (Twilio requests it at the public base,
    which the benchmark's "proxy" forwards to the server)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# The figures.


def figures(
    line: Line, calls_api: CallsApi, fleet: Fleet, phase: str, fired: int
) -> dict[str, Any]:
    """The measured phase's latencies, and what became of every call the line placed."""
    measured = [call for call in line.calls.values() if call.phase == phase]
    answered = [c.answered - c.sent for c in measured if c.answered is not None and c.status == 200]
    offered = [fleet.offers[c.sid].received - c.sent for c in measured if c.sid in fleet.offers]
    bridged = [
        calls_api.first_redirect[sid] - accepted
        for sid, accepted in fleet.call_accepts.items()
        if sid in calls_api.first_redirect and line.calls[sid].phase == phase
    ]
    steps = sorted({w.step for w in line.webhooks})
    every = list(line.calls.values())
    return {
        "calls": fired,
        "webhook_answered_ms": summary_ms(answered, never=len(measured) - len(answered)),
        "call_to_offer_ms": summary_ms(offered, never=len(measured) - len(offered)),
        "accept_to_bridge_ms": summary_ms(bridged),
        "webhooks_ms": {
            step: summary_ms(
                [w.seconds for w in line.webhooks if w.step == step and w.phase == phase]
            )
            for step in steps
        },
        "webhooks_posted": len(line.webhooks),
        "webhook_answers": dict(Counter(str(w.status) for w in line.webhooks)),
        "webhook_failures": sum(1 for w in line.webhooks if not 200 <= w.status < 300),
        "line_failures": dict(line.failures),
        # Over every call placed (warm-up included), as the server's records count them.
        "placed": len(every),
        "offered": sum(1 for c in every if c.sid in fleet.offers),
        "accepted_by_desks": sum(1 for c in every if c.sid in fleet.call_accepts),
        "bridges_received": sum(calls_api.redirects.values()),
        "calls_bridged": len(calls_api.redirects),
        "calls_bridged_twice": sum(1 for n in calls_api.redirects.values() if n > 1),
        "bridge_refusals": dict(calls_api.refused),
        "connected_by": dict(Counter(str(c.connected_by) for c in every)),
        "ended": sum(1 for c in every if c.ended),
    }


async def server_side(dsn: str) -> dict[str, Any]:
    """What the server's records say of the calls: by phase and outcome, the acceptances, and
    the outbox's messages to Twilio by state."""
    connection = await asyncpg.connect(dsn)
    try:
        calls = await connection.fetch(
            "SELECT phase, coalesce(outcome, '-') AS outcome, count(*) AS n FROM calls "
            "GROUP BY 1, 2 ORDER BY 3 DESC"
        )
        accepted = await connection.fetchval(
            "SELECT count(DISTINCT e.subject_id) FROM events e "
            "JOIN calls c ON e.subject_id = c.interaction_id::text "
            "WHERE e.kind = 'interaction.assigned' AND e.subject_type = 'interaction'"
        )
        outbox = await connection.fetch(
            "SELECT state, count(*) AS n FROM outbox_messages WHERE sender = 'twilio' "
            "GROUP BY 1 ORDER BY 1"
        )
    finally:
        await connection.close()
    return {
        "calls": {f"{row['phase']} ({row['outcome']})": row["n"] for row in calls},
        "calls_accepted": int(accepted),
        "outbox_to_twilio": {row["state"]: row["n"] for row in outbox},
    }

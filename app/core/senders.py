"""Who delivers the outbox's messages: a registry of senders, by the name a message gives.

A sender knows one kind of request (`http` here; `mail`, app/core/smtp_sender.py) and one
destination with its credentials (the `twilio` sender: Twilio's REST API at `CC_TWILIO_API_URL`,
with the account's SID and auth token). Credentials live in the settings and in the sender, never
in a message: the row says "twilio", the sender adds the `Authorization` header when it sends.

A sender answers a message with `Delivered`, or raises `Transient` (worth another attempt: the
network, a 5xx, a 429, with the wait the other side asked for) or `Permanent` (the other side
refused this request and would refuse it again: any other 4xx). The courier
(app/core/courier.py) turns that into the message's next state. Whatever a sender says is
cleared of its secrets (`Senders.blank`) before it is stored or logged: a server that echoes our
credentials in an error page must not land them in the table.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from app.core.logging import BLANK, redact

# How much of an answer's body is kept with its error: enough to read why.
BODY_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message as a courier claimed it, for one attempt (`attempt` counts from 1)."""

    id: uuid.UUID
    kind: str
    sender: str
    request: dict[str, Any]
    dedupe_key: str
    subject_type: str
    subject_id: str
    attempt: int
    claim_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Delivered:
    """The other side took it: its answer's status (HTTP or SMTP), if any, and what it did not
    take, if anything (a relay that refused some of a mail's recipients)."""

    status: int | None = None
    detail: str | None = None


class SendFailed(Exception):
    """An attempt that failed: `detail` says how (with no secret), `status` is the answer's."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class Transient(SendFailed):
    """Worth trying again: after `retry_after` seconds if the other side said so."""

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, status=status)
        self.retry_after = retry_after


class Permanent(SendFailed):
    """Refused for good: the same request would be refused again."""


class Sender(Protocol):
    @property
    def name(self) -> str:
        """The name messages give (`twilio`)."""

    @property
    def kind(self) -> str:
        """The kind of request it sends (`http`, `mail`)."""

    @property
    def secrets(self) -> Sequence[str]:
        """Every string that must never be stored or logged (tokens, passwords, the headers
        made of them)."""

    async def send(self, message: Claimed) -> Delivered:
        """Deliver `message` once, or raise `Transient` or `Permanent`."""

    async def close(self) -> None: ...


class Senders:
    """The senders of this replica, by name."""

    def __init__(self, senders: Iterable[Sender] = ()) -> None:
        self._by_name: dict[str, Sender] = {}
        for sender in senders:
            if sender.name in self._by_name:
                raise ValueError(f"two senders named {sender.name}")
            self._by_name[sender.name] = sender

    @property
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def for_message(self, message: Claimed) -> Sender:
        """The sender the message names, or the `Permanent` failure that says why none."""
        sender = self._by_name.get(message.sender)
        if sender is None:
            configured = ", ".join(self.names) or "none"
            raise Permanent(
                f"no sender named {message.sender!r} is configured on this replica (configured:"
                f' {configured}); see docs/deployment.md, "The outbox"'
            )
        if sender.kind != message.kind:
            raise Permanent(f"sender {sender.name} sends {sender.kind}, not {message.kind}")
        return sender

    def blank(self, text: str) -> str:
        """`text` with every sender's secrets, and every secret the logs blank, blanked."""
        for sender in self._by_name.values():
            for secret in sender.secrets:
                if secret:
                    text = text.replace(secret, BLANK)
        return redact(text)

    async def close(self) -> None:
        for sender in self._by_name.values():
            await sender.close()


# Worth another attempt: the other side is busy, down or slow, not refusing this request.
TRANSIENT_STATUSES = frozenset({408, 429})


class HttpSender:
    """Sends `http` messages with httpx: the message's `url` is a path under `base_url` (a
    sender with a base URL refuses full URLs, which could carry its credentials elsewhere).
    `basic_auth` (a user and a password, from the settings) is added to every request."""

    kind = "http"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        auth = httpx.BasicAuth(*basic_auth) if basic_auth is not None else None
        self.secrets: tuple[str, ...] = _basic_auth_secrets(basic_auth)
        self._client = httpx.AsyncClient(
            base_url=self._base_url, auth=auth, timeout=timeout, transport=transport
        )

    async def send(self, message: Claimed) -> Delivered:
        request = message.request
        url = str(request["url"])
        if httpx.URL(url).is_absolute_url:
            raise Permanent(f"sender {self.name} sends only to paths under its base URL")
        headers = {"Idempotency-Key": str(message.id), **request.get("headers", {})}
        try:
            answer = await self._client.request(
                str(request["method"]),
                url,
                headers=headers,
                data=request.get("form"),
                json=request.get("json"),
            )
        except httpx.TransportError as error:
            raise Transient(f"{type(error).__name__}: {error}") from None
        return _judged(answer)

    async def close(self) -> None:
        await self._client.aclose()


def _basic_auth_secrets(basic_auth: tuple[str, str] | None) -> tuple[str, ...]:
    """The password, and the header value made of it (a server may echo either)."""
    if basic_auth is None:
        return ()
    encoded = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
    return (basic_auth[1], encoded)


def _judged(answer: httpx.Response) -> Delivered:
    """A 2xx is delivered; a 5xx, 429 or 408 is worth another attempt; any other is refused."""
    status = answer.status_code
    if answer.is_success:
        return Delivered(status=status)
    body = " ".join(answer.text[:BODY_EXCERPT].split())
    detail = f"{status} {answer.reason_phrase}" + (f": {body}" if body else "")
    if status >= 500 or status in TRANSIENT_STATUSES:
        wait = retry_after(answer.headers.get("Retry-After"), now=datetime.now(UTC))
        raise Transient(detail, status=status, retry_after=wait)
    raise Permanent(detail, status=status)


def retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (seconds, or an HTTP date), or None for none
    or one that cannot be read."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None

"""A real SMTP server on a loopback port that stands in for the mail relay: it records every
message it takes, with its envelope and bytes, and answers as a test scripts it.

Served by aiosmtpd's Controller in a thread of its own, as tests/core/http_receiver.py serves
its HTTP stand-in, so the test's event loop and the server's never wait on each other. A test
lines up refusals (`refuse_data`, `refuse_recipient`: a reply such as "451 4.3.0 Try later"),
may start it on a port chosen beforehand (a relay that is down, then comes up), and may have it
offer STARTTLS with a throwaway CA's certificate (`trustme`) and require AUTH.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.core.http_receiver import until

ACCEPTED = "250 2.0.0 Ok: queued"


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    recipients: list[str]
    content: bytes  # as it arrived after DATA, line endings and all
    tls: bool  # whether it came over STARTTLS
    login: str | None  # who authenticated, if anyone
    at: float  # time.monotonic() when it was taken


@dataclass(frozen=True)
class Refusal:
    step: str  # RCPT or DATA
    reply: str
    at: float


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Tls:
    """A throwaway CA and a certificate for 127.0.0.1 and localhost, signed by it."""

    def __init__(self) -> None:
        self._ca = trustme.CA()
        self._certificate = self._ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._certificate.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a client that trusts the throwaway CA (and only it) verifies with."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context


class Sink:
    def __init__(self, port: int) -> None:
        self.port = port
        self.deliveries: list[Delivery] = []
        self.refusals: list[Refusal] = []
        self._data_replies: deque[str] = deque()
        self._recipient_replies: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()

    @classmethod
    @contextlib.contextmanager
    def running(
        cls,
        port: int | None = None,
        *,
        tls: Tls | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> Iterator[Sink]:
        """Serve on `port` (a free one if None) until the block ends; with `tls`, STARTTLS is
        offered and required; with `credentials`, AUTH too (only over TLS, as a relay would)."""
        sink = cls(port if port is not None else free_port())
        options: dict[str, Any] = {}
        if tls is not None:
            options.update(tls_context=tls.server_context(), require_starttls=True)
        if credentials is not None:
            options.update(authenticator=_Authenticator(credentials), auth_required=True)
        # The relay's own log is not ours (it prints the conversation): keep it out of the
        # lines the tests read for our secrets.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        controller = Controller(
            _Handler(sink), hostname="127.0.0.1", port=sink.port, ready_timeout=10, **options
        )
        controller.start()
        try:
            yield sink
        finally:
            controller.stop()

    def refuse_data(self, *replies: str) -> None:
        """Answer the next messages' DATA so, in order; then take them."""
        with self._lock:
            self._data_replies.extend(replies)

    def refuse_recipient(self, address: str, *replies: str) -> None:
        """Answer the next RCPT TOs for `address` so, in order; then take them."""
        with self._lock:
            self._recipient_replies[address].extend(replies)

    def to(self, address: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if address in d.recipients]

    async def until_delivered(self, address: str, count: int = 1) -> list[Delivery]:
        """The messages for `address`, once there are `count` of them."""
        await until(lambda: len(self.to(address)) >= count, f"{count} mail(s) to {address}")
        return self.to(address)

    def _recipient(self, address: str) -> str:
        with self._lock:
            replies = self._recipient_replies[address]
            reply = replies.popleft() if replies else "250 2.1.5 Ok"
            if not reply.startswith("2"):
                self.refusals.append(Refusal("RCPT", reply, time.monotonic()))
            return reply

    def _data(self, envelope: Envelope, session: Session, tls: bool) -> str:
        with self._lock:
            if self._data_replies:
                reply = self._data_replies.popleft()
                self.refusals.append(Refusal("DATA", reply, time.monotonic()))
                return reply
            content = envelope.original_content or b""
            auth = session.auth_data
            login = auth.login.decode() if isinstance(auth, LoginPassword) else None
            self.deliveries.append(
                Delivery(
                    mail_from=envelope.mail_from or "",
                    recipients=list(envelope.rcpt_tos),
                    content=content,
                    tls=tls,
                    login=login,
                    at=time.monotonic(),
                )
            )
            return ACCEPTED


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._sink._recipient(address)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return reply

    async def handle_DATA(  # noqa: N802 (aiosmtpd's name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return self._sink._data(envelope, session, session.ssl is not None)


class _Authenticator:
    def __init__(self, credentials: tuple[str, str]) -> None:
        self._login, self._password = (part.encode() for part in credentials)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        right = (data.login, data.password) == (self._login, self._password)
        # Not handled: aiosmtpd answers 235, or 535 for the wrong password.
        return AuthResult(success=right, handled=False, auth_data=data if right else None)

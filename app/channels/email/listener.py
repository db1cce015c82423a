"""The SMTP listener mail for the support addresses comes in by (aiosmtpd's protocol, on the
app's own event loop, so it shares the replica's pools with everything else).

Started by main when the settings give it a port (`Settings.smtp_listener_port`: 2525 in
development, no listener in production unless CC_SMTP_PORT is set). The port is bound with
SO_REUSEPORT: several server processes on one host each bind it, and the kernel spreads the
connections. What it answers:

- `RCPT TO` a support address or a plus-addressed form of one (`support+<token>@`): 250;
  any other address: 550, so a mail server never takes on mail nobody here reads;
- `DATA` over CC_EMAIL_MAX_BYTES: 552 (aiosmtpd stops reading it); a message that cannot be
  parsed, or has no sender: 554; otherwise it is stored, committed, and only then 250
  (app/channels/email/inbound.py, which the inbound webhook calls too). A failure of ours
  (the database away) is 451: the sender's server tries again later, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import socket

from aiosmtpd.smtp import SMTP, Envelope, Session

from app.channels.email.inbound import MailIn, Refused
from app.core.logging import get_logger

log = get_logger(__name__)

# The reply texts carry RFC 3463 enhanced status codes, which mail servers log and show.
ENHANCED = {550: "5.1.1", 552: "5.3.4", 554: "5.6.0"}
CLOSE_TIMEOUT = 5.0


class MailHandler:
    """aiosmtpd's handler: each hook answers with the reply line it sends."""

    def __init__(self, mail_in: MailIn) -> None:
        self._mail_in = mail_in

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not await self._mail_in.accepts(address):
            return f"550 {ENHANCED[550]} no such support address here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        try:
            taken = await self._mail_in.take(
                raw, envelope_to=envelope.rcpt_tos, envelope_from=envelope.mail_from or ""
            )
        except Refused as refused:
            return f"{refused.code} {ENHANCED.get(refused.code, '5.0.0')} {_one_line(refused)}"
        except Exception:
            log.exception("email.smtp_failed", size=len(raw))
            return "451 4.3.0 not stored this time: please try again later"
        what = "a duplicate of" if taken.duplicate else "stored as"
        return f"250 2.0.0 {what} message {taken.message_id}"


def _one_line(refused: Refused) -> str:
    """A reply line: no line breaks, and short (a parser's message may be neither)."""
    return " ".join(refused.reason.split())[:400]


class SmtpListener:
    """The listening socket, on the app's loop: `start`, `port` (the one bound: 0 asks for a
    free one), `stop`."""

    def __init__(
        self, mail_in: MailIn, *, host: str, port: int, hostname: str | None = None
    ) -> None:
        self._mail_in = mail_in
        self._host = host
        self._port = port
        self._hostname = hostname or host
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the listener has not started"
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def start(self) -> None:
        handler = MailHandler(self._mail_in)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self._protocol(handler),
            host=self._host,
            port=self._port,
            reuse_port=hasattr(socket, "SO_REUSEPORT"),
            family=socket.AF_INET if ":" not in self._host else socket.AF_INET6,
        )
        log.info("email.smtp_listening", host=self._host, port=self.port)

    def _protocol(self, handler: MailHandler) -> SMTP:
        return SMTP(
            handler,
            data_size_limit=self._mail_in.max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._hostname,
            ident="contactcenter",
        )

    async def stop(self) -> None:
        """Stop listening; a conversation under way is cut (its sender tries again)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("email.smtp_close_timed_out")

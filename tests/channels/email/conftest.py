"""Mail in, tested over real sockets: the app's own SMTP listener on a free port (smtplib, in a
thread, talks to it while the test's loop serves it) and the inbound webhook."""

from __future__ import annotations

import asyncio
import re
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest
import websockets
from fastapi import FastAPI

from app.core.settings import Settings
from tests.desk.conftest import Desk
from tests.support import LiveServer

Headers = dict[str, str]
SUPPORT = "support@example.com"
# Small, so a message over it is cheap to send.
MAX_BYTES = 64 * 1024


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        load_demo=False,
        default_phone_region="CN",
        password_hashing="fast",
        smtp_port=0,
        smtp_host="127.0.0.1",
        email_max_bytes=MAX_BYTES,
    )


@dataclass(frozen=True)
class Delivery:
    """What the listener answered to a message: its reply code and text, and the command
    that had that answer (MAIL, RCPT, or DATA once all went through)."""

    code: int
    text: str
    stage: str = "DATA"


@dataclass(frozen=True)
class Mailbox:
    """The listener, and the support address's queue."""

    port: int
    queue_id: uuid.UUID

    async def send(
        self, message: EmailMessage | bytes, *, to: list[str] | None = None, sender: str = ""
    ) -> Delivery:
        """One SMTP conversation; the reply to DATA (or to what refused it first)."""
        raw = message if isinstance(message, bytes) else message.as_bytes()
        # On the wire every line ends in CRLF, as a mail server sends it.
        raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
        return await asyncio.to_thread(self._send, raw, to or [SUPPORT], sender)

    def _send(self, raw: bytes, to: list[str], sender: str) -> Delivery:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.ehlo()
            code, text = smtp.mail(sender or "someone@elsewhere.example")
            if code != 250:
                return Delivery(code, text.decode(), "MAIL")
            for recipient in to:
                code, text = smtp.rcpt(recipient)
                if code != 250:
                    return Delivery(code, text.decode(), "RCPT")
            code, text = smtp.data(raw)
            return Delivery(code, text.decode())


@pytest.fixture
async def mailbox(app: FastAPI, client: httpx.AsyncClient, admin: Headers) -> Mailbox:
    """The `general` queue, and support@example.com mapped to it."""
    queue = await client.post("/v1/queues", json={"name": "general"}, headers=admin)
    assert queue.status_code == 201, queue.text
    queue_id = uuid.UUID(queue.json()["id"])
    body = {"address": "Support@Example.com", "queue_id": str(queue_id)}
    added = await client.post("/v1/email/addresses", json=body, headers=admin)
    assert added.status_code == 201, added.text
    assert added.json()["address"] == SUPPORT
    return Mailbox(port=app.state.smtp_listener.port, queue_id=queue_id)


def mail(
    text: str = "My invoice is wrong.",
    *,
    sender: str = "Li Wei <li.wei@customer.example>",
    subject: str = "Invoice 42",
    to: str = SUPPORT,
    message_id: str | None = "",
    **headers: str,
) -> EmailMessage:
    """A plain message; `message_id` "" makes a fresh one, None leaves it out."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if message_id is not None:
        message["Message-ID"] = message_id or make_msgid(domain="customer.example")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


async def open_desk(
    client: httpx.AsyncClient,
    server: LiveServer | str,
    agent: Headers,
    last_event_id: int | None = None,
) -> Desk:
    """The agent's desk socket on `server` (a live server, or the base URL of one), past its
    hello and ready (the ticket is asked of `client`'s app: all serve the test's database)."""
    issued = await client.post("/v1/desk/tickets", headers=agent)
    assert issued.status_code == 201, issued.text
    base_url = server if isinstance(server, str) else server.base_url
    ws_url = base_url.replace("http://", "ws://")
    socket = await websockets.connect(f"{ws_url}/v1/desk/ws?ticket={issued.json()['ticket']}")
    desk = Desk(socket)
    await desk.send(type="hello", last_event_id=last_event_id)
    await desk.next("ready")
    return desk

"""Mail through the outbox on real parts: a real PostgreSQL, real couriers, and a real SMTP
server on a loopback port standing in for the relay (tests/core/smtp_sink.py).

What must hold: a mail written to the outbox reaches the relay with its envelope and its bytes
as written; a relay that is down, or answers 4xx, leaves it failed and tried again until it
takes it; a 5xx is final, with the relay's code and words kept (and shown in /v1/outbox); a
relay that takes some recipients and refuses others has sent it (a retry would send it twice),
the refusals kept beside it; the password crosses only over STARTTLS and reaches no row, error
or log line.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.channels.email.compose import SupportAddress, Thread, reply
from app.core import pg
from app.core.courier import OutboxCourier, RetryPolicy
from app.core.db import unit_of_work
from app.core.outbox import OutboxState, Outgoing, enqueue, enqueue_in, mail_message
from app.core.senders import Senders
from app.core.settings import Settings
from app.core.smtp_sender import SmtpSender
from app.main import outbox_senders
from tests.core.smtp_sink import Sink, Tls, free_port
from tests.core.test_outbox import until_state

SUPPORT = SupportAddress("support@example.com", "Billing support")
CUSTOMER = "mei@customer.example"
USER = "relay-user"
PASSWORD = "relay-pass-7Qx2vN9kLm4Rt8Wz"  # a shape the logs' own redaction does not know


def answer(number: int, *, to: str = CUSTOMER) -> EmailMessage:
    return reply(
        support=SUPPORT,
        customer=to,
        customer_name="Mei Lin",
        thread=Thread(
            token=f"tok{number:05d}", subject="My bill", answering=f"<m{number}@customer.example>"
        ),
        body="Your refund is on its way.\n",
    )


def mail(number: int, **envelope: Any) -> Outgoing:
    return mail_message(
        sender="smtp",
        message=answer(number),
        dedupe_key=f"reply:{number}",
        subject_type="interaction",
        subject_id=f"i-{number}",
        **envelope,
    )


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await pg.create_pool(database_url, size=4)
    yield opened
    await opened.close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink.running() as running:
        yield running


CourierFactory = Callable[..., Awaitable[OutboxCourier]]


@pytest.fixture
async def couriers(database_url: str) -> AsyncIterator[CourierFactory]:
    """Makes started couriers with one `smtp` sender; each is stopped at the end. They sweep
    once an hour: only a wake, or a retry of theirs coming due, sends."""
    made_here: list[OutboxCourier] = []

    async def make(sender: SmtpSender, *, first_delay: float = 0.05) -> OutboxCourier:
        made = OutboxCourier(
            database_url,
            Senders([sender]),
            policy=RetryPolicy(max_attempts=5, first_delay=first_delay, max_delay=5),
            send_timeout=5.0,
            sweep_every=3600,
            jitter=lambda: 1.0,
            stop_grace=0.1,
        )
        made_here.append(made)
        await made.start()
        return made

    yield make
    for made in made_here:
        await made.stop()


def plain(port: int) -> SmtpSender:
    """The sender for a local relay without TLS."""
    return SmtpSender("smtp", host="127.0.0.1", port=port, starttls=False, timeout=2.0)


async def write(pool: asyncpg.Pool, message: Outgoing) -> None:
    async with pg.transaction(pool) as connection:
        await enqueue(connection, message)


async def test_a_mail_in_the_outbox_reaches_the_relay_with_its_envelope_and_bytes(
    pool: asyncpg.Pool, couriers: CourierFactory, sink: Sink
) -> None:
    courier = await couriers(plain(sink.port))
    written = mail(1)
    await write(pool, written)
    courier.wake()
    [delivery] = await sink.until_delivered(CUSTOMER)
    sent = await until_state(pool, "reply:1", OutboxState.sent)
    assert (sent["attempts"], sent["last_status"], sent["last_error"]) == (1, 250, None)
    assert (sent["kind"], sent["sender"]) == ("mail", "smtp")
    assert (delivery.mail_from, delivery.recipients) == ("support@example.com", [CUSTOMER])
    assert not delivery.tls
    # The bytes as the row holds them, line ends aside (SMTP's are CRLF).
    assert delivery.content.replace(b"\r\n", b"\n") == written.request["message"].encode()
    arrived = message_from_bytes(delivery.content, policy=policy.default)
    assert arrived["In-Reply-To"] == "<m1@customer.example>"
    assert arrived["Reply-To"] == "Billing support <support+tok00001@example.com>"


async def test_a_relay_that_is_down_leaves_it_failed_and_it_goes_once_the_relay_is_up(
    pool: asyncpg.Pool, couriers: CourierFactory
) -> None:
    port = free_port()  # nothing listens there yet: the relay is down
    # A retry far enough away that the first failure is read before it, on a loaded machine
    # too (0.3 s let a second attempt come first under a full parallel run).
    courier = await couriers(plain(port), first_delay=1.5)
    await write(pool, mail(2))
    courier.wake()
    failed = await until_state(pool, "reply:2", OutboxState.failed)
    assert failed["attempts"] == 1
    assert failed["last_error"].startswith(f"the relay 127.0.0.1:{port}: SMTPConnectError")
    with Sink.running(port) as sink:
        # Nobody wakes the courier: its own retry, come due, finds the relay up.
        [delivery] = await sink.until_delivered(CUSTOMER)
        sent = await until_state(pool, "reply:2", OutboxState.sent)
    assert sent["attempts"] >= 2
    assert delivery.mail_from == "support@example.com"


async def test_a_4xx_is_tried_again_with_backoff_until_the_relay_takes_it(
    pool: asyncpg.Pool, couriers: CourierFactory, sink: Sink
) -> None:
    courier = await couriers(plain(sink.port), first_delay=0.2)
    sink.refuse_recipient(CUSTOMER, "450 4.2.1 Mailbox busy, try later")
    sink.refuse_data("451 4.3.0 Local error in processing")
    await write(pool, mail(3))
    courier.wake()
    [delivery] = await sink.until_delivered(CUSTOMER)
    sent = await until_state(pool, "reply:3", OutboxState.sent)
    assert sent["attempts"] == 3
    first, second = sink.refusals
    assert (first.step, second.step) == ("RCPT", "DATA")
    # Backoff doubles (jitter fixed at its longest): 0.2 s, then 0.4 s.
    assert second.at - first.at >= 0.2
    assert delivery.at - second.at >= 0.4


@pytest.mark.parametrize(
    ("refuse", "status", "error"),
    [
        (
            lambda sink: sink.refuse_recipient(CUSTOMER, "550 5.1.1 No such user"),
            550,
            f"RCPT TO: <{CUSTOMER}> 550 5.1.1 No such user",
        ),
        (
            lambda sink: sink.refuse_data("554 5.7.1 Message refused as spam"),
            554,
            "DATA: 554 5.7.1 Message refused as spam",
        ),
    ],
)
async def test_a_5xx_is_final_with_the_relay_s_code_and_words_kept(
    pool: asyncpg.Pool,
    couriers: CourierFactory,
    sink: Sink,
    refuse: Callable[[Sink], None],
    status: int,
    error: str,
) -> None:
    courier = await couriers(plain(sink.port))
    refuse(sink)
    await write(pool, mail(4))
    courier.wake()
    dead = await until_state(pool, "reply:4", OutboxState.dead)
    assert (dead["attempts"], dead["last_status"], dead["last_error"]) == (1, status, error)
    assert dead["next_attempt_at"] is None
    # Nothing comes after: a later mail goes, and the refused one was tried once.
    await write(pool, mail(5))
    courier.wake()
    await sink.until_delivered(CUSTOMER)
    await until_state(pool, "reply:5", OutboxState.sent)
    assert len(sink.refusals) == 1


async def test_a_relay_that_takes_some_recipients_has_sent_it_and_the_refusals_are_kept(
    pool: asyncpg.Pool, couriers: CourierFactory, sink: Sink
) -> None:
    courier = await couriers(plain(sink.port))
    sink.refuse_recipient("gone@customer.example", "550 5.1.1 No such user")
    await write(pool, mail(6, recipients=[CUSTOMER, "gone@customer.example"]))
    courier.wake()
    [delivery] = await sink.until_delivered(CUSTOMER)
    assert delivery.recipients == [CUSTOMER]
    sent = await until_state(pool, "reply:6", OutboxState.sent)
    assert (sent["attempts"], sent["last_status"]) == (1, 250)
    assert sent["last_error"] == "sent to 1, refused: gone@customer.example: 550 5.1.1 No such user"


async def test_over_starttls_with_auth_the_password_reaches_no_row_error_or_log(
    pool: asyncpg.Pool, couriers: CourierFactory, log_lines: io.StringIO
) -> None:
    tls = Tls()
    with Sink.running(tls=tls, credentials=(USER, PASSWORD)) as sink:
        right = SmtpSender(
            "smtp",
            host="127.0.0.1",
            port=sink.port,
            credentials=(USER, PASSWORD),
            tls_context=tls.client_context(),
            timeout=2.0,
        )
        courier = await couriers(right)
        await write(pool, mail(7))
        courier.wake()
        [delivery] = await sink.until_delivered(CUSTOMER)
        await until_state(pool, "reply:7", OutboxState.sent)
        assert (delivery.tls, delivery.login) == (True, USER)
        await courier.stop()
        # The wrong password: refused for good (535), and what the relay said is kept.
        wrong = SmtpSender(
            "smtp",
            host="127.0.0.1",
            port=sink.port,
            credentials=(USER, PASSWORD[::-1]),
            tls_context=tls.client_context(),
            timeout=2.0,
        )
        other = await couriers(wrong)
        await write(pool, mail(8))
        other.wake()
        dead = await until_state(pool, "reply:8", OutboxState.dead)
    assert dead["last_status"] == 535
    assert dead["last_error"].startswith("AUTH: 535")
    stored = await pool.fetch(
        "SELECT m::text AS line FROM outbox_messages m"
        " UNION ALL SELECT e::text FROM events e WHERE kind LIKE 'outbox.%'"
    )
    lines = [r["line"] for r in stored] + log_lines.getvalue().splitlines()
    assert any("outbox message sent" in line for line in lines)
    assert any("outbox message dead" in line for line in lines)
    # Each password, and the AUTH PLAIN string made of it (AUTH LOGIN's is a part of that).
    secrets = [
        text
        for password in (PASSWORD, PASSWORD[::-1])
        for text in (password, base64.b64encode(f"\0{USER}\0{password}".encode()).decode())
    ]
    assert [line for line in lines if any(secret in line for secret in secrets)] == []


async def test_a_relay_that_offers_no_starttls_while_we_require_it_is_refused_for_good(
    pool: asyncpg.Pool, couriers: CourierFactory, sink: Sink
) -> None:
    requiring = SmtpSender("smtp", host="127.0.0.1", port=sink.port, timeout=2.0)
    courier = await couriers(requiring)
    await write(pool, mail(9))
    courier.wake()
    dead = await until_state(pool, "reply:9", OutboxState.dead)
    assert dead["attempts"] == 1
    assert "STARTTLS" in dead["last_error"]
    assert sink.deliveries == []


def test_a_mail_the_outbox_cannot_hold_as_it_is_is_refused_before_it_is_written() -> None:
    with_bcc = answer(10)
    with_bcc["Bcc"] = "boss@example.com"
    with pytest.raises(ValueError, match="Bcc"):
        mail_message(
            sender="smtp", message=with_bcc, dedupe_key="k", subject_type="i", subject_id="i"
        )
    # Raw UTF-8 headers (SMTPUTF8's), which not every relay takes.
    eight_bit = EmailMessage(policy=policy.default.clone(utf8=True))
    eight_bit["From"] = "support@example.com"
    eight_bit["To"] = f"李雷 <{CUSTOMER}>"
    eight_bit.set_content("退款已经办好了")
    with pytest.raises(ValueError, match="8-bit"):
        mail_message(
            sender="smtp", message=eight_bit, dedupe_key="k", subject_type="i", subject_id="i"
        )
    with pytest.raises(ValueError, match="no recipient"):
        mail(11, recipients=[])
    with pytest.raises(ValueError, match="not an envelope address"):
        mail(12, recipients=["<mei@customer.example>"])
    # The envelope defaults to From and To; "" is the null sender of an automatic answer.
    assert mail(13).request["mail_from"] == "support@example.com"
    assert mail(13).request["recipients"] == [CUSTOMER]
    assert mail(14, mail_from="").request["mail_from"] == ""


def test_the_relay_settings_make_the_smtp_sender_and_keep_the_password_out_of_errors() -> None:
    assert outbox_senders(Settings(environment="test")).names == []
    relay = Settings(
        environment="test",
        smtp_relay_host="smtp.example.com",
        smtp_relay_username=USER,
        smtp_relay_password=PASSWORD,
    )
    assert (relay.smtp_relay_port, relay.smtp_relay_starttls) == (587, True)
    assert outbox_senders(relay).names == ["smtp"]
    assert PASSWORD not in repr(relay)
    with pytest.raises(ValueError, match="go together") as alone:
        Settings(
            environment="test", smtp_relay_host="smtp.example.com", smtp_relay_password=PASSWORD
        )
    assert PASSWORD not in str(alone.value)
    with pytest.raises(ValueError, match="in the clear") as clear:
        Settings(
            environment="test",
            smtp_relay_host="smtp.example.com",
            smtp_relay_username=USER,
            smtp_relay_password=PASSWORD,
            smtp_relay_starttls=False,
        )
    assert PASSWORD not in str(clear.value)


# The app as it runs: the courier started with it, its `smtp` sender built from the settings,
# and what staff see of a refused mail over HTTP.


@pytest.fixture
def settings(sink: Sink) -> Settings:
    return Settings(
        environment="test",
        load_demo=False,
        password_hashing="fast",
        smtp_relay_host="127.0.0.1",
        smtp_relay_port=sink.port,
        smtp_relay_starttls=False,
        outbox_sweep_seconds=3600,
    )


async def test_staff_see_a_mail_the_relay_refused_with_its_code_in_the_outbox(
    app: FastAPI, client: httpx.AsyncClient, sink: Sink, supervisor: dict[str, str]
) -> None:
    sink.refuse_recipient(CUSTOMER, "550 5.1.1 <mei@customer.example>: Recipient unknown")
    async with unit_of_work(app.state.sessions, outbox=app.state.outbox) as session:
        written = await enqueue_in(session, mail(15))
    dead: dict[str, Any] = {}
    for _ in range(1000):
        response = await client.get("/v1/outbox?state=dead&kind=mail", headers=supervisor)
        assert response.status_code == 200, response.text
        if response.json()["total"]:
            [dead] = response.json()["items"]
            break
        await asyncio.sleep(0.01)
    assert dead["id"] == str(written.id)
    assert (dead["sender"], dead["last_status"]) == ("smtp", 550)
    assert dead["last_error"] == (
        f"RCPT TO: <{CUSTOMER}> 550 5.1.1 <mei@customer.example>: Recipient unknown"
    )
    assert dead["request"]["recipients"] == [CUSTOMER]
    # Then it goes: the unit of work's commit woke the courier, nobody swept.
    async with unit_of_work(app.state.sessions, outbox=app.state.outbox) as session:
        await enqueue_in(session, mail(16))
    await sink.until_delivered(CUSTOMER)

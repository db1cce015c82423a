"""The outbox: everything the center sends to the outside, written with the decision that causes it.

A call to a gateway's REST API (bridge the caller to the agent), a reply by mail, a webhook: each
is a row of `outbox_messages`, inserted in the same transaction as the decision, so that it exists
exactly when the decision does (a rolled-back accept sends nothing; a committed one is never lost,
across a crash or a restart). After the commit the writer wakes its replica's courier
(app/core/courier.py), which claims the row, hands it to the sender it names
(app/core/senders.py) and records what came of it; couriers of the other replicas sweep up
whatever is left over.

How to write one:

- On a hot path (asyncpg, inside `pg.transaction`): `await enqueue(connection, message)`, then,
  once the transaction has committed, `app.state.outbox.wake()`.
- On the ORM: `await enqueue_in(session, message)`; the unit of work that owns the session
  (`app.core.db.unit_of_work`, `get_session` for a request) wakes the courier after its commit.

A reply by mail is `mail_message(...)`: the RFC 5322 message as text, with its envelope (who it
is from, to whom it goes); the `smtp` sender hands it to the relay.

A message's `dedupe_key` is unique: the same decision delivered twice (a gateway that retries, a
desk that accepts again) writes one message, and the first one's request stands. A row holds no
secret: it names its sender (`twilio`), and the sender resolves its credentials from the settings
when it sends; `http_message` refuses headers and URLs that would carry one, and a mail holds
only what its recipients read.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from sqlalchemy import (
    CheckConstraint,
    Enum,
    Index,
    Integer,
    String,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import driver_connection, outbox_written
from app.core.errors import IllegalTransition, NotFound
from app.core.events import events_of
from app.core.logging import redact
from app.core.models import Base, UUIDPrimaryKey, utcnow
from app.core.pg import Reader


class OutboxState(StrEnum):
    pending = "pending"  # not tried yet (or put back by an admin's retry)
    sending = "sending"  # claimed by a courier, until its claim lapses (next_attempt_at)
    sent = "sent"
    failed = "failed"  # the last attempt failed; another is due at next_attempt_at
    dead = "dead"  # refused for good, or out of attempts: waits for an admin's retry


# States a courier may claim a message in: a `sending` one only once its claim has lapsed.
CLAIMABLE = (OutboxState.pending, OutboxState.failed, OutboxState.sending)
# States an admin may send again.
RETRYABLE = frozenset({OutboxState.failed, OutboxState.dead})

KIND_LENGTH, SENDER_LENGTH, DEDUPE_KEY_LENGTH = 16, 32, 255
SUBJECT_TYPE_LENGTH, SUBJECT_ID_LENGTH = 32, 64
ERROR_LENGTH = 1000


class OutboxMessage(UUIDPrimaryKey, Base):
    """One thing to send, until it is sent or given up on. Kept afterwards, as the record of
    what the center told the outside world and when."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # What a courier's claim reads: the few messages not settled yet, by when they are due.
        Index(
            "ix_outbox_messages_due",
            "next_attempt_at",
            postgresql_where=text("state IN ('pending', 'failed', 'sending')"),
        ),
        Index("ix_outbox_messages_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_outbox_messages_state_created", "state", "created_at"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    # The shape of `request` ("http", "mail"), and who delivers it.
    kind: Mapped[str] = mapped_column(String(KIND_LENGTH))
    sender: Mapped[str] = mapped_column(String(SENDER_LENGTH))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dedupe_key: Mapped[str] = mapped_column(String(DEDUPE_KEY_LENGTH), unique=True)
    # What it is about (an interaction, a complaint): the events of its fate name this too.
    subject_type: Mapped[str] = mapped_column(String(SUBJECT_TYPE_LENGTH))
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH))
    state: Mapped[OutboxState] = mapped_column(
        Enum(
            OutboxState, native_enum=False, length=16, create_constraint=True, name="outbox_state"
        ),
        default=OutboxState.pending,
        server_default=OutboxState.pending.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a courier may claim it: due (pending, failed), or when its claim lapses (sending);
    # none once settled (sent, dead).
    next_attempt_at: Mapped[datetime | None]
    # The claim of the courier sending it now: only that claim may record the outcome.
    claim_id: Mapped[uuid.UUID | None]
    last_attempt_at: Mapped[datetime | None]
    # The last answer: an HTTP status (an SMTP reply code for mail), and what went wrong.
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    sent_at: Mapped[datetime | None]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to write: what to send (`request`, in the shape `kind` names), who sends it
    (`sender`, a name the courier's registry knows), what it is about, and its dedupe key."""

    kind: str
    sender: str
    request: dict[str, Any]
    dedupe_key: str
    subject_type: str
    subject_id: str

    def __post_init__(self) -> None:
        for field, limit in (
            ("kind", KIND_LENGTH),
            ("sender", SENDER_LENGTH),
            ("dedupe_key", DEDUPE_KEY_LENGTH),
            ("subject_type", SUBJECT_TYPE_LENGTH),
            ("subject_id", SUBJECT_ID_LENGTH),
        ):
            value = getattr(self, field)
            if not value or len(value) > limit:
                raise ValueError(f"an outgoing message's {field} needs 1 to {limit} characters")


# Header names that carry credentials: a sender adds those at send time, never the row.
SECRET_HEADER = re.compile(r"(?i)auth|token|secret|password|cookie|signature|api[-_]?key")


def http_message(
    *,
    sender: str,
    method: str,
    url: str,
    dedupe_key: str,
    subject_type: str,
    subject_id: object,
    form: Mapping[str, str | Sequence[str]] | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Outgoing:
    """An HTTP request for `sender` to make: `url` is a path under the sender's base URL
    (`/2010-04-01/Accounts/AC…/Calls/CA….json`), or a full URL for a sender that has none. The
    body is `form` (form-encoded, as Twilio's API takes it) or `json_body`, not both. Headers and
    URLs that would put a secret in the row are refused (ValueError): credentials are the
    sender's, added when it sends."""
    if form is not None and json_body is not None:
        raise ValueError("an HTTP message has a form or a JSON body, not both")
    for name in headers or {}:
        if SECRET_HEADER.search(name):
            raise ValueError(f"header {name} looks like a credential: the sender adds those")
    if urlsplit(url).password is not None or urlsplit(url).username is not None:
        raise ValueError("a URL with credentials in it: the sender adds those")
    if redact(url) != url:
        raise ValueError("a URL with a secret in its query: the sender adds those")
    request: dict[str, Any] = {"method": method.upper(), "url": url}
    if headers:
        request["headers"] = dict(headers)
    if form is not None:
        request["form"] = {k: v if isinstance(v, str) else list(v) for k, v in form.items()}
    if json_body is not None:
        request["json"] = json_body
    return Outgoing(
        kind="http",
        sender=sender,
        request=request,
        dedupe_key=dedupe_key,
        subject_type=subject_type,
        subject_id=str(subject_id),
    )


def mail_message(
    *,
    sender: str,
    message: EmailMessage,
    dedupe_key: str,
    subject_type: str,
    subject_id: object,
    mail_from: str | None = None,
    recipients: Sequence[str] | None = None,
) -> Outgoing:
    """A mail for `sender` (`smtp`) to hand to its relay: `message` as its recipients read it,
    and its envelope, `mail_from` (where bounces go; by default the address in From) and
    `recipients` (by default those in To and Cc); "" is the null sender, for an automatic
    answer that must draw no bounce back (RFC 3834). The message is held as 7-bit text (its
    8-bit parts encoded in base64 as it is written out, its headers in RFC 2047 words), so
    that any relay takes it as it is (no 8BITMIME, no SMTPUTF8): raw UTF-8 headers (a policy
    with `utf8=True`) are refused, and so is a Bcc header, whose recipients belong in the
    envelope only."""
    if message["Bcc"] is not None:
        raise ValueError("a mail with a Bcc header: give those recipients in `recipients`")
    text = message.as_string()
    if not text.isascii():
        raise ValueError("an 8-bit mail (raw UTF-8 headers): write it with utf8=False")
    from_address = (
        mail_from if mail_from is not None else next(iter(_addresses(message, "From")), "")
    )
    envelope_to = list(recipients) if recipients is not None else _addresses(message, "To", "Cc")
    if not envelope_to:
        raise ValueError("a mail with no recipient")
    for address in [from_address, *envelope_to]:
        if not address.isascii() or re.search(r"[\s<>]", address):
            raise ValueError(f"{address!r} is not an envelope address")
    return Outgoing(
        kind="mail",
        sender=sender,
        request={"mail_from": from_address, "recipients": envelope_to, "message": text},
        dedupe_key=dedupe_key,
        subject_type=subject_type,
        subject_id=str(subject_id),
    )


def _addresses(message: EmailMessage, *headers: str) -> list[str]:
    values = [str(value) for header in headers for value in message.get_all(header, [])]
    return [address for _, address in getaddresses(values) if address]


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The message the decision stands for; `new` is False when its dedupe key was written
    before (nothing was written now)."""

    id: uuid.UUID
    new: bool


# The request travels as JSON text (cast here), so this works on any asyncpg connection
# whatever its codecs, the ORM's and the hot pool's alike (as app.core.events does).
ENQUEUE = """
    INSERT INTO outbox_messages
        (id, kind, sender, request, dedupe_key, subject_type, subject_id, state, attempts,
         next_attempt_at, created_at)
    VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, 'pending', 0, now(), now())
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
"""
# Read in a statement of its own: under READ COMMITTED it sees a row another transaction
# committed while the insert above waited for it.
WRITTEN_BEFORE = "SELECT id FROM outbox_messages WHERE dedupe_key = $1"


async def enqueue(connection: asyncpg.Connection, message: Outgoing) -> Enqueued:
    """Write `message` in the connection's transaction (call it inside one). Once that commits,
    wake this replica's courier (`app.state.outbox.wake()`), so it goes at once."""
    written = await connection.fetchval(
        ENQUEUE,
        uuid.uuid4(),
        message.kind,
        message.sender,
        json.dumps(message.request),
        message.dedupe_key,
        message.subject_type,
        message.subject_id,
    )
    if written is not None:
        return Enqueued(id=written, new=True)
    before = await connection.fetchval(WRITTEN_BEFORE, message.dedupe_key)
    if before is None:  # written and deleted meanwhile: nothing keeps messages from that yet
        raise RuntimeError(f"outbox message {message.dedupe_key!r} vanished while written")
    return Enqueued(id=before, new=False)


async def enqueue_in(session: AsyncSession, message: Outgoing) -> Enqueued:
    """`enqueue` in the session's transaction; its unit of work wakes the courier after the
    commit (`app.core.db.unit_of_work`)."""
    enqueued = await enqueue(await driver_connection(session), message)
    outbox_written(session)
    return enqueued


# What staff see of the outbox (the API is the supervisor package's: app/supervisor/outbox.py).


@dataclass(frozen=True, slots=True)
class OutboxFilter:
    state: OutboxState | None = None
    kind: str | None = None
    sender: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None


async def list_messages(
    session: AsyncSession, where: OutboxFilter, *, limit: int, offset: int
) -> tuple[list[OutboxMessage], int]:
    """The messages `where` asks for, newest first, and how many there are."""
    conditions = [
        column == value
        for column, value in (
            (OutboxMessage.state, where.state),
            (OutboxMessage.kind, where.kind),
            (OutboxMessage.sender, where.sender),
            (OutboxMessage.subject_type, where.subject_type),
            (OutboxMessage.subject_id, where.subject_id),
        )
        if value is not None
    ]
    total_query = select(func.count()).select_from(OutboxMessage).where(*conditions)
    total = (await session.execute(total_query)).scalar_one()
    page = (
        select(OutboxMessage)
        .where(*conditions)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await session.execute(page)).scalars()), total


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> OutboxMessage:
    message = await session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"no outbox message {message_id}")
    return message


async def retry(session: AsyncSession, message_id: uuid.UUID, *, actor: str) -> OutboxMessage:
    """Send a failed or dead message again, at once, with a full round of attempts; the event
    `outbox.retried` (on the message's subject) keeps who asked and how many attempts it had."""
    query = select(OutboxMessage).where(OutboxMessage.id == message_id)
    message = (await session.execute(query.with_for_update(key_share=True))).scalar_one_or_none()
    if message is None:
        raise NotFound(f"no outbox message {message_id}")
    if message.state not in RETRYABLE:
        raise IllegalTransition(
            f"outbox message {message_id} is {message.state}: only a failed or dead one is"
            " sent again"
        )
    events_of(session).add(
        "outbox.retried",
        subject_type=message.subject_type,
        subject_id=message.subject_id,
        actor=actor,
        payload={
            "message_id": str(message.id),
            "state": message.state.value,
            "attempts": message.attempts,
        },
    )
    # Due now by the database's clock, which the courier's claim reads.
    again = (
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(state=OutboxState.pending, attempts=0, claim_id=None, next_attempt_at=func.now())
        .execution_options(synchronize_session=False)
    )
    await session.execute(again)
    await session.refresh(message)
    outbox_written(session)
    return message


COUNTS = "SELECT state, count(*) AS messages FROM outbox_messages GROUP BY state"


async def counts_by_state(reader: Reader) -> dict[OutboxState, int]:
    """How many messages are in each state (every state named, with 0 for none): what a
    metrics endpoint or an alert reads (a growing `dead` or `failed` means a sender is down)."""
    counts = dict.fromkeys(OutboxState, 0)
    for row in await reader.fetch(COUNTS):
        counts[OutboxState(row["state"])] = row["messages"]
    return counts

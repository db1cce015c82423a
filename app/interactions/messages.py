"""The messages of an interaction (an email's, today): stored once per dedupe key, before the
channel says it took them, with their attachments; and the threads they belong to.

Plain SQL on a hot-path connection (app.core.pg): a channel adapter stores a message and finds
its thread in the same transaction. What a message *is* (a new thread, a reply, an auto-reply)
is the channel's to say (app/channels/email/classify.py); this module keeps it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from app.interactions.models import MessageDirection

# A retried delivery (the same dedupe key) inserts nothing and reads the first.
INSERT = """
    INSERT INTO interaction_messages (
        id, interaction_id, direction, kind, channel_message_id, dedupe_key, sender,
        sender_name, subject, text, quoted, from_html, dropped, received_at, mentions
    ) VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13, $14)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
"""
EARLIER = "SELECT id, interaction_id, kind FROM interaction_messages WHERE dedupe_key = $1"
INSERT_ATTACHMENT = """
    INSERT INTO message_attachments (id, message_id, filename, content_type, size, data)
    VALUES ($1, $2, $3, $4, $5, $6)
"""
ATTACH = "UPDATE interaction_messages SET interaction_id = $2 WHERE id = $1"

# The interaction a reply continues: one whose messages the reply names (In-Reply-To,
# References) or whose reply token it carries, of the same customer only; and then the newest
# of the interactions that continue it (a reply to a completed thread opened one). The newest
# of what matched wins.
THREAD = """
    WITH RECURSIVE named AS (
        SELECT i.id, i.created_at FROM interactions i
        WHERE i.customer_id = $3 AND (
            i.reply_token = $2
            OR EXISTS (
                SELECT FROM interaction_messages m
                WHERE m.interaction_id = i.id AND m.channel_message_id = ANY($1::text[])
            )
        )
        UNION
        SELECT later.id, later.created_at FROM interactions later
        JOIN named ON later.linked_to = named.id
        WHERE later.customer_id = $3
    )
    SELECT i.id, i.state, i.agent_id FROM named JOIN interactions i ON i.id = named.id
    ORDER BY named.created_at DESC LIMIT 1
"""
# The interaction a message names that is not its sender's thread (whoever's it is): the
# newest of those whose messages it names or whose token it carries.
MENTIONED = """
    SELECT i.id FROM interactions i
    WHERE i.reply_token = $2 OR EXISTS (
        SELECT FROM interaction_messages m
        WHERE m.interaction_id = i.id AND m.channel_message_id = ANY($1::text[])
    )
    ORDER BY i.created_at DESC LIMIT 1
"""

# Receipts (a chat's): a message reached the other side's screen, or was read there with every
# message before it from the same side ($3: now).
DELIVERED = """
    UPDATE interaction_messages SET delivered_at = $2
    WHERE id = $1 AND delivered_at IS NULL RETURNING interaction_id
"""
# Every line from the customer not delivered yet: an offer's screen pop showed them.
DELIVERED_ALL = """
    UPDATE interaction_messages SET delivered_at = $2
    WHERE interaction_id = $1 AND direction = 'inbound' AND delivered_at IS NULL
    RETURNING id
"""
READ_UP_TO = """
    UPDATE interaction_messages m SET read_at = $3, delivered_at = coalesce(m.delivered_at, $3)
    FROM interaction_messages upto
    WHERE upto.id = $2 AND upto.interaction_id = $1 AND m.interaction_id = $1
      AND m.direction = upto.direction AND m.read_at IS NULL
      AND (m.received_at, m.id) <= (upto.received_at, upto.id)
    RETURNING m.id
"""


@dataclass(frozen=True, slots=True)
class NewAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message as its channel read it, about to be stored."""

    kind: str
    dedupe_key: str
    channel_message_id: str | None
    sender: str | None
    sender_name: str
    subject: str
    text: str
    quoted: str
    from_html: bool
    received_at: datetime
    dropped: Sequence[str] = ()
    mentions: uuid.UUID | None = None
    attachments: Sequence[NewAttachment] = field(default_factory=tuple)
    direction: MessageDirection = MessageDirection.inbound


@dataclass(frozen=True, slots=True)
class Stored:
    """A message as stored: `created` False for a dedupe key stored before (then `kind` and
    `interaction_id` are the first delivery's)."""

    id: uuid.UUID
    kind: str
    interaction_id: uuid.UUID | None
    created: bool


@dataclass(frozen=True, slots=True)
class Thread:
    """The interaction a reply continues, as it stands."""

    id: uuid.UUID
    state: str
    agent_id: uuid.UUID | None


async def store(connection: asyncpg.Connection, message: NewMessage) -> Stored:
    """The message and its attachments stored (in the caller's transaction), or the one its
    dedupe key was stored with before."""
    new_id = uuid.uuid4()
    inserted = await connection.fetchval(
        INSERT,
        new_id,
        message.direction.name,
        message.kind,
        _maybe(message.channel_message_id),
        message.dedupe_key,
        _maybe(message.sender),
        _clean(message.sender_name),
        _clean(message.subject),
        _clean(message.text),
        _clean(message.quoted),
        message.from_html,
        json.dumps([_clean(reason) for reason in message.dropped]),
        message.received_at,
        message.mentions,
    )
    if inserted is None:
        earlier = await connection.fetchrow(EARLIER, message.dedupe_key)
        assert earlier is not None, "a stored message is never deleted but with its interaction"
        return Stored(earlier["id"], earlier["kind"], earlier["interaction_id"], created=False)
    for attachment in message.attachments:
        await connection.execute(
            INSERT_ATTACHMENT,
            uuid.uuid4(),
            new_id,
            _clean(attachment.filename),
            _clean(attachment.content_type)[:255],
            len(attachment.data),
            attachment.data,
        )
    return Stored(new_id, message.kind, None, created=True)


async def attach(
    connection: asyncpg.Connection, message_id: uuid.UUID, interaction_id: uuid.UUID
) -> None:
    """The stored message made one of the interaction's."""
    await connection.execute(ATTACH, message_id, interaction_id)


async def thread_of(
    connection: asyncpg.Connection,
    *,
    named: Sequence[str],
    reply_token: str | None,
    customer_id: uuid.UUID,
) -> Thread | None:
    """The interaction of `customer_id` a reply continues, by the Message-IDs it names or its
    reply token; None when it continues none of theirs (another customer's thread is never
    found: a forwarded mail starts its own)."""
    if not named and reply_token is None:
        return None
    row = await connection.fetchrow(THREAD, list(named), reply_token, customer_id)
    return None if row is None else Thread(row["id"], row["state"], row["agent_id"])


async def mentioned(
    connection: asyncpg.Connection, *, named: Sequence[str], reply_token: str | None
) -> uuid.UUID | None:
    """The interaction a message names (by Message-IDs or token), whoever's it is: for one
    that joins no thread of its sender's, so the agent sees what it mentions."""
    if not named and reply_token is None:
        return None
    found: uuid.UUID | None = await connection.fetchval(MENTIONED, list(named), reply_token)
    return found


def _clean(text: str | None) -> str:
    """PostgreSQL's text holds no NUL; a message may."""
    return "" if text is None else text.replace("\x00", "")


def _maybe(text: str | None) -> str | None:
    return None if text is None else _clean(text)


async def delivered(
    connection: asyncpg.Connection, message_id: uuid.UUID, at: datetime
) -> uuid.UUID | None:
    """The message reached the other side's screen: its interaction, the first time only."""
    interaction_id: uuid.UUID | None = await connection.fetchval(DELIVERED, message_id, at)
    return interaction_id


async def delivered_all_inbound(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, at: datetime
) -> list[uuid.UUID]:
    """Every message from the customer not delivered yet, delivered now (an offer showed them
    in its screen pop); those newly so."""
    rows = await connection.fetch(DELIVERED_ALL, interaction_id, at)
    return [row["id"] for row in rows]


async def read_up_to(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, message_id: uuid.UUID, at: datetime
) -> list[uuid.UUID]:
    """The interaction's messages from the side `message_id` is from, up to it, read at `at`;
    those newly read (a reader reads what came before too)."""
    rows = await connection.fetch(READ_UP_TO, interaction_id, message_id, at)
    return [row["id"] for row in rows]

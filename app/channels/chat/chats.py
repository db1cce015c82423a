"""A chat's life: the customer's first message opens it (through intake, the one way in), each
message after is stored and told to the agent who has it, the customer leaves or drops away,
and it ends.

What is a chat and what is routing's: the interaction (channel `chat`) is queued, offered,
taken and completed as any other; its messages are the interaction's (app/interactions/
messages.py), each stored before the customer is told it was (`stored`); this module keeps
the rest in `chats` (whose visitor, whether their socket is there, when anyone last wrote) and
carries out the customer's side. Plain SQL on the hot pool, as mail in does: a message is one
transaction, then its event (`Intake.add_event`, keyed by the message so a resend adds none).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.channels.chat.sites import Site
from app.channels.chat.visitors import Visitor, keep, known_as
from app.core import pg
from app.core.channels import Channel
from app.core.db import driver_connection, unit_of_work
from app.core.errors import AppError, Conflict, IllegalTransition
from app.core.events import events_of
from app.core.hub import EventHub
from app.customers.models import ContactKind
from app.interactions import messages
from app.interactions.intake import Conversation, Intake
from app.interactions.models import InteractionState, MessageDirection
from app.interactions.schemas import ContactIn, InteractionCreate
from app.queues.calendar import HolidayCalendar
from app.queues.hours import BusinessHours, QueueStatus, next_opening, status_at
from app.routing import line

ACTOR = "channel:chat"
KIND = "chat"  # the kind of a chat's messages
SUBJECT_LIMIT = 80  # a chat's subject: the start of its first message
WAITING = frozenset({InteractionState.queued, InteractionState.offered})
LEFT = "the customer left the chat"
WENT_AWAY = "the customer went away"
WENT_QUIET = "nobody wrote for a while"


class ChatClosed(Conflict):
    code = "closed"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class OpenChat:
    id: uuid.UUID
    state: InteractionState
    agent_id: uuid.UUID | None
    agent: str | None  # the display name of the agent who has it


@dataclass(frozen=True, slots=True)
class Said:
    message_id: uuid.UUID
    chat_id: uuid.UUID
    opened: bool  # this message opened the chat


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a chat's transcript."""

    message_id: uuid.UUID
    direction: MessageDirection
    kind: str
    sender_name: str
    text: str
    received_at: datetime
    delivered: bool
    read: bool


@dataclass(frozen=True, slots=True)
class Opening:
    """Whether the site's queue takes chats now, and when it next does if not."""

    open: bool
    next_opening: datetime | None


# The visitor's chat that is still live, newest first, with its agent.
OPEN_CHAT = """
    SELECT c.interaction_id, i.state, i.agent_id, u.display_name AS agent
    FROM chats c JOIN interactions i ON i.id = c.interaction_id
    LEFT JOIN agents a ON a.id = i.agent_id LEFT JOIN users u ON u.id = a.user_id
    WHERE c.visitor_id = $1 AND c.closed_at IS NULL
      AND i.state IN ('queued', 'offered', 'assigned')
    ORDER BY c.started_at DESC LIMIT 1
"""
CHAT_STATE = """
    SELECT i.state, i.agent_id, u.display_name AS agent
    FROM interactions i LEFT JOIN agents a ON a.id = i.agent_id
    LEFT JOIN users u ON u.id = a.user_id
    WHERE i.id = $1
"""
NEW_CHAT = """
    INSERT INTO chats (interaction_id, site_id, visitor_id, started_at, last_message_at,
                       replica_id)
    VALUES ($1, $2, $3, $4, $4, $5)
    ON CONFLICT (interaction_id) DO NOTHING
"""
WROTE = "UPDATE chats SET last_message_at = $2 WHERE interaction_id = $1"
HERE = "UPDATE chats SET replica_id = $2, customer_left_at = NULL WHERE interaction_id = $1"
GONE = """
    UPDATE chats SET replica_id = NULL, customer_left_at = $2
    WHERE interaction_id = $1 AND closed_at IS NULL AND replica_id = $3
"""
CLOSE = "UPDATE chats SET closed_at = $2 WHERE interaction_id = $1 AND closed_at IS NULL"
# What one visitor sent and opened within the last minute ($2: now), for the site's limits:
# the oldest of each at the limit, when it leaves the window the visitor may go on.
SENT_LATELY = """
    SELECT m.received_at
    FROM interaction_messages m JOIN chats c ON c.interaction_id = m.interaction_id
    WHERE c.visitor_id = $1 AND m.direction = 'inbound'
      AND m.received_at > $2::timestamptz - interval '1 minute'
    ORDER BY m.received_at DESC OFFSET $3 - 1 LIMIT 1
"""
OPENED_LATELY = """
    SELECT started_at FROM chats
    WHERE visitor_id = $1 AND started_at > $2::timestamptz - interval '1 minute'
    ORDER BY started_at DESC OFFSET $3 - 1 LIMIT 1
"""
TRANSCRIPT = """
    SELECT id, direction, kind, sender_name, text, received_at, delivered_at, read_at, sender
    FROM interaction_messages WHERE interaction_id = $1
    ORDER BY received_at, id
"""
QUEUE_HOURS = "SELECT business_hours, holidays FROM queues WHERE id = $1"


def message_key(visitor_id: uuid.UUID, client_id: str) -> str:
    """A customer's message is one per visitor and client id: a resend after a drop finds the
    first (a sha256, as a dedupe key is one)."""
    basis = f"chat\x00{visitor_id}\x00{client_id}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


class ChatRooms:
    """The customer's side of every chat of this replica (app.state.chats)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        sessions: async_sessionmaker[AsyncSession],
        intake: Intake,
        hub: EventHub,
        wake_matcher: Callable[[], None],
        replica_id: Callable[[], uuid.UUID],
    ) -> None:
        self._pool = pool
        self._sessions = sessions
        self._intake = intake
        self._hub = hub
        self._wake_matcher = wake_matcher
        self._replica_id = replica_id

    async def opening(self, site: Site) -> Opening:
        """Whether the site's queue is open now (its business hours and holidays)."""
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            return await _opening(connection, site)

    async def open_chat_of(self, visitor: Visitor) -> OpenChat | None:
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            row = await connection.fetchrow(OPEN_CHAT, visitor.id)
        if row is None:
            return None
        return OpenChat(
            row["interaction_id"], InteractionState(row["state"]), row["agent_id"], row["agent"]
        )

    async def chat_now(self, chat_id: uuid.UUID) -> OpenChat | None:
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            row = await connection.fetchrow(CHAT_STATE, chat_id)
        if row is None:
            return None
        return OpenChat(chat_id, InteractionState(row["state"]), row["agent_id"], row["agent"])

    async def transcript(self, chat_id: uuid.UUID) -> list[Line]:
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            rows = await connection.fetch(TRANSCRIPT, chat_id)
        return [_line(row) for row in rows]

    async def say(
        self, site: Site, visitor: Visitor, contact: str, client_id: str, text: str
    ) -> tuple[Said, Visitor]:
        """The customer's message stored (before they are told), in their live chat or, with
        none, as the first of a new one in the site's queue; then told to the chat's agent.
        Refused over the site's limits (RateLimited) or when the queue is closed (ChatClosed)."""
        key = message_key(visitor.id, client_id)
        moment = pg.now()
        async with pg.transaction(self._pool) as connection:
            visitor = await keep(connection, visitor)
            earlier = await connection.fetchrow(
                "SELECT id, interaction_id FROM interaction_messages WHERE dedupe_key = $1", key
            )
            if earlier is not None and earlier["interaction_id"] is not None:
                # A resend of a message taken before: the same answer, and nothing new. A chat
                # whose row was not written (a crash after its arrival) gets it now.
                await connection.execute(
                    NEW_CHAT,
                    earlier["interaction_id"],
                    site.id,
                    visitor.id,
                    moment,
                    self._replica_id(),
                )
                return Said(earlier["id"], earlier["interaction_id"], opened=False), visitor
            chat = await connection.fetchrow(OPEN_CHAT, visitor.id)
            if chat is None and not (await _opening(connection, site)).open:
                # Refused with nothing kept (the visitor's row rolls back with this): the
                # widget offers to leave a message instead.
                raise ChatClosed("the chat is closed now: leave a message to be answered by mail")
            await _within_limits(connection, site, visitor.id, moment, opening=chat is None)
            stored = await messages.store(connection, _customer_line(key, visitor, text, moment))
            if chat is not None:
                await messages.attach(connection, stored.id, chat["interaction_id"])
                await connection.execute(WROTE, chat["interaction_id"], moment)
        if chat is None:
            return await self._open(site, visitor, contact, stored.id, key, text, moment)
        await self._tell_agent(
            chat["interaction_id"], chat["agent_id"], stored.id, key, visitor, text
        )
        return Said(stored.id, chat["interaction_id"], opened=False), visitor

    async def _open(
        self,
        site: Site,
        visitor: Visitor,
        contact: str,
        message_id: uuid.UUID,
        key: str,
        text: str,
        moment: datetime,
    ) -> tuple[Said, Visitor]:
        """A new chat interaction for the first message, through intake: keyed by that
        message (its `external_ref` is the message's key, which the screen pop finds it by
        while the arrival's statement writes its offer)."""
        data = InteractionCreate(
            channel=Channel.chat,
            queue=str(site.queue_id),
            customer_id=visitor.customer_id,
            contact=None
            if visitor.customer_id is not None
            else ContactIn(kind=ContactKind.chat, value=contact),
            customer_name=visitor.name or None,
            external_ref=key,
            subject=_subject(text),
            summary=text,
        )
        received = await self._intake.receive(
            data, actor=ACTOR, conversation=Conversation(message_id)
        )
        chat_id = received.interaction.id
        async with pg.transaction(self._pool) as connection:
            await connection.execute(
                NEW_CHAT, chat_id, site.id, visitor.id, moment, self._replica_id()
            )
            if visitor.customer_id is None:
                visitor = await known_as(connection, visitor, received.interaction.customer_id)
        return Said(message_id, chat_id, opened=received.created), visitor

    async def _tell_agent(
        self,
        chat_id: uuid.UUID,
        agent_id: uuid.UUID | None,
        message_id: uuid.UUID,
        key: str,
        visitor: Visitor,
        text: str,
    ) -> None:
        """The message as an event of the chat, which the desk of the agent who has it hears
        (with its text: a chat line is read as it comes)."""
        payload: dict[str, object] = {
            "channel": Channel.chat.value,
            "message_id": str(message_id),
            "direction": MessageDirection.inbound.value,
            "sender": visitor.name or "customer",
            "text": text,
        }
        if agent_id is not None:
            payload["agent_id"] = str(agent_id)
        # Ended meanwhile: the message is in its transcript all the same.
        with contextlib.suppress(IllegalTransition):
            await self._intake.add_event(
                chat_id, "interaction.message", payload, actor=ACTOR, reference=key
            )

    async def customer_here(self, chat_id: uuid.UUID) -> None:
        """The customer's socket on this replica has the chat (they came back, if away)."""
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            await connection.execute(HERE, chat_id, self._replica_id())

    async def customer_gone(self, chat_id: uuid.UUID) -> None:
        """The customer's socket dropped: the chat waits `resume_seconds` for them (the sweep)."""
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            await connection.execute(GONE, chat_id, pg.now(), self._replica_id())

    async def end(self, chat_id: uuid.UUID, why: str) -> None:
        """The chat is over for the customer (they left, went away, or it went quiet): one
        waiting is abandoned, one an agent holds goes to the agent's wrap-up, with a line in
        the transcript saying why. Ending one ended already changes nothing."""
        async with unit_of_work(self._sessions, hub=self._hub) as session:
            connection = await driver_connection(session)
            closed = await connection.fetchval(
                CLOSE + " RETURNING interaction_id", chat_id, pg.now()
            )
            if closed is None:
                return
            await _system_line(connection, chat_id, why)
            events = events_of(session)
            state = await connection.fetchval(
                "SELECT state FROM interactions WHERE id = $1", chat_id
            )
            try:
                if InteractionState(state) in WAITING:
                    await line.abandon_waiting(connection, events, chat_id, actor=ACTOR)
                elif InteractionState(state) is InteractionState.assigned:
                    await line.end_talk(connection, events, chat_id, actor=ACTOR, reason=why)
            except IllegalTransition:
                pass  # an agent took it or ended it meanwhile: the line stays, it goes on
        self._wake_matcher()


async def _opening(connection: asyncpg.Connection, site: Site) -> Opening:
    row = await connection.fetchrow(QUEUE_HOURS, site.queue_id)
    if row is None or row["business_hours"] is None:
        return Opening(True, None)
    hours = BusinessHours.model_validate(row["business_hours"])
    calendar = HolidayCalendar.model_validate(row["holidays"])
    moment = pg.now()
    if status_at(hours, calendar, moment) is QueueStatus.open:
        return Opening(True, None)
    return Opening(False, next_opening(hours, calendar, moment))


async def _within_limits(
    connection: asyncpg.Connection,
    site: Site,
    visitor_id: uuid.UUID,
    moment: datetime,
    *,
    opening: bool,
) -> None:
    """RateLimited when the visitor is at the site's limit of messages (or, for a message that
    would open a chat, of new chats) in the last minute, saying when they may go on."""
    oldest = await connection.fetchval(SENT_LATELY, visitor_id, moment, site.messages_per_minute)
    if oldest is not None:
        raise RateLimited(
            f"at most {site.messages_per_minute} messages a minute", _retry_after(oldest, moment)
        )
    if opening:
        oldest = await connection.fetchval(OPENED_LATELY, visitor_id, moment, site.chats_per_minute)
        if oldest is not None:
            raise RateLimited(
                f"at most {site.chats_per_minute} new chats a minute", _retry_after(oldest, moment)
            )


def _retry_after(oldest: datetime, moment: datetime) -> int:
    return max(1, math.ceil((oldest + timedelta(minutes=1) - moment).total_seconds()))


def _customer_line(key: str, visitor: Visitor, text: str, moment: datetime) -> messages.NewMessage:
    return messages.NewMessage(
        kind=KIND,
        dedupe_key=key,
        channel_message_id=None,
        sender=None,
        sender_name=visitor.name,
        subject="",
        text=text,
        quoted="",
        from_html=False,
        received_at=moment,
    )


async def _system_line(connection: asyncpg.Connection, chat_id: uuid.UUID, text: str) -> None:
    """A line the center writes in the transcript (why the chat ended)."""
    line_ = messages.NewMessage(
        kind="system",
        dedupe_key=hashlib.sha256(f"system\x00{chat_id}\x00{text}".encode()).hexdigest(),
        channel_message_id=None,
        sender=None,
        sender_name="",
        subject="",
        text=text,
        quoted="",
        from_html=False,
        received_at=pg.now(),
        direction=MessageDirection.outbound,
    )
    stored = await messages.store(connection, line_)
    await messages.attach(connection, stored.id, chat_id)


def _subject(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= SUBJECT_LIMIT else first[: SUBJECT_LIMIT - 1] + "…"


def _line(row: asyncpg.Record) -> Line:
    return Line(
        message_id=row["id"],
        direction=MessageDirection(row["direction"]),
        kind=row["kind"],
        sender_name=row["sender_name"],
        text=row["text"],
        received_at=row["received_at"],
        delivered=row["delivered_at"] is not None,
        read=row["read_at"] is not None,
    )

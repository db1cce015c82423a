"""One customer's chat socket, on core's socket session (app/core/socket_session.py): the hello
(visitor token, signed identity), the welcome with the chat going on and its transcript, each
message both ways, typing and receipts, the customer's place while waiting, and the chat left
to wait for them when the socket drops (docs/chat-protocol.md).

The session carries the frames; what is the chat's own is here. Events of the chat (the agent's
lines, the agent taking it, its end) come through the hub like a desk's; typing and receipts
are signals (app/core/signals.py), never written to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from typing import assert_never

import asyncpg
from fastapi import WebSocket
from pydantic import ValidationError

from app.channels.chat import protocol as p
from app.channels.chat.chats import LEFT, ChatRooms, Line, OpenChat, RateLimited
from app.channels.chat.leaving import AfterHours
from app.channels.chat.sites import Site
from app.channels.chat.visitors import Visitor, visitor_for
from app.core import pg
from app.core.errors import AppError
from app.core.hub import EventHub, EventRecord
from app.core.logging import get_logger
from app.core.pg import Reader
from app.core.signals import Listening, Signal, agent_topic, chat_topic
from app.core.socket_session import (
    DATABASE_BUSY,
    GOODBYE,
    CloseCode,
    Closing,
    Heartbeat,
    Replay,
    SessionClosed,
    SocketSession,
)
from app.interactions import receipts
from app.interactions.models import InteractionState, MessageDirection
from app.routing import figures

log = get_logger(__name__)

BAD_SIGNATURE = Closing(CloseCode.BAD_IDENTITY, "identity signature does not match")
# A waiting customer's place is read again this often (three index reads), and told on change.
POSITION_EVERY = 3.0
# A visitor silent this long is gone (the widget sends a heartbeat every 20 s).
SILENCE = 60.0
ENDINGS = {
    "interaction.wrap_up": "the agent ended the chat",
    "interaction.completed": "the agent ended the chat",
    "interaction.abandoned": "the chat ended before an agent took it",
}

Chat = SocketSession[p.ChatFrame]


class ChatConnection:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        site: Site,
        rooms: ChatRooms,
        after_hours: AfterHours,
        pool: asyncpg.Pool,
        hub: EventHub,
    ) -> None:
        self.websocket = websocket
        self._site = site
        self._rooms = rooms
        self._after_hours = after_hours
        self._pool = pool
        self._hub = hub
        self._visitor: Visitor | None = None
        self._contact = ""
        self._chat: OpenChat | None = None
        self._welcome: p.Welcome | None = None
        self._told_position: int | None = None
        self._joined: uuid.UUID | None = None  # the agent the customer was told took the chat
        self._subscription = hub.subscribe_subject()
        self._listening: list[Listening] = []
        self._session: Chat | None = None

    async def serve(self) -> None:
        chat: Chat = SocketSession(
            self.websocket,
            hub=self._hub,
            # The chat's events, once the chat is known (the hello's, or the first line's).
            subscription=self._subscription,
            pool=self._pool,
            frame_for=self._frame_for,
            heartbeat=Heartbeat(every=SILENCE / 3, silence=SILENCE),
            context={"site": self._site.name},
        )
        self._session = chat
        async with chat:
            try:
                await self._converse(chat)
            finally:
                for listening in self._listening:
                    self._hub.signals.stop(listening)
                await self._away()

    async def _converse(self, chat: Chat) -> None:
        hello = await chat.hello(p.Hello)
        try:
            await self._open(chat, hello)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            chat.close(DATABASE_BUSY)
            raise SessionClosed from None
        await chat.replay(self._replay(), None)
        position = asyncio.create_task(self._tell_position(chat), name="chat-position")
        try:
            while True:
                message = self._parse(chat, await chat.receive())
                if message is not None:
                    await self._handle(chat, message)
        finally:
            position.cancel()

    async def _open(self, chat: Chat, hello: p.Hello) -> None:
        """Who this is (a signed-in customer, a visitor seen before, or a new one) and their
        chat going on, if any."""
        identity = hello.identity
        if identity is not None and not self._site.signs(identity.customer, identity.signature):
            chat.close(BAD_SIGNATURE)
            raise SessionClosed
        async with pg.transaction(self._pool) as connection:
            visitor = await visitor_for(connection, self._site.id, hello.visitor_token, hello.name)
        if identity is not None:
            # Signed in: the customer the host site names, whoever this browser was before; a
            # new chat finds (or makes) them by that contact point.
            self._contact = self._site.contact_of(identity.customer)
            visitor = dataclasses.replace(visitor, customer_id=None)
        else:
            self._contact = f"visitor:{visitor.id}"
        self._visitor = visitor
        self._chat = await self._rooms.open_chat_of(visitor)
        if self._chat is not None:
            await self._rooms.customer_here(self._chat.id)
            self._follow(self._chat.id)

    def _replay(self) -> Replay[p.ChatFrame]:
        async def missed(_connection: asyncpg.Connection, _after: int) -> list[EventRecord]:
            return []  # the welcome's transcript is the catch-up

        async def holds(_connection: asyncpg.Connection) -> list[p.ChatFrame]:
            # Read once the session has noted where live events start: a line written from
            # here on comes live (maybe twice, by message id), none is lost in between.
            self._welcome = await self._welcome_now()
            return []

        def ready(_last_event_id: int) -> p.ChatFrame:
            assert self._welcome is not None
            return self._welcome

        return Replay(missed=missed, holds=holds, ready=ready)

    async def _welcome_now(self) -> p.Welcome:
        assert self._visitor is not None
        opening = await self._rooms.opening(self._site)
        now = None
        if self._chat is not None:
            lines = await self._rooms.transcript(self._chat.id)
            now = p.ChatNow(
                chat_id=self._chat.id,
                state=self._chat.state.value,
                agent=self._chat.agent,
                messages=[_chat_line(line) for line in lines],
            )
        return p.Welcome(
            visitor_token=self._visitor.token,
            open=opening.open,
            next_opening=opening.next_opening,
            chat=now,
        )

    def _parse(self, chat: Chat, raw: str) -> p.CustomerMessage | None:
        try:
            return p.customer_message.validate_json(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'message'}: {e['msg']}"
                for e in error.errors()
            )
            chat.send(p.ErrorFrame(error="validation_error", detail=problems))
            return None

    async def _handle(self, chat: Chat, message: p.CustomerMessage) -> None:
        try:
            match message:
                case p.Hello() | p.Heartbeat():
                    return
                case p.Say():
                    await self._say(chat, message)
                case p.Typing():
                    self._typing(message)
                case p.Read():
                    await self._read(message)
                case p.Leave():
                    await self._leave(chat)
                case p.LeaveMessage():
                    await self._leave_message(chat, message)
                case _:
                    assert_never(message)
        except RateLimited as limited:
            chat.send(
                p.ErrorFrame(
                    of=message.type,
                    error=limited.code,
                    detail=limited.detail,
                    retry_after_seconds=limited.retry_after,
                )
            )
        except AppError as error:
            chat.send(p.ErrorFrame(of=message.type, error=error.code, detail=error.detail))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning("chat message failed", site=self._site.name, error=repr(error))
            chat.send(
                p.ErrorFrame(
                    of=message.type, error="try_again", detail="the database was busy; retry"
                )
            )

    async def _say(self, chat: Chat, message: p.Say) -> None:
        assert self._visitor is not None
        said, self._visitor = await self._rooms.say(
            self._site, self._visitor, self._contact, message.client_id, message.text
        )
        if self._chat is None or self._chat.id != said.chat_id:
            # Its events come from now on: an assignment committed before is in the state
            # read next, one after comes as its event, whose frame reads the state itself
            # (and is kept: this read may be the older).
            placeholder = OpenChat(said.chat_id, InteractionState.queued, None, None)
            self._chat = placeholder
            self._follow(said.chat_id)
            now = await self._rooms.chat_now(said.chat_id)
            if self._chat is placeholder:
                self._chat = now
            joined = self._agent_joined()
            if joined is not None:  # taken before this socket heard of it
                chat.send(joined)
        chat.send(
            p.Stored(client_id=message.client_id, message_id=said.message_id, chat_id=said.chat_id)
        )

    def _typing(self, message: p.Typing) -> None:
        if self._chat is None or self._chat.agent_id is None:
            return  # nobody to tell
        self._hub.signal(
            Signal(
                agent_topic(self._chat.agent_id),
                "chat.typing",
                {"interaction_id": str(self._chat.id), "active": message.active},
            )
        )

    async def _read(self, message: p.Read) -> None:
        current = self._chat
        if current is None or current.agent_id is None:
            return
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            await receipts.read_up_to(
                connection,
                self._hub,
                current.id,
                message.message_id,
                tell=agent_topic(current.agent_id),
            )

    async def _leave(self, chat: Chat) -> None:
        if self._chat is not None:
            await self._rooms.end(self._chat.id, LEFT)
            self._chat = None
        chat.close(GOODBYE)
        raise SessionClosed

    async def _leave_message(self, chat: Chat, message: p.LeaveMessage) -> None:
        assert self._visitor is not None
        await self._after_hours.leave_message(
            self._site, self._visitor, message.email, message.text
        )
        chat.send(p.LeftMessage())

    def _follow(self, chat_id: uuid.UUID) -> None:
        """The chat's events and signals come to this socket from now on."""
        self._hub.follow(self._subscription, str(chat_id))
        self._listening.append(self._hub.signals.listen(chat_topic(chat_id), self._on_signal))

    def _on_signal(self, signal: Signal) -> None:
        """The agent typing, or a receipt of the customer's lines: sent as they come."""
        session = self._session
        if session is None:
            return
        if signal.kind == "chat.typing":
            session.send(p.TypingFrame(active=bool(signal.payload.get("active"))))
        elif signal.kind == receipts.RECEIPT:
            for message_id in signal.payload.get("message_ids", []):
                session.send(
                    p.Receipt(
                        message_id=uuid.UUID(message_id),
                        delivered=bool(signal.payload.get("delivered")),
                        read=bool(signal.payload.get("read")),
                    )
                )

    async def _frame_for(self, db: Reader, event: EventRecord) -> p.ChatFrame | None:
        """The frame an event of the chat is for the customer, if any."""
        payload = event.payload
        if event.kind == "interaction.message":
            if payload.get("direction") != MessageDirection.outbound.value:
                return None  # the customer's own: answered with `stored`
            message_id = uuid.UUID(payload["message_id"])
            await self._delivered(message_id)
            return p.ChatLine(
                message_id=message_id,
                sender="agent",
                agent=payload.get("sender"),
                text=str(payload.get("text", "")),
                sent_at=event.occurred_at,
                delivered=True,
            )
        if event.kind == "interaction.assigned":
            self._chat = await self._rooms.chat_now(uuid.UUID(event.subject_id))
            return self._agent_joined()
        if event.kind == "interaction.queued" and payload.get("from_agent_id"):
            # Transferred to another queue: it waits anew (its place is told again), and the
            # next agent to take it joins as the first did.
            self._chat = await self._rooms.chat_now(uuid.UUID(event.subject_id))
            self._joined, self._told_position = None, None
            return None
        ending = ENDINGS.get(event.kind)
        if ending:
            self._chat = None
            return p.Closed(reason=str(payload.get("reason") or ending))
        return None

    def _agent_joined(self) -> p.AgentJoined | None:
        """`agent_joined` once per agent who takes the chat (a transfer brings another)."""
        current = self._chat
        if current is None or current.state is not InteractionState.assigned:
            return None
        if current.agent_id == self._joined:
            return None
        self._joined = current.agent_id
        return p.AgentJoined(agent=current.agent or "")

    async def _delivered(self, message_id: uuid.UUID) -> None:
        """The agent's line reached the customer's screen: its receipt to the agent."""
        current = self._chat
        if current is not None and current.agent_id is not None:
            await receipts.delivered(
                self._pool, self._hub, message_id, tell=agent_topic(current.agent_id)
            )

    async def _tell_position(self, chat: Chat) -> None:
        """While the chat waits, its place and estimated wait, each time they change (the
        figures a caller hears: app/routing/figures.py)."""
        while True:
            current = self._chat
            if current is not None and current.state in (
                InteractionState.queued,
                InteractionState.offered,
            ):
                with contextlib.suppress(
                    TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError
                ):
                    await self._position(chat, current.id)
            await asyncio.sleep(POSITION_EVERY)

    async def _position(self, chat: Chat, chat_id: uuid.UUID) -> None:
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            wait = await figures.read_caller_wait(connection, chat_id, pg.now())
        if wait is None:
            return
        told = figures.announced_position(self._told_position, wait.position)
        if told == self._told_position:
            return
        self._told_position = told
        seconds = None if wait.estimated is None else round(wait.estimated.total_seconds())
        chat.send(p.Waiting(position=told, estimated_wait_seconds=seconds))

    async def _away(self) -> None:
        """The socket is gone: the chat waits `resume_seconds` for the customer to come back
        (the sweep ends it after that)."""
        if self._chat is not None:
            with contextlib.suppress(Exception):
                await self._rooms.customer_gone(self._chat.id)


def _chat_line(line: Line) -> p.ChatLine:
    sender = (
        "customer"
        if line.direction is MessageDirection.inbound
        else "system"
        if line.kind == "system"
        else "agent"
    )
    return p.ChatLine(
        message_id=line.message_id,
        sender=sender,
        agent=line.sender_name if sender == "agent" else None,
        text=line.text,
        sent_at=line.received_at,
        delivered=line.delivered,
        read=line.read,
    )

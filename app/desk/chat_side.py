"""A desk's side of its chats, besides routing and replies: the customer typing and the
receipts of the agent's lines come in as signals (app/core/signals.py, on the agent's topic),
the agent's typing and reading go out to the customer's socket (the chat's topic), and a
customer's line is delivered once it is framed for the desk (app/interactions/receipts.py).
"""

from __future__ import annotations

import uuid

import asyncpg

from app.core import pg
from app.core.errors import Forbidden
from app.core.hub import EventHub, EventRecord
from app.core.signals import Listening, Signal, agent_topic, chat_topic
from app.core.socket_session import SocketSession
from app.desk.protocol import DeskFrame, MarkRead, ReceiptFrame, Typing, TypingFrame
from app.interactions import receipts

TYPING = "chat.typing"
# The agent holds this chat now: only then does its customer hear of the agent's typing and
# reading.
HOLDS_CHAT = """
    SELECT 1 FROM interactions
    WHERE id = $1 AND agent_id = $2 AND state = 'assigned' AND channel = 'chat'
"""


class NotYourChat(Forbidden):
    code = "forbidden"


class ChatSide:
    def __init__(self, agent_id: uuid.UUID, *, pool: asyncpg.Pool, hub: EventHub) -> None:
        self._agent_id = agent_id
        self._pool = pool
        self._hub = hub
        self._listening: Listening | None = None

    def listen(self, desk: SocketSession[DeskFrame]) -> None:
        """From now on the desk hears its chats' customers typing and its lines' receipts."""

        def heard(signal: Signal) -> None:
            frame = _frame_of(signal)
            if frame is not None:
                desk.send(frame)

        self._listening = self._hub.signals.listen(agent_topic(self._agent_id), heard)

    def stop(self) -> None:
        if self._listening is not None:
            self._hub.signals.stop(self._listening)

    async def typing(self, action: Typing) -> None:
        """Told to the chat's customer, if the agent holds the chat (else nothing: a sign)."""
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            held = await connection.fetchval(HOLDS_CHAT, action.interaction_id, self._agent_id)
        if held:
            self._hub.signal(
                Signal(
                    chat_topic(action.interaction_id),
                    TYPING,
                    {"interaction_id": str(action.interaction_id), "active": action.active},
                )
            )

    async def read(self, action: MarkRead) -> dict[str, object]:
        """The customer's lines up to `message_id` read; the customer told."""
        async with pg.transaction(self._pool) as connection:
            held = await connection.fetchval(HOLDS_CHAT, action.interaction_id, self._agent_id)
            if not held:
                raise NotYourChat("an agent marks read only the chats it holds")
            read = await receipts.read_up_to(
                connection,
                self._hub,
                action.interaction_id,
                action.message_id,
                tell=chat_topic(action.interaction_id),
            )
        return {"interaction_id": str(action.interaction_id), "read": [str(m) for m in read]}

    async def framed(self, event: EventRecord) -> None:
        """A customer's chat line went to this desk (as an update, or in an offer's screen
        pop): it is delivered."""
        payload = event.payload
        if event.kind == "interaction.offered" and payload.get("channel") == "chat":
            await receipts.shown_in_an_offer(
                self._pool,
                self._hub,
                uuid.UUID(event.subject_id),
                tell=chat_topic(event.subject_id),
            )
            return
        if (
            event.kind == "interaction.message"
            and payload.get("channel") == "chat"
            and payload.get("direction") == "inbound"
        ):
            await receipts.delivered(
                self._pool,
                self._hub,
                uuid.UUID(str(payload["message_id"])),
                tell=chat_topic(event.subject_id),
            )


def _frame_of(signal: Signal) -> DeskFrame | None:
    interaction_id = uuid.UUID(str(signal.payload["interaction_id"]))
    if signal.kind == TYPING:
        return TypingFrame(interaction_id=interaction_id, active=bool(signal.payload["active"]))
    if signal.kind == receipts.RECEIPT:
        return ReceiptFrame(
            interaction_id=interaction_id,
            message_ids=[uuid.UUID(m) for m in signal.payload["message_ids"]],
            delivered=bool(signal.payload["delivered"]),
            read=bool(signal.payload["read"]),
        )
    return None

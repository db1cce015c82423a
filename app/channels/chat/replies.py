"""An agent's line in a chat: stored as the interaction's outbound message and written as its
event in the same transaction, which the customer's socket hears (on whichever replica it is)
and shows at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.chat.chats import KIND
from app.channels.chat.models import Chat
from app.core.errors import Conflict
from app.core.events import events_of
from app.interactions.models import (
    Interaction,
    InteractionMessage,
    InteractionState,
    MessageDirection,
)


class CannotSay(Conflict):
    code = "cannot_reply"


class SaidInChat:
    """A line as stored (`message_id`); a chat has no channel id of its own for it."""

    def __init__(self, message_id: uuid.UUID) -> None:
        self.message_id = message_id
        self.channel_message_id = str(message_id)


async def say(
    session: AsyncSession, interaction: Interaction, text: str, *, actor: str, agent_name: str
) -> SaidInChat:
    """The agent's line to the chat's customer, while the agent holds it (the caller has
    checked who may)."""
    if interaction.state is not InteractionState.assigned:
        raise CannotSay(
            f"the chat is {interaction.state.value}: a line goes to the customer while an agent"
            " holds it"
        )
    moment = datetime.now(UTC)
    line = InteractionMessage(
        id=uuid.uuid4(),
        interaction_id=interaction.id,
        direction=MessageDirection.outbound,
        kind=KIND,
        dedupe_key=f"out:{uuid.uuid4().hex}",
        sender=None,
        sender_name=agent_name,
        text=text,
        received_at=moment,
    )
    session.add(line)
    await session.execute(
        update(Chat).where(Chat.interaction_id == interaction.id).values(last_message_at=moment)
    )
    events_of(session).add(
        "interaction.message",
        subject_type="interaction",
        subject_id=interaction.id,
        actor=actor,
        payload={
            "channel": "chat",
            "message_id": str(line.id),
            "direction": MessageDirection.outbound.value,
            "sender": agent_name,
            "text": text,
            "sent_at": moment.isoformat(),
        },
    )
    await session.flush()
    return SaidInChat(line.id)

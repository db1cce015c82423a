"""A chat line's receipts: it reached the other side's screen (delivered), then was read there.

Kept on the message (`delivered_at`, `read_at`: the transcript shows them after a reconnect)
and told to the writer's side at once as a signal (app/core/signals.py): the customer's socket
for the agent's lines (`chat_topic`), the agent's desk for the customer's (`agent_topic`).
The customer's socket and the agent's desk both come here, so a receipt means the same both
ways.
"""

from __future__ import annotations

import uuid

import asyncpg

from app.core import pg
from app.core.hub import EventHub
from app.core.signals import Signal
from app.interactions import messages

RECEIPT = "chat.receipt"


def receipt(
    topic: str, interaction_id: uuid.UUID, message_ids: list[uuid.UUID], *, read: bool
) -> Signal:
    return Signal(
        topic,
        RECEIPT,
        {
            "interaction_id": str(interaction_id),
            "message_ids": [str(m) for m in message_ids],
            "delivered": True,
            "read": read,
        },
    )


async def delivered(pool: asyncpg.Pool, hub: EventHub, message_id: uuid.UUID, *, tell: str) -> None:
    """The message reached its reader's screen: kept, and told to `tell` the first time."""
    async with pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
        interaction_id = await messages.delivered(connection, message_id, pg.now())
    if interaction_id is not None:
        hub.signal(receipt(tell, interaction_id, [message_id], read=False))


async def shown_in_an_offer(
    pool: asyncpg.Pool, hub: EventHub, interaction_id: uuid.UUID, *, tell: str
) -> None:
    """An offer's screen pop showed the customer's lines so far to an agent: delivered, and
    told to `tell`."""
    async with pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
        shown = await messages.delivered_all_inbound(connection, interaction_id, pg.now())
    if shown:
        hub.signal(receipt(tell, interaction_id, shown, read=False))


async def read_up_to(
    connection: asyncpg.Connection,
    hub: EventHub,
    interaction_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    tell: str,
) -> list[uuid.UUID]:
    """The reader has read the other side's lines up to `message_id`: kept, and those newly
    read told to `tell`."""
    read = await messages.read_up_to(connection, interaction_id, message_id, pg.now())
    if read:
        hub.signal(receipt(tell, interaction_id, read, read=True))
    return read

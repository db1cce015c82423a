"""The chat sweep: a chat whose customer has been away longer than their site's
`resume_seconds` ends (abandoned while it waits, to the agent's wrap-up when held), and one an
agent holds where nobody has written for `quiet_close_seconds` is closed, each with a line in
its transcript saying why.

Away means no socket of theirs on a live replica: theirs dropped (`customer_left_at`), or the
replica it was on lost its lease (a crash), counted from when that lease ran out. Every replica
sweeps, every few seconds: ending a chat is once only (`ChatRooms.end` claims it), so two
sweeps that find the same chat do it once.
"""

from __future__ import annotations

import uuid

import asyncpg

from app.channels.chat.chats import WENT_AWAY, WENT_QUIET, ChatRooms
from app.core import pg
from app.core.logging import get_logger
from app.core.periodic import Periodic

log = get_logger(__name__)

SWEEP_EVERY = 2.0
BATCH = 100

# Chats whose customer is away past their site's resume time ($1: now).
AWAY = """
    SELECT c.interaction_id
    FROM chats c
    JOIN chat_sites s ON s.id = c.site_id
    JOIN interactions i ON i.id = c.interaction_id
    LEFT JOIN replicas r ON r.id = c.replica_id
    WHERE c.closed_at IS NULL AND i.state IN ('queued', 'offered', 'assigned')
      AND coalesce(
          CASE WHEN c.replica_id IS NULL THEN c.customer_left_at END,
          CASE WHEN r.lease_until IS NULL OR r.lease_until < $1 THEN coalesce(r.lease_until, $1) END
      ) < $1::timestamptz - make_interval(secs => s.resume_seconds)
    LIMIT $2
"""
# Chats an agent holds where nobody has written since the site's quiet time ($1: now): the
# agent's taking it counts as a line.
QUIET = """
    SELECT c.interaction_id
    FROM chats c
    JOIN chat_sites s ON s.id = c.site_id
    JOIN interactions i ON i.id = c.interaction_id
    WHERE c.closed_at IS NULL AND i.state = 'assigned'
      AND greatest(c.last_message_at, i.assigned_at)
          < $1::timestamptz - make_interval(secs => s.quiet_close_seconds)
    LIMIT $2
"""


async def due(pool: asyncpg.Pool) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """The chats to end now: those whose customer is away, those gone quiet."""
    moment = pg.now()
    async with pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
        away = [row[0] for row in await connection.fetch(AWAY, moment, BATCH)]
        quiet = [row[0] for row in await connection.fetch(QUIET, moment, BATCH)]
    return away, [chat for chat in quiet if chat not in away]


async def sweep_once(pool: asyncpg.Pool, rooms: ChatRooms) -> int:
    away, quiet = await due(pool)
    for chat_id in away:
        await rooms.end(chat_id, WENT_AWAY)
    for chat_id in quiet:
        await rooms.end(chat_id, WENT_QUIET)
    return len(away) + len(quiet)


class ChatSweep(Periodic):
    """Runs `sweep_once` every SWEEP_EVERY seconds until stopped."""

    def __init__(self, pool: asyncpg.Pool, rooms: ChatRooms, every: float = SWEEP_EVERY) -> None:
        super().__init__(
            "chat sweep",
            lambda: sweep_once(pool, rooms),
            every,
            (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError),
        )

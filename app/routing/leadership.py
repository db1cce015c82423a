"""Which replica's matcher runs the passes: the one holding a PostgreSQL advisory lock.

The lock is session-level, on a connection of the lead's own: when the leader's process dies,
PostgreSQL ends its session and the lock goes with it, and another replica takes over within a
tick (tests/routing/test_leadership.py, the kill test in tests/routing/test_replicas.py). The
lead is given up only by closing that connection. While leading, a second connection reads the
agents alongside the first's read of the waiting work (app/routing/passes.py).

Why a lead rather than a transaction-level lock per pass (DESIGN.md's simple way): the per-pass
form took BEGIN, `pg_advisory_xact_lock` and COMMIT on every pass, three of the pass's round
trips; dropping them took the benchmark's ingest-to-offer p50 at 50/s from 41 to 34 ms.
"""

from __future__ import annotations

import asyncio

import asyncpg

from app.core.hub import EventHub
from app.core.logging import get_logger
from app.core.pg import connect

log = get_logger(__name__)

MATCHER_LOCK_KEY = 7_2026_11_29


class Lead:
    """The matcher's claim to lead: bids at most once a tick while another replica leads."""

    def __init__(self, database_url: str, hub: EventHub, *, tick: float) -> None:
        self._database_url = database_url
        self._hub = hub
        self._tick = tick
        self._connection: asyncpg.Connection | None = None
        self._reader: asyncpg.Connection | None = None
        self._leading = False
        self._last_bid = float("-inf")

    @property
    def leading(self) -> bool:
        return self._leading

    async def hold(self, moment: float) -> tuple[asyncpg.Connection, bool] | None:
        """The leader's connection and whether the lead was gained just now; None while
        another replica leads (or the bid must wait for the next tick)."""
        if self._leading and self._connection is not None and not self._connection.is_closed():
            return self._connection, False
        self._leading = False
        if self._reader is not None:  # a second connection only while leading
            reader, self._reader = self._reader, None
            await _close(reader)
        if moment - self._last_bid < self._tick:
            return None
        self._last_bid = moment
        if self._connection is None or self._connection.is_closed():
            self._connection = await connect(self._database_url)
            # Passes and upkeep publish what they write; the hub announces it.
            await self._hub.own(self._connection)
        if await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", MATCHER_LOCK_KEY):
            self._leading = True
            log.info("this replica now runs the matcher")
            return self._connection, True
        return None

    async def reader(self) -> asyncpg.Connection:
        """The leader's second connection, for the agents' read while the first reads the
        waiting work. It writes nothing, so it is not the hub's to own."""
        if self._reader is None or self._reader.is_closed():
            self._reader = await connect(self._database_url)
        return self._reader

    async def resign(self) -> None:
        """Give up the lead (if held) by ending the session, the one way it is let go."""
        self._leading = False
        connections = (self._connection, self._reader)
        self._connection = self._reader = None
        for connection in connections:
            await _close(connection)


async def _close(connection: asyncpg.Connection | None) -> None:
    if connection is None or connection.is_closed():
        return
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:  # closing politely failed: drop the socket; the session ends too
        connection.terminate()

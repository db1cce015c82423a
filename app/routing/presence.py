"""Signs of life from this replica's desks, written to `agent_presence` in batches.

A heartbeat is the most frequent message there is (every desk, every few seconds) and the
least urgent: the sweeper only asks whether an agent was heard within `silence_seconds`. So a
heartbeat is noted in memory and one statement a second writes every agent heard since the last
one. A replica that dies loses at most that second, well inside the silence allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import unit_of_work
from app.core.logging import get_logger

log = get_logger(__name__)

# A table of its own (app.agents.models.AgentPresence): writing it takes no lock on agent rows,
# which accepting, completing and the matcher's sweeps hold. Rows go in id order, so two replicas
# flushing at once never deadlock; an agent deleted meanwhile is left out by the join.
FLUSH = text(
    """
    INSERT INTO agent_presence (agent_id, last_seen_at)
    SELECT heard.id, heard.seen
    FROM unnest(CAST(:ids AS uuid[]), CAST(:seen AS timestamptz[])) AS heard(id, seen)
    JOIN agents a ON a.id = heard.id
    ORDER BY heard.id
    ON CONFLICT (agent_id) DO UPDATE SET last_seen_at = excluded.last_seen_at
    WHERE agent_presence.last_seen_at < excluded.last_seen_at
    """
)


class Presence:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, every: float = 1.0) -> None:
        self._sessions = sessions
        self._every = every
        self._heard: dict[uuid.UUID, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def seen(self, agent_id: uuid.UUID) -> None:
        self._heard[agent_id] = datetime.now(UTC)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
        with contextlib.suppress(Exception):
            await self.flush()

    async def flush(self) -> int:
        """Write what was heard since the last flush; on failure it is kept for the next one."""
        heard, self._heard = self._heard, {}
        if not heard:
            return 0
        ids = sorted(heard)
        try:
            async with unit_of_work(self._sessions) as session:
                await session.execute(FLUSH, {"ids": ids, "seen": [heard[i] for i in ids]})
        except BaseException:
            for agent_id, seen in heard.items():
                self._heard.setdefault(agent_id, seen)
            raise
        return len(ids)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.flush()
            except Exception as error:  # the database is busy or away: try again next time
                log.warning("presence flush failed", error=repr(error))

"""The reports' roll-up: the event log folded into each queue's line by quarter-hour, channel and
customer tier (`queue_quarters`), with the live ledger's own fold (`Ledger.line_changes`), so a
report and the wallboard count every wait alike (docs/metrics.md).

One replica at a time does it: a round locks the roll-up's mark (`rollup_marks`, SKIP LOCKED:
another replica's round is under way, this one skips), reads the events after it in log order,
adds what they count to their quarters and moves the mark, in one transaction. It reads only
events older than `LAG`: an event id is taken before its transaction commits, so a younger one
with a smaller id may still be on its way; none takes that long.

Each agent's time goes to its own quarters in the same round (app/supervisor/agent_rollup.py).

The tier is the customer's as the round reads it, seconds after the event (the events do not
carry it; a customer whose tier changes later keeps the quarters it had).
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from app.core.hub import EventRecord
from app.core.periodic import Periodic
from app.core.pg import now
from app.routing.figures import Tally
from app.supervisor import agent_rollup
from app.supervisor.ledger import KINDS, Ledger
from app.supervisor.ledger_reads import read_queue_settings

NAME = "queue_quarters"
LAG = timedelta(seconds=30)
# Events a batch folds: small enough that its fold (about 14 µs an event) holds the replica's
# event loop for a few milliseconds at a time, not the tens a round of a busy minute would.
BATCH = 500
QUARTER_S = 15 * 60
UNKNOWN_TIER = "unknown"

ENSURE_MARK = "INSERT INTO rollup_marks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING"
LOCK_MARK = "SELECT last_event_id FROM rollup_marks WHERE name = $1 FOR UPDATE SKIP LOCKED"
MOVE_MARK = "UPDATE rollup_marks SET last_event_id = $2 WHERE name = $1"

# The events the fold counts, after the mark, with what the events do not say: the customer's
# tier, and for a completion its handle time (from the row: its last assignment to its end).
# The CASE keeps the cast away from subjects that are not interactions.
EVENTS = """
    SELECT e.id, e.occurred_at, e.kind, e.subject_type, e.subject_id, e.actor,
           e.payload::text AS payload, c.tier, i.queue_id AS ended_in, i.channel AS row_channel,
           extract(epoch FROM i.ended_at - i.assigned_at)::float8 AS handle_seconds
    FROM events e
    LEFT JOIN interactions i
           ON i.id = CASE WHEN e.subject_type = 'interaction' THEN e.subject_id::uuid END
    LEFT JOIN customers c ON c.id = i.customer_id
    WHERE e.id > $1 AND e.kind = ANY($2::text[])
    ORDER BY e.id
    LIMIT $3
"""

ADD = """
    INSERT INTO queue_quarters AS q (
        quarter, queue_id, channel, tier, offered, answered, answered_in_target,
        answer_wait_seconds, abandoned, abandoned_in_target, short_abandoned, expired,
        transferred, converted, handled, handle_seconds, longest_wait_seconds
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
    ON CONFLICT (quarter, queue_id, channel, tier) DO UPDATE SET
        offered = q.offered + excluded.offered,
        answered = q.answered + excluded.answered,
        answered_in_target = q.answered_in_target + excluded.answered_in_target,
        answer_wait_seconds = q.answer_wait_seconds + excluded.answer_wait_seconds,
        abandoned = q.abandoned + excluded.abandoned,
        abandoned_in_target = q.abandoned_in_target + excluded.abandoned_in_target,
        short_abandoned = q.short_abandoned + excluded.short_abandoned,
        expired = q.expired + excluded.expired,
        transferred = q.transferred + excluded.transferred,
        converted = q.converted + excluded.converted,
        handled = q.handled + excluded.handled,
        handle_seconds = q.handle_seconds + excluded.handle_seconds,
        longest_wait_seconds = greatest(q.longest_wait_seconds, excluded.longest_wait_seconds)
"""

Key = tuple[datetime, uuid.UUID, str, str]  # quarter, queue, channel, tier


@dataclass(slots=True)
class QuarterSums:
    """What a round adds to one quarter of one line."""

    tally: Tally
    handled: int = 0
    handle_seconds: float = 0.0
    longest_wait_seconds: float = 0.0

    def row(self, key: Key) -> tuple[object, ...]:
        t = self.tally
        return (
            *key,
            t.offered,
            t.answered,
            t.answered_in_target,
            t.answer_wait_seconds,
            t.abandoned,
            t.abandoned_in_target,
            t.short_abandoned,
            t.expired,
            t.transferred,
            t.converted,
            self.handled,
            self.handle_seconds,
            self.longest_wait_seconds,
        )


def quarter_of(moment: datetime) -> datetime:
    """The start of `moment`'s quarter-hour (UTC quarters: every zone's are the same)."""
    seconds = int(moment.timestamp())
    return moment - timedelta(seconds=seconds % QUARTER_S, microseconds=moment.microsecond)


def fold(ledger: Ledger, logged: Iterable[agent_rollup.Logged]) -> dict[Key, QuarterSums]:
    """What the events `logged` add to each quarter of each line."""
    sums: dict[Key, QuarterSums] = {}
    for row, event in logged:
        channel = str(event.payload.get("channel") or row["row_channel"] or "")
        tier = row["tier"] or UNKNOWN_TIER
        quarter = quarter_of(event.occurred_at)
        for queue_id, tally in ledger.line_changes(event):
            added = _sums(sums, (quarter, queue_id, channel, tier))
            added.tally += tally
            if tally.left:
                waited = float(event.payload.get("waited_seconds") or 0.0)
                added.longest_wait_seconds = max(added.longest_wait_seconds, waited)
        if _handled(event, row):
            added = _sums(sums, (quarter, row["ended_in"], channel, tier))
            added.handled += 1
            added.handle_seconds += row["handle_seconds"]
    return sums


def _sums(sums: dict[Key, QuarterSums], key: Key) -> QuarterSums:
    if key not in sums:
        sums[key] = QuarterSums(Tally())
    return sums[key]


def _handled(event: EventRecord, row: Mapping[str, Any]) -> bool:
    """A completion with its handle time: counted, as AHT counts it, in the queue it ended in,
    at its end (docs/metrics.md, "Average handle time")."""
    return (
        event.kind == "interaction.completed"
        and row["handle_seconds"] is not None
        and row["ended_in"] is not None
    )


async def roll_up(connection: asyncpg.Connection, default_zone: str = "UTC") -> int:
    """One round, in one transaction under the mark's lock: every event old enough after the
    mark, folded in batches (each a few milliseconds of the event loop); how many it folded
    (0 when another replica holds the mark). The settings and the agents' marks are read once
    a round."""
    await connection.execute(ENSURE_MARK, NAME)  # committed apart: a lock, not a wait, decides
    async with connection.transaction():
        mark = await connection.fetchval(LOCK_MARK, NAME)
        if mark is None:
            return 0
        ledger = Ledger(await read_queue_settings(connection, default_zone), default_zone)
        marks = await agent_rollup.read_marks(connection)
        before = {agent_id: copy.copy(standing) for agent_id, standing in marks.items()}
        cutoff, folded, more = now() - LAG, 0, True
        while more:
            mark, count, more = await _batch(connection, ledger, marks, mark, cutoff)
            folded += count
        # Once the log is read to its end, every agent's time up to the last quarter's end, so
        # quiet quarters fill (once a quarter, not every round).
        tail = agent_rollup.fold_agents(marks, [], agent_rollup.quarter_start(cutoff))
        await agent_rollup.save(connection, agent_rollup.moved(marks, before), tail)
        await connection.execute(MOVE_MARK, NAME, mark)
    return folded


async def _batch(
    connection: asyncpg.Connection,
    ledger: Ledger,
    marks: dict[uuid.UUID, agent_rollup.Standing],
    mark: int,
    cutoff: datetime,
) -> tuple[int, int, bool]:
    """The next batch after `mark`: folded and added; the new mark, how many, and whether more
    may follow."""
    rows = await connection.fetch(EVENTS, mark, list(KINDS), BATCH)
    ready = list(itertools.takewhile(lambda row: row["occurred_at"] < cutoff, rows))
    if not ready:
        return mark, 0, False
    logged = agent_rollup.read(ready)
    sums = fold(ledger, logged)
    await connection.executemany(ADD, [added.row(key) for key, added in sums.items()])
    agent_sums = agent_rollup.fold_agents(marks, logged, None)
    await agent_rollup.save(connection, {}, agent_sums)
    return ready[-1]["id"], len(ready), len(ready) == len(rows) == BATCH


EVERY = 10.0  # seconds between rounds: a report lags the log by LAG plus at most this


class Rollups:
    """The roll-up's rounds on this replica, every `every` seconds until stopped; a round that
    fails (the database away) is logged and the next one tries again from the mark."""

    def __init__(self, pool: asyncpg.Pool, default_zone: str, every: float = EVERY) -> None:
        self._pool, self._zone = pool, default_zone
        self._rounds = Periodic(
            "reports' roll-up",
            self.round,
            every,
            (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError),
        )

    async def round(self) -> int:
        async with self._pool.acquire() as connection:
            return await roll_up(connection, self._zone)

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

"""The supervisors' live ledger over the whole run (app/supervisor/ledger.py), once the server
has stopped: every replica folds every event it hears, so its cost per event is on the hot
loop's side of every replica, and a replica that starts reads and folds the day's log.

It reports the fold's cost (µs per event, the read of the log apart) and checks its figures
against the database: per queue, what joined the line and did not leave it is what waits there
at the end (the bench's queues start empty), the balance of docs/metrics.md. A build without
the ledger (an older commit in a comparison) reports nothing.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg

# What waits in a line at the end, per queue: queued, or offered and not yet answered.
WAITING = """
    SELECT queue_id, count(*) AS n FROM interactions
    WHERE state IN ('queued', 'offered') GROUP BY queue_id
"""


async def fold_the_run(dsn: str) -> dict[str, Any]:
    try:
        from app.core.hub import record_of
        from app.supervisor.ledger import KINDS, Ledger
        from app.supervisor.ledger_reads import read_queue_settings
    except ImportError:
        return {"note": "this build has no live ledger"}
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        rows = await connection.fetch(
            "SELECT id, occurred_at, kind, subject_type, subject_id, actor,"
            " payload::text AS payload FROM events WHERE kind = ANY($1::text[]) ORDER BY id",
            list(KINDS),
        )
        read_s = time.perf_counter() - started
        book = Ledger(await read_queue_settings(connection))
        waiting = {row["queue_id"]: row["n"] for row in await connection.fetch(WAITING)}
    finally:
        await connection.close()
    events = [record_of(row) for row in rows]
    started = time.perf_counter()
    for event in events:
        book.apply(event)
    fold_s = time.perf_counter() - started
    if not events:
        return {"events": 0}
    first, last = events[0].occurred_at, events[-1].occurred_at + timedelta(seconds=1)
    unbalanced = {}
    for queue_id in {*waiting, *_queues(book, events)}:
        tally = book.tally(queue_id, first, last)
        if tally.offered - tally.left != waiting.get(queue_id, 0):
            unbalanced[str(queue_id)] = {
                "offered": tally.offered,
                "left": tally.left,
                "waiting_at_the_end": waiting.get(queue_id, 0),
            }
    return {
        "events": len(events),
        "read_s": round(read_s, 3),
        "fold_us_per_event": round(fold_s / len(events) * 1e6, 2),
        "unbalanced_queues": unbalanced,
    }


def _queues(book: Any, events: list[Any]) -> set[uuid.UUID]:
    return {
        uuid.UUID(queue_id)
        for event in events
        for queue_id in [event.payload.get("queue_id")]
        if queue_id and book.knows_queue(uuid.UUID(queue_id))
    }

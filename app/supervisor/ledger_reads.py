"""The live ledger's reads from PostgreSQL: queue settings, the seed from the event log, the
AHT beside the ledger's figures, and a live event applied with what it needs read first
(app/supervisor/ledger.py is the fold itself, pure)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from app.core.channels import Channel
from app.core.hub import EventRecord, record_of
from app.queues.models import AbandonPolicy
from app.routing.figures import ServiceRules, read_aht
from app.supervisor.ledger import (
    DEFAULT_SETTINGS,
    KINDS,
    RECENT,
    STAFFED_STATES,
    Ledger,
    QueuePeriods,
    QueueSettings,
    Touched,
    agent_changes,
    day_start,
)

QUEUE_SETTINGS = """
    SELECT id, business_hours ->> 'timezone' AS zone, sl_target_seconds, abandon_policy,
           short_abandon_seconds
    FROM queues
"""


def settings_of(row: asyncpg.Record, default_zone: str = "UTC") -> QueueSettings:
    """A queue's settings: its zone is its business hours' (a queue without hours: the
    center's, `CC_TIME_ZONE`)."""
    return QueueSettings(
        zone=ZoneInfo(row["zone"] or default_zone),
        rules=ServiceRules(
            target_seconds=row["sl_target_seconds"],
            abandon_policy=AbandonPolicy(row["abandon_policy"]),
            short_abandon_seconds=row["short_abandon_seconds"],
        ),
    )


async def read_queue_settings(
    connection: asyncpg.Connection, default_zone: str = "UTC"
) -> dict[uuid.UUID, QueueSettings]:
    rows = await connection.fetch(QUEUE_SETTINGS)
    return {row["id"]: settings_of(row, default_zone) for row in rows}


# The events the ledger folds since $2, up to the hub's position $3, in log order.
SEED_EVENTS = """
    SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload::text AS payload
    FROM events
    WHERE kind = ANY($1::text[]) AND occurred_at >= $2 AND id <= $3
    ORDER BY id
"""

# Each agent now: staffed or not, and how many interactions it holds.
AGENTS_NOW = """
    SELECT a.id, a.state,
           (SELECT count(*) FROM interactions i
            WHERE i.agent_id = a.id AND i.state IN ('assigned', 'wrap_up')) AS holding
    FROM agents a
"""


async def seed_ledger(
    connection: asyncpg.Connection,
    ledger: Ledger,
    moment: datetime,
    up_to: int,
) -> None:
    """Fold the log into `ledger`: every event up to id `up_to` since the earliest start of a
    queue's today (or 30 minutes ago, if earlier), read in one snapshot with what each agent
    is doing now; each agent's past half hour is worked back from now."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        settings = await read_queue_settings(connection, ledger.default_zone)
        for queue_id, queue_settings in settings.items():
            ledger.set_queue(queue_id, queue_settings)
        starts = [day_start(moment, s.zone) for s in settings.values()]
        since = min([moment - RECENT, *starts])
        rows = await connection.fetch(SEED_EVENTS, list(KINDS), since, up_to)
        agents = await connection.fetch(AGENTS_NOW)
    events = [record_of(row) for row in rows]
    now_by_agent = {r["id"]: (r["state"] in STAFFED_STATES, int(r["holding"])) for r in agents}
    _start_agents(ledger, moment - RECENT, now_by_agent, events)
    for event in events:
        ledger.apply(event)


def _start_agents(
    ledger: Ledger,
    start: datetime,
    now_by_agent: Mapping[uuid.UUID, tuple[bool, int]],
    events: Sequence[EventRecord],
) -> None:
    """Each agent as it was at `start`: its state before its first change since (the
    change's `from`), else as now; what it held, what it holds now less what it was given
    since. Events before `start` then change nothing that `start` does not already say."""
    recent = [e for e in events if e.occurred_at >= start]
    first_from: dict[uuid.UUID, bool] = {}
    given: dict[uuid.UUID, int] = {}
    for event in recent:
        if event.kind == "agent.state_changed" and "from" in event.payload:
            first_from.setdefault(
                uuid.UUID(event.subject_id), event.payload["from"] in STAFFED_STATES
            )
        for agent_id, _, held in agent_changes(event):
            given[agent_id] = given.get(agent_id, 0) + held
    for agent_id, (staffed, holding) in now_by_agent.items():
        ledger.start_agent(
            agent_id,
            start,
            first_from.get(agent_id, staffed),
            max(0, holding - given.get(agent_id, 0)),
        )


async def read_queue_periods(
    connection: asyncpg.Connection, ledger: Ledger, queue_id: uuid.UUID, moment: datetime
) -> QueuePeriods:
    """`Ledger.periods` with the queue's AHT today and over the last 30 minutes (two reads of
    `read_aht`, over every channel: each an index range)."""
    zone = ledger.settings(queue_id).zone
    every = list(Channel)
    today = await read_aht(connection, queue_id, every, moment, moment - day_start(moment, zone))
    recent = await read_aht(connection, queue_id, every, moment, RECENT)
    return ledger.periods(queue_id, moment, today, recent)


async def take(ledger: Ledger, event: EventRecord, connection: asyncpg.Connection) -> Touched:
    """Apply a live event, first reading a queue's settings when it changed or is new to the
    ledger (a queue made after the seed)."""
    unknown = _unknown_queues(ledger, event)
    if event.kind in ("queue.created", "queue.updated") or unknown:
        every = await read_queue_settings(connection, ledger.default_zone)
        for queue_id, settings in every.items():
            ledger.set_queue(queue_id, settings)
        for queue_id in unknown:  # gone already: read once, counted with the defaults
            if not ledger.knows_queue(queue_id):
                ledger.set_queue(queue_id, DEFAULT_SETTINGS)
    return ledger.apply(event)


def _unknown_queues(ledger: Ledger, event: EventRecord) -> list[uuid.UUID]:
    return [
        queue_id
        for key in ("queue_id", "to_queue_id", "from_queue_id")
        if (raw := event.payload.get(key)) and not ledger.knows_queue(queue_id := uuid.UUID(raw))
    ]

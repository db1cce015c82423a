"""The floor as Prometheus sees it at a scrape: waiting work per queue and channel, the longest
wait per queue, agents by state, the outbox's unsent messages.

Read from PostgreSQL when /metrics is scraped (one statement, on the hot pool, bounded in
time), never kept in memory: every replica and worker would keep its own copy, and they
would disagree. In a server with several workers the scraped worker reads them once
(app/supervisor/prometheus.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric

from app.agents.models import AgentState
from app.core.channels import Channel
from app.core.logging import get_logger
from app.core.outbox import OutboxState
from app.core.pg import now
from app.routing.figures import WAITING_NOW

log = get_logger(__name__)

# A scrape waits this long for a connection, and as long again for the statement; past
# that it answers without the floor's figures (cc_floor_read_ok 0) rather than pile up
# behind a busy database. Prometheus's own scrape timeout is 10 s by default.
READ_SECONDS = 2.0

# What waits now (`figures.WAITING_NOW`, docs/metrics.md "The line now"), summed over tiers,
# then the agents by state (one row per agent; users deactivated left out, as routing leaves
# them) and the outbox's unsent messages by state (`ix_outbox_messages_state_created`).
FLOOR = f"""
    WITH waiting AS ({WAITING_NOW})
    SELECT 'waiting' AS figure, w.queue_id, q.name AS queue, w.channel::text AS label,
           sum(w.n)::float8 AS value,
           extract(epoch FROM $2::timestamptz - min(w.oldest))::float8 AS longest
    FROM waiting w JOIN queues q ON q.id = w.queue_id
    GROUP BY w.queue_id, q.name, w.channel
    UNION ALL
    SELECT 'queue', q.id, q.name, NULL, 0, NULL FROM queues q
    UNION ALL
    SELECT 'agents', NULL, NULL, a.state::text, count(*)::float8, NULL
    FROM agents a JOIN users u ON u.id = a.user_id
    WHERE u.is_active
    GROUP BY a.state
    UNION ALL
    SELECT 'outbox', NULL, NULL, o.state::text, count(*)::float8, NULL
    FROM outbox_messages o
    WHERE o.state IN ('pending', 'sending', 'failed', 'dead')
    GROUP BY o.state
"""  # noqa: S608 - constants only, no outside text

UNSENT = (OutboxState.pending, OutboxState.sending, OutboxState.failed, OutboxState.dead)


@dataclass
class QueueLine:
    """One queue's waiting work, by channel, and its longest wait in seconds (0: none)."""

    name: str
    waiting: dict[str, float] = field(default_factory=lambda: dict.fromkeys(Channel, 0.0))
    longest: float = 0.0


@dataclass
class Floor:
    """The figures of one scrape."""

    queues: dict[uuid.UUID, QueueLine] = field(default_factory=dict)
    agents: dict[str, float] = field(default_factory=lambda: dict.fromkeys(AgentState, 0.0))
    outbox: dict[str, float] = field(default_factory=lambda: dict.fromkeys(UNSENT, 0.0))


def floor_from(rows: Sequence[asyncpg.Record]) -> Floor:
    """The statement's rows as figures; every queue, channel, agent state and unsent state
    shows, at 0 when nothing counts in it (a dashboard then draws 0, not a gap)."""
    floor = Floor()
    for row in rows:  # the queues come before their waiting work is added: two passes
        if row["figure"] == "queue":
            floor.queues[row["queue_id"]] = QueueLine(row["queue"])
    for row in rows:
        match row["figure"]:
            case "waiting":
                line = floor.queues.setdefault(row["queue_id"], QueueLine(row["queue"]))
                line.waiting[row["label"]] = row["value"]
                line.longest = max(line.longest, row["longest"])
            case "agents":
                floor.agents[row["label"]] = row["value"]
            case "outbox":
                floor.outbox[row["label"]] = row["value"]
    return floor


async def read_floor(pool: asyncpg.Pool) -> Floor | None:
    """The floor now, or None when the database does not answer within `READ_SECONDS`
    (said in the log)."""
    try:
        async with pool.acquire(timeout=READ_SECONDS) as connection:
            rows = await connection.fetch(FLOOR, None, now(), timeout=READ_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        log.warning("metrics.floor_unread", error=type(error).__name__)
        return None
    return floor_from(rows)


def families(floor: Floor | None) -> list[Metric]:
    """The floor's figures as Prometheus gauges, and whether they could be read."""
    read_ok = GaugeMetricFamily(
        "cc_floor_read_ok",
        "1 when this scrape read the floor's figures from the database, 0 when it could not"
        " (then they are missing from it)",
        value=0 if floor is None else 1,
    )
    if floor is None:
        return [read_ok]
    waiting = GaugeMetricFamily(
        "cc_queue_waiting",
        "Interactions waiting for an agent (queued and in line, or being offered), by queue and"
        " channel",
        labels=["queue_id", "queue", "channel"],
    )
    longest = GaugeMetricFamily(
        "cc_queue_longest_wait_seconds",
        "How long the queue's longest-waiting interaction has waited, in seconds (0: none waits)",
        labels=["queue_id", "queue"],
    )
    for queue_id, line in floor.queues.items():
        for channel, count in line.waiting.items():
            waiting.add_metric([str(queue_id), line.name, channel], count)
        longest.add_metric([str(queue_id), line.name], line.longest)
    agents = GaugeMetricFamily("cc_agents", "Agents by state (active users only)", labels=["state"])
    for state, count in floor.agents.items():
        agents.add_metric([state], count)
    outbox = GaugeMetricFamily(
        "cc_outbox_unsent",
        "Messages of the outbox not sent yet, by state (dead ones wait for an admin's retry)",
        labels=["state"],
    )
    for state, count in floor.outbox.items():
        outbox.add_metric([state], count)
    return [read_ok, waiting, longest, agents, outbox]

"""The live board's reads: what stands now, in a few statements on the hot pool, each for many
queues or agents at once (a window's whole batch), never one per supervisor socket.

The period figures are not read here: they come from the ledger's fold of the event log
(app/supervisor/ledger.py). What is read is what a fold of events would have to guess at: who
waits now and since when, which agents qualify for which queue and in which state they are,
what each agent holds, which complaints are late.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.agents.models import AgentState
from app.core.channels import Channel
from app.core.pg import Reader
from app.customers.models import Tier
from app.routing.directory import holds_the_skills_of
from app.routing.figures import WAITING_NOW, longest_wait
from app.supervisor.views import (
    AgentsByState,
    AgentView,
    ComplaintView,
    HeldInteraction,
    Waiting,
)
from app.tickets.models import OPEN_STEPS
from app.tickets.open_complaints import DUE as SOONEST_DUE


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A queue as its tile names it (the ledger reads its service rules and zone itself)."""

    id: uuid.UUID
    name: str
    sl_target_percent: int
    sl_target_seconds: int


QUEUES = """
    SELECT id, name, sl_target_percent, sl_target_seconds FROM queues ORDER BY lower(name), id
"""


async def read_queues(db: Reader) -> list[QueueRow]:
    return [
        QueueRow(
            id=row["id"],
            name=row["name"],
            sl_target_percent=row["sl_target_percent"],
            sl_target_seconds=row["sl_target_seconds"],
        )
        for row in await db.fetch(QUEUES)
    ]


# --- the line now -------------------------------------------------------------------------------

# What waits now: `figures.WAITING_NOW` (docs/metrics.md, "The line now").


@dataclass(slots=True)
class Line:
    """A queue's line now: how many wait, by channel and tier, and since when the longest."""

    waiting: Waiting
    oldest: datetime | None

    def longest_wait(self, now: datetime) -> float | None:
        return longest_wait(self.oldest, now)


def empty_line() -> Line:
    return Line(
        Waiting(
            total=0,
            by_channel={channel.value: 0 for channel in Channel},
            by_tier={tier.value: 0 for tier in Tier},
        ),
        None,
    )


async def read_lines(
    db: Reader, queue_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Line]:
    lines = {queue_id: empty_line() for queue_id in queue_ids}
    for row in await db.fetch(WAITING_NOW, list(queue_ids), now):
        line = lines[row["queue_id"]]
        n = row["n"]
        line.waiting.total += n
        line.waiting.by_channel[row["channel"]] = line.waiting.by_channel.get(row["channel"], 0) + n
        line.waiting.by_tier[row["tier"]] = line.waiting.by_tier.get(row["tier"], 0) + n
        if line.oldest is None or row["oldest"] < line.oldest:
            line.oldest = row["oldest"]
    return lines


# --- the agents of a queue ----------------------------------------------------------------------

# An active agent qualifies for a queue when it holds every skill the queue requires, at its
# minimum level (routing's own test of a queue's staff: app/routing/figures.py `STAFFED`),
# whatever its state and capacity.
_QUALIFIES = f"""
    FROM queues q, agents a JOIN users u ON u.id = a.user_id
    WHERE q.id = ANY($1::uuid[]) AND u.is_active
      AND {holds_the_skills_of("q.id")}
"""
STAFF_BY_STATE = (
    "SELECT q.id AS queue_id, a.state, count(*)::int AS n" + _QUALIFIES + " GROUP BY 1, 2"
)
STAFF = "SELECT q.id AS queue_id, a.id AS agent_id" + _QUALIFIES


async def read_staff_by_state(
    db: Reader, queue_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AgentsByState]:
    staff = {queue_id: AgentsByState() for queue_id in queue_ids}
    for row in await db.fetch(STAFF_BY_STATE, list(queue_ids)):
        state = AgentState(row["state"])
        setattr(staff[row["queue_id"]], state.value, row["n"])
    return staff


async def read_queues_of_agents(
    db: Reader, queue_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """For each qualifying agent, the queues it qualifies for: a change of its state moves
    their counts."""
    queues_of: dict[uuid.UUID, set[uuid.UUID]] = {}
    for row in await db.fetch(STAFF, list(queue_ids)):
        queues_of.setdefault(row["agent_id"], set()).add(row["queue_id"])
    return queues_of


# --- agents -------------------------------------------------------------------------------------

# Each agent with what it holds (assigned, in wrap-up) and what rings at its desk (a pending
# offer), oldest first; $1 null reads every active agent.
AGENTS = """
    SELECT a.id, u.display_name AS name, a.state, a.state_reason, a.state_since,
           ARRAY(
               SELECT ROW(h.interaction_id, h.channel, h.queue_id, h.state)
               FROM (SELECT i.id AS interaction_id, i.channel::text AS channel, i.queue_id,
                            i.state::text AS state, i.assigned_at AS since
                     FROM interactions i
                     WHERE i.agent_id = a.id AND i.state IN ('assigned', 'wrap_up')
                     UNION ALL
                     SELECT o.interaction_id, o.channel::text, i.queue_id, 'offered',
                            o.created_at
                     FROM offers o JOIN interactions i ON i.id = o.interaction_id
                     WHERE o.agent_id = a.id AND o.state = 'pending') h
               ORDER BY h.since, h.interaction_id
           ) AS held
    FROM agents a JOIN users u ON u.id = a.user_id
    WHERE u.is_active AND ($1::uuid[] IS NULL OR a.id = ANY($1::uuid[]))
    ORDER BY lower(u.display_name), a.id
"""


async def read_agents(
    db: Reader, agent_ids: Iterable[uuid.UUID] | None, now: datetime
) -> list[AgentView]:
    """The agents named (None: every active one) as they stand at `now`; an agent deactivated
    or deleted is left out."""
    wanted = None if agent_ids is None else list(agent_ids)
    return [
        AgentView(
            agent_id=row["id"],
            name=row["name"],
            state=row["state"],
            reason=row["state_reason"],
            since=row["state_since"],
            seconds_in_state=max(0.0, (now - row["state_since"]).total_seconds()),
            interactions=[
                HeldInteraction(interaction_id=i, channel=c, queue_id=q, state=s)
                for i, c, q, s in row["held"]
            ],
            occupancy=None,
        )
        for row in await db.fetch(AGENTS, wanted)
    ]


# --- complaints ---------------------------------------------------------------------------------

# Late by the complaints' own rule (app/tickets/reports.py `OVERDUE`): open, with a running
# clock past its due time; escalated: open, with a running clock the sweep escalated.
_RUNNING = "FROM complaint_deadlines d WHERE d.complaint_id = k.id AND d.ended_at IS NULL"
_OVERDUE = f"EXISTS (SELECT 1 {_RUNNING} AND d.paused_since IS NULL AND d.due_at < $2)"
_ESCALATED = f"EXISTS (SELECT 1 {_RUNNING} AND d.escalated_at IS NOT NULL)"
# The late complaints, and those of $1 whatever they are now (one that left the list says so).
COMPLAINTS = f"""
    SELECT k.id, k.reference, k.step, k.owner_agent_id, {SOONEST_DUE} AS due_at,
           (k.{OPEN_STEPS} AND {_OVERDUE}) AS overdue,
           (k.{OPEN_STEPS} AND {_ESCALATED}) AS escalated
    FROM complaints k
    WHERE k.id = ANY($1::uuid[])
       OR (k.{OPEN_STEPS} AND ({_OVERDUE} OR {_ESCALATED}))
    ORDER BY k.raised_at, k.id
"""  # noqa: S608 - constants only, no outside text


async def read_complaints(
    db: asyncpg.Connection | asyncpg.Pool, also: Iterable[uuid.UUID], now: datetime
) -> list[ComplaintView]:
    """Every escalated or overdue complaint, and those of `also` as they are now."""
    return [
        ComplaintView(
            complaint_id=row["id"],
            reference=row["reference"],
            step=row["step"],
            owner_agent_id=row["owner_agent_id"],
            overdue=row["overdue"],
            escalated=row["escalated"],
            due_at=row["due_at"],
        )
        for row in await db.fetch(COMPLAINTS, list(also), now)
    ]

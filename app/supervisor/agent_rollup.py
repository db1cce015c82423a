"""The agents' part of the reports' roll-up: each agent's time by quarter-hour, in each state
of its working day (available, busy, wrap-up, away; offline is not working time), the time it
held work while staffed (its occupancy's numerator: docs/metrics.md, "Occupancy"), and the work
it finished (its AHT); and the same staffed and handling time to each queue the agent qualifies
for (`queue_staff_quarters`: the queue's occupancy). Folded in the same round and transaction
as the queues' quarters (app/supervisor/rollups.py), with the ledger's own reading of who holds
what (`ledger.agent_changes`).

Where each agent stood at the mark (its state, what it held, since when) is kept between rounds
(`agent_marks`, written only for the agents a round moved). A round that reads the log up to
its end counts every agent's time up to the last quarter's end, so a quarter fills while nothing
happens, at one write per agent a quarter rather than a round; an agent first seen in a round is
counted from its first event (from the state that event left, or `available` when the event
says none: only at the first round after the upgrade).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from app.core.hub import EventRecord, record_of
from app.routing.directory import holds_the_skills_of
from app.supervisor.ledger import STAFFED_STATES, agent_changes

QUARTER = timedelta(minutes=15)
WORKING_STATES = ("available", "busy", "wrap_up", "away")

MARKS = "SELECT agent_id, state, holding, since FROM agent_marks"
SAVE_MARK = """
    INSERT INTO agent_marks (agent_id, state, holding, since) VALUES ($1, $2, $3, $4)
    ON CONFLICT (agent_id) DO UPDATE
    SET state = excluded.state, holding = excluded.holding, since = excluded.since
"""
ADD = """
    INSERT INTO agent_quarters AS q (
        quarter, agent_id, available_seconds, busy_seconds, wrap_up_seconds, away_seconds,
        handling_seconds, handled, handle_seconds
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (quarter, agent_id) DO UPDATE SET
        available_seconds = q.available_seconds + excluded.available_seconds,
        busy_seconds = q.busy_seconds + excluded.busy_seconds,
        wrap_up_seconds = q.wrap_up_seconds + excluded.wrap_up_seconds,
        away_seconds = q.away_seconds + excluded.away_seconds,
        handling_seconds = q.handling_seconds + excluded.handling_seconds,
        handled = q.handled + excluded.handled,
        handle_seconds = q.handle_seconds + excluded.handle_seconds
"""

# The same time, staffed and handling, added to the queues each agent qualifies for as this
# round reads its skills: the queue's occupancy (docs/metrics.md, "Occupancy of a queue").
ADD_TO_QUEUES = f"""
    INSERT INTO queue_staff_quarters AS w (quarter, queue_id, staffed_seconds, handling_seconds)
    SELECT r.quarter, q.id, sum(r.staffed), sum(r.handling)
    FROM unnest($1::timestamptz[], $2::uuid[], $3::float8[], $4::float8[])
         AS r(quarter, agent_id, staffed, handling)
    JOIN agents a ON a.id = r.agent_id CROSS JOIN queues q
    WHERE r.staffed > 0 AND {holds_the_skills_of("q.id")}
    GROUP BY r.quarter, q.id
    ON CONFLICT (quarter, queue_id) DO UPDATE SET
        staffed_seconds = w.staffed_seconds + excluded.staffed_seconds,
        handling_seconds = w.handling_seconds + excluded.handling_seconds
"""  # noqa: S608 - the text is ours

Key = tuple[datetime, uuid.UUID]  # quarter, agent
# An event of the log as the roll-up reads it: its row (EVENTS', app/supervisor/rollups.py: with
# what the event does not say) and the event itself, its payload parsed once for both folds.
Logged = tuple[Mapping[str, Any], EventRecord]


def read(rows: Iterable[Mapping[str, Any]]) -> list[Logged]:
    return [(row, record_of(row)) for row in rows]


@dataclass(slots=True)
class Standing:
    """Where an agent stands: its state and how many interactions it holds, since `since`."""

    state: str
    holding: int
    since: datetime


@dataclass(slots=True)
class AgentSums:
    """What a round adds to one agent's quarter."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(WORKING_STATES, 0.0))
    handling: float = 0.0
    handled: int = 0
    handle_seconds: float = 0.0

    @property
    def staffed(self) -> float:
        return sum(self.seconds[state] for state in STAFFED_STATES)

    def row(self, key: Key) -> tuple[object, ...]:
        s = self.seconds
        return (
            *key,
            s["available"],
            s["busy"],
            s["wrap_up"],
            s["away"],
            self.handling,
            self.handled,
            self.handle_seconds,
        )


def quarter_start(moment: datetime) -> datetime:
    seconds = int(moment.timestamp())
    return moment - timedelta(seconds=seconds % 900, microseconds=moment.microsecond)


def advance(
    agent_id: uuid.UUID, standing: Standing, until: datetime, sums: dict[Key, AgentSums]
) -> None:
    """Count the agent's time from `since` to `until`, quarter by quarter, as it stood."""
    moment = standing.since
    while moment < until:
        quarter = quarter_start(moment)
        end = min(quarter + QUARTER, until)
        span = (end - moment).total_seconds()
        added = sums.setdefault((quarter, agent_id), AgentSums())
        if standing.state in added.seconds:
            added.seconds[standing.state] += span
        if standing.state in STAFFED_STATES and standing.holding > 0:
            added.handling += span
        moment = end
    standing.since = max(standing.since, until)


def fold_agents(
    marks: dict[uuid.UUID, Standing],
    logged: Iterable[Logged],
    cutoff: datetime | None,
) -> dict[Key, AgentSums]:
    """What the events `logged` add to each agent's quarters, moving `marks` along; with a
    `cutoff`, every agent's time up to it too."""
    sums: dict[Key, AgentSums] = {}
    for row, event in logged:
        for agent_id, _, held in agent_changes(event):
            standing = marks.get(agent_id) or _first_seen(event)
            marks[agent_id] = standing
            advance(agent_id, standing, event.occurred_at, sums)
            if event.kind == "agent.state_changed":
                standing.state = str(event.payload["to"])
            standing.holding = max(0, standing.holding + held)
        _count_handled(event, row, sums)
    if cutoff is not None:
        for agent_id, standing in marks.items():
            advance(agent_id, standing, cutoff, sums)
    return sums


def moved(
    marks: Mapping[uuid.UUID, Standing], before: Mapping[uuid.UUID, Standing]
) -> dict[uuid.UUID, Standing]:
    """The marks a fold changed (the others need no write)."""
    return {a: s for a, s in marks.items() if before.get(a) != s}


def _first_seen(event: EventRecord) -> Standing:
    state = event.payload.get("from") if event.kind == "agent.state_changed" else None
    return Standing(str(state or "available"), 0, event.occurred_at)


def _count_handled(event: EventRecord, row: Mapping[str, Any], sums: dict[Key, AgentSums]) -> None:
    """A completion counts for the agent who finished it, at its end, as AHT counts it."""
    agent = event.payload.get("agent_id")
    if event.kind != "interaction.completed" or not agent or row["handle_seconds"] is None:
        return
    added = sums.setdefault((quarter_start(event.occurred_at), uuid.UUID(agent)), AgentSums())
    added.handled += 1
    added.handle_seconds += row["handle_seconds"]


async def read_marks(connection: asyncpg.Connection) -> dict[uuid.UUID, Standing]:
    return {
        row["agent_id"]: Standing(row["state"], row["holding"], row["since"])
        for row in await connection.fetch(MARKS)
    }


async def save(
    connection: asyncpg.Connection,
    marks: Mapping[uuid.UUID, Standing],
    sums: Mapping[Key, AgentSums],
) -> None:
    await connection.executemany(ADD, [added.row(key) for key, added in sums.items()])
    staffed = [(key, added) for key, added in sums.items() if added.staffed > 0]
    if staffed:
        await connection.execute(
            ADD_TO_QUEUES,
            [key[0] for key, _ in staffed],
            [key[1] for key, _ in staffed],
            [added.staffed for _, added in staffed],
            [added.handling for _, added in staffed],
        )
    await connection.executemany(
        SAVE_MARK, [(a, s.state, s.holding, s.since) for a, s in marks.items()]
    )  # only the marks given: the caller passes those a fold moved

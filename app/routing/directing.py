"""A supervisor's hand on routing: an agent sent away or logged out, waiting work moved to
another queue or offered to a named agent, its priority changed, and the agents a queue's
notice reaches. The edge that takes the supervisor's request is app/supervisor/actions.py;
this is the database side, under routing's own rules, so that no supervisor can do what
routing would not:

- sending an agent away or offline is the agent's own request (`agent_states.change_state`,
  `Cause.request`), its pending offers withdrawn as when it asks; the event says it was forced;
- moving waiting work withdraws its pending offer as an abandon does (app/routing/line.py),
  and the work keeps its place in line (`waiting_since`);
- an offer to a named agent (app/routing/directed.py) goes through the one offer writer
  (app/routing/offers.py), which lands it only while the agent's row is as read under its
  lock and the interaction is still queued: one pending offer per interaction, never over
  capacity (rules 1 and 2).

Each works inside the caller's transaction and adds its events to the caller's `Events`;
the caller commits, publishes and wakes the matcher. Lock order, as everywhere: the agent,
then the interaction, then the offer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime

import asyncpg

from app.agents.models import AgentState
from app.core.errors import Conflict
from app.core.events import Events
from app.core.pg import now
from app.interactions.models import InteractionState
from app.interactions.service import InteractionNotFound
from app.routing.agent_states import change_state, lock_agent
from app.routing.directory import holds_the_skills_of
from app.routing.holdings import moved, offer_ended
from app.routing.line import wait_ended
from app.routing.waiting import EFFECTIVE

S = InteractionState

MOVED = "interaction.moved"
PRIORITY_CHANGED = "interaction.priority_changed"
# What a supervisor may send an agent to: away (a break, a meeting) or out (logged off).
FORCEABLE = frozenset({AgentState.away, AgentState.offline})
# Work still waiting for an agent: queued, or offered and not yet accepted.
WAITING = frozenset({S.queued, S.offered})
# The withdrawn offer's reason, which the agent's desk shows (`offer_withdrawn`).
MOVED_BY_A_SUPERVISOR = "moved by a supervisor"


class NotWaiting(Conflict):
    code = "not_waiting"


class AgentCannotTakeIt(Conflict):
    code = "agent_cannot_take_it"


class NothingToChange(Conflict):
    code = "nothing_to_change"


async def force_state(
    connection: asyncpg.Connection,
    events: Events,
    agent_id: uuid.UUID,
    state: AgentState,
    *,
    reason: str,
    actor: str,
) -> None:
    """Send the agent away or offline as if it had asked (its offers withdrawn, what it holds
    kept), the event saying a supervisor forced it. Refused when nothing would change: an
    action that writes nothing would leave no trace of itself."""
    if state not in FORCEABLE:
        raise NothingToChange(f"a supervisor sends an agent away or offline, not {state.value}")
    agent = await lock_agent(connection, agent_id)
    if agent.state is state and agent.reason == reason:
        raise NothingToChange(f"the agent is {state.value} already, for the same reason")
    await change_state(connection, events, agent_id, state, reason=reason, actor=actor, forced=True)


# The interaction locked, with what a move or an offer needs to know of it.
LOCK_WAITING = f"""
    SELECT i.state, i.queue_id, i.channel, i.priority, i.waiting_since, i.needs, c.tier,
           q.offer_timeout_seconds, {EFFECTIVE} AS effective
    FROM interactions i JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    WHERE i.id = $1
    FOR NO KEY UPDATE OF i
"""  # noqa: S608 - constants only, no outside text

# Its pending offer, if any, withdrawn (its agent's room is free again); it waits again.
WITHDRAW = """
    WITH withdrawn AS (
        UPDATE offers SET state = 'withdrawn', decided_at = $2, reason = $3
        WHERE interaction_id = $1 AND state = 'pending'
        RETURNING id, agent_id
    ), requeued AS (
        UPDATE interactions SET state = 'queued', updated_at = $2
        WHERE id = $1 AND state = 'offered'
    )
    SELECT id, agent_id FROM withdrawn
"""


async def lock_waiting(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, what: str, moment: datetime
) -> asyncpg.Record:
    row = await connection.fetchrow(LOCK_WAITING, interaction_id, moment)
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    if S(row["state"]) not in WAITING:
        raise NotWaiting(
            f"cannot {what}: the interaction is {row['state']}; only waiting work (queued, or"
            " offered and not yet accepted) is moved by a supervisor"
        )
    return row


async def withdraw_offer(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    moment: datetime,
    actor: str,
) -> None:
    """Withdraw the interaction's pending offer (locked by the caller), as an abandon does; it
    waits again, with the events of an offer returned to the queue (`return_to_queue`'s)."""
    withdrawn = await connection.fetchrow(WITHDRAW, interaction_id, moment, MOVED_BY_A_SUPERVISOR)
    if withdrawn is not None:
        offer_id = withdrawn["id"]
        offer_ended(
            events,
            offer_id,
            "withdrawn",
            interaction_id,
            withdrawn["agent_id"],
            MOVED_BY_A_SUPERVISOR,
            actor,
        )
        extra = {"offer_id": str(offer_id), "reason": MOVED_BY_A_SUPERVISOR}
        moved(events, interaction_id, S.offered, S.queued, None, actor, extra)


async def move_to_queue(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    *,
    to_queue_id: uuid.UUID,
    needs: Mapping[str, int],
    reason: str,
    actor: str,
) -> None:
    """Waiting work goes to another queue: a pending offer withdrawn, queued there with that
    queue's required skills as its needs (`needs`, as a transfer does), its place in line
    (`waiting_since`) kept. `interaction.moved` says so."""
    moment = now()
    row = await lock_waiting(connection, interaction_id, "move it", moment)
    if row["queue_id"] == to_queue_id:
        raise NothingToChange("the interaction waits in that queue already")
    await withdraw_offer(connection, events, interaction_id, moment, actor)
    await connection.execute(
        "UPDATE interactions SET queue_id = $2, needs = $3::text::jsonb,"
        " transferred_from = queue_id, updated_at = $4 WHERE id = $1",
        interaction_id,
        to_queue_id,
        _needs_json(needs),
        moment,
    )
    # Its wait in the queue it leaves ends as any wait's does (the figures count it there).
    ended = wait_ended(row, moment)
    events.add(
        MOVED,
        subject_type="interaction",
        subject_id=interaction_id,
        actor=actor,
        payload={
            "from_queue_id": ended["queue_id"],
            "to_queue_id": str(to_queue_id),
            "channel": ended["channel"],
            "waited_seconds": ended["waited_seconds"],
            "reason": reason,
        },
    )


def _needs_json(needs: Mapping[str, int]) -> str:
    """The interaction's `needs` column, as intake and a transfer write it."""
    return json.dumps([{"skill": name, "level": level} for name, level in sorted(needs.items())])


async def change_priority(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    priority: int,
    *,
    reason: str,
    actor: str,
) -> None:
    """Waiting work's explicit priority, which the next pass weighs (an offered one's when it
    waits again)."""
    row = await lock_waiting(connection, interaction_id, "change its priority", now())
    if row["priority"] == priority:
        raise NothingToChange(f"the interaction's priority is {priority} already")
    await connection.execute(
        "UPDATE interactions SET priority = $2, updated_at = $3 WHERE id = $1",
        interaction_id,
        priority,
        now(),
    )
    events.add(
        PRIORITY_CHANGED,
        subject_type="interaction",
        subject_id=interaction_id,
        actor=actor,
        payload={
            "queue_id": str(row["queue_id"]),
            "from": row["priority"],
            "to": priority,
            "reason": reason,
        },
    )


async def agents_serving(connection: asyncpg.Connection, queue_id: uuid.UUID) -> list[uuid.UUID]:
    """The agents with a desk open who hold every skill the queue requires at its level (with
    no skill required, every agent at a desk): those a notice to the queue reaches."""
    rows = await connection.fetch(SERVING, queue_id)
    return [row["id"] for row in rows]


SERVING = f"""
    SELECT a.id FROM agents a JOIN users u ON u.id = a.user_id
    WHERE a.connection_id IS NOT NULL AND u.is_active
      AND {holds_the_skills_of("$1")}
    ORDER BY a.id
"""  # noqa: S608 - constants only, no outside text

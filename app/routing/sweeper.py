"""The sweeps that keep nothing stuck (DESIGN.md rules 7-9), run by the leading matcher once a
tick in one transaction: the desks of a replica whose lease lapsed leave routing, late offers go
back to the queue (and the agent who missed one may go away), silent and deactivated agents
leave routing, overdue wrap-ups end.

Each locks many rows, in id order with SKIP LOCKED: a row someone else holds is left to the
next tick rather than waited for (the lock order is app/routing/agent_states.py's).
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from app.agents.models import AgentState
from app.agents.states import Cause
from app.core.events import SYSTEM_ACTOR, Events
from app.core.pg import now
from app.interactions.models import InteractionState
from app.routing.agent_states import (
    ROUTABLE_NAMES,
    AgentNow,
    lock_agents,
    missed_offer,
    refresh_agent_state,
    release_agent,
)
from app.routing.holdings import finish, moved, return_to_queue

S = InteractionState

# An agent misses an offer (and may go away) only if its desk's replica is still there to
# have shown it: an offer whose replica's lease lapsed is no one's fault.
OVERDUE_OFFERS = """
    SELECT o.id, o.interaction_id, o.agent_id,
           q.away_on_missed_offer AND EXISTS (
               SELECT FROM replicas r
               WHERE r.id = o.replica_id AND r.lease_until > statement_timestamp()
           ) AS away
    FROM offers o
    JOIN interactions i ON i.id = o.interaction_id
    JOIN queues q ON q.id = i.queue_id
    WHERE o.state = 'pending' AND o.deadline <= $1
"""


async def time_out_offers(connection: asyncpg.Connection, events: Events) -> int:
    """Offers past their deadline go back to the queue; the agent who missed one may go away."""
    overdue = await connection.fetch(OVERDUE_OFFERS, now())
    if not overdue:
        return 0
    agents = {a.id: a for a in await lock_agents(connection, {r["agent_id"] for r in overdue})}
    ended = 0
    for offer in overdue:
        agent = agents.get(offer["agent_id"])
        if agent is None:  # busy deciding right now: its decision or the next tick settles it
            continue
        returned = await return_to_queue(
            connection,
            events,
            offer_id=offer["id"],
            interaction_id=offer["interaction_id"],
            agent_id=agent.id,
            outcome="timed_out",
            reason="offer timed out",
            actor=SYSTEM_ACTOR,
        )
        if not returned:
            continue
        ended += 1
        agents[agent.id] = await missed_offer(
            connection, events, agent, sends_away=offer["away"], actor=SYSTEM_ACTOR
        )
    return ended


async def sweep_silent_agents(
    connection: asyncpg.Connection, events: Events, *, silence: timedelta
) -> int:
    """Rule 8: an agent whose socket has said nothing for `silence` leaves available."""
    rows = await connection.fetch(
        "SELECT a.id, a.state, a.state_reason FROM agents a"
        " JOIN agent_presence p ON p.agent_id = a.id"
        " WHERE a.state = ANY($1::text[]) AND p.last_seen_at < $2"
        " ORDER BY a.id FOR NO KEY UPDATE OF a SKIP LOCKED",
        ROUTABLE_NAMES,
        now() - silence,
    )
    return await _release_all(
        connection, events, rows, AgentState.away, "no heartbeat", by=Cause.silence
    )


# Leases lapsed whose desks are still counted in: a replica that died, or paused too long.
LAPSED_LEASES = """
    SELECT id FROM replicas
    WHERE desks_released_at IS NULL AND lease_until <= statement_timestamp()
    ORDER BY id
"""
# The agents whose desk was on those replicas and who are still in (or still hold a socket).
DESKS_OF = """
    SELECT a.id, a.state, a.state_reason FROM agents a
    JOIN agent_presence p ON p.agent_id = a.id
    WHERE p.replica_id = ANY($1::uuid[]) AND (a.state <> 'offline' OR a.connection_id IS NOT NULL)
    ORDER BY a.id FOR NO KEY UPDATE OF a SKIP LOCKED
"""
# A lease is settled once none of its agents is left (an agent locked by someone else when the
# sweep came keeps it for the next one).
SETTLED = """
    UPDATE replicas r SET desks_released_at = statement_timestamp()
    WHERE r.id = ANY($1::uuid[]) AND NOT EXISTS (
        SELECT FROM agent_presence p JOIN agents a ON a.id = p.agent_id
        WHERE p.replica_id = r.id AND (a.state <> 'offline' OR a.connection_id IS NOT NULL)
    )
"""
LEASES_KEPT = timedelta(days=7)


async def release_lapsed_desks(connection: asyncpg.Connection, events: Events) -> int:
    """The desks of a replica whose lease lapsed leave routing at once: their agents go
    offline as a closed socket would, their offers return to the queue with their waiting time
    intact (withdrawn, never timed out: nobody is sent away for an offer no desk showed), and
    their sockets no longer count (a replica only paused closes them itself when it wakes)."""
    lapsed = [row["id"] for row in await connection.fetch(LAPSED_LEASES)]
    if not lapsed:
        return 0
    rows = await connection.fetch(DESKS_OF, lapsed)
    in_routing = [row for row in rows if row["state"] != AgentState.offline.value]
    await _release_all(
        connection,
        events,
        in_routing,
        AgentState.offline,
        "its desk's server stopped",
        by=Cause.disconnect,
    )
    await connection.execute(
        "UPDATE agents SET connection_id = NULL WHERE id = ANY($1::uuid[])",
        [row["id"] for row in rows],
    )
    await connection.execute(SETTLED, lapsed)
    return len(in_routing)


async def forget_old_leases(connection: asyncpg.Connection) -> None:
    await connection.execute(
        "DELETE FROM replicas WHERE desks_released_at < statement_timestamp() - $1::interval",
        LEASES_KEPT,
    )


# Agents whose user was deactivated but who still take part in routing (or hold offers).
DEACTIVATED = """
    SELECT a.id, a.state, a.state_reason FROM agents a JOIN users u ON u.id = a.user_id
    WHERE a.state <> 'offline' AND NOT u.is_active
    ORDER BY a.id FOR NO KEY UPDATE OF a SKIP LOCKED
"""


async def sweep_deactivated_agents(connection: asyncpg.Connection, events: Events) -> int:
    """An agent whose user was deactivated goes offline and its offers return to the queue.

    The user is deactivated in the admin API, below routing, so the sweep does it, within a
    tick; meanwhile no pass offers it anything (the offers' write checks `is_active`)."""
    rows = await connection.fetch(DEACTIVATED)
    return await _release_all(
        connection, events, rows, AgentState.offline, "deactivated", by=Cause.deactivation
    )


async def _release_all(
    connection: asyncpg.Connection,
    events: Events,
    rows: list[asyncpg.Record],
    state: AgentState,
    reason: str,
    *,
    by: Cause,
) -> int:
    """A sweep's agents (locked rows of id, state, state_reason) leave routing for `state`."""
    for row in rows:
        agent = AgentNow(row["id"], AgentState(row["state"]), row["state_reason"])
        await release_agent(
            connection, events, agent, state=state, reason=reason, actor=SYSTEM_ACTOR, by=by
        )
    return len(rows)


OVERDUE_WRAP_UPS = """
    SELECT i.id, i.agent_id FROM interactions i JOIN queues q ON q.id = i.queue_id
    WHERE i.state = 'wrap_up'
      AND i.wrap_up_at + make_interval(secs => q.wrap_up_seconds) < $1
"""


async def end_overdue_wrap_ups(connection: asyncpg.Connection, events: Events) -> int:
    """A wrap-up ends by itself after the queue's wrap-up time."""
    overdue = await connection.fetch(OVERDUE_WRAP_UPS, now())
    if not overdue:
        return 0
    agents = {a.id: a for a in await lock_agents(connection, {r["agent_id"] for r in overdue})}
    ended = await connection.fetch(
        "SELECT id, agent_id FROM interactions WHERE id = ANY($1::uuid[]) AND state = 'wrap_up'"
        " AND agent_id = ANY($2::uuid[]) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
        [row["id"] for row in overdue],
        list(agents),
    )
    if not ended:
        return 0
    await finish(connection, [row["id"] for row in ended])
    extra = {"reason": "wrap-up time over"}
    for row in ended:
        moved(events, row["id"], S.wrap_up, S.completed, row["agent_id"], SYSTEM_ACTOR, extra)
    for agent_id in {row["agent_id"] for row in ended}:
        await refresh_agent_state(connection, events, agents[agent_id], actor=SYSTEM_ACTOR)
    return len(ended)


async def run_upkeep(
    connection: asyncpg.Connection,
    events: Events,
    *,
    silence: timedelta,
    sweep: bool,
    timeouts: bool,
) -> None:
    """Rules 7-9, inside the caller's transaction: the desks of lapsed leases leave routing and
    overdue offers end (`timeouts`), and with `sweep` silent and deactivated agents leave
    routing, overdue wrap-ups end and leases lapsed long ago are forgotten.
    The matcher asks for these once a tick, not every pass: a deadline a fraction of a tick
    late changes nothing, and the queries are not free. Lapsed leases come first, so that their
    offers are withdrawn before any of them could time out."""
    if timeouts:
        await release_lapsed_desks(connection, events)
        await time_out_offers(connection, events)
    if sweep:
        await sweep_silent_agents(connection, events, silence=silence)
        await sweep_deactivated_agents(connection, events)
        await end_overdue_wrap_ups(connection, events)
        await forget_old_leases(connection)

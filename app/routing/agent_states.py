"""Agent states as routing carries them out: locking an agent, moving its state, the state its
holdings call for, and leaving routing (its offers return to the queue).

The rules themselves (which moves are allowed, what holdings call for) are app/agents/states.py;
this module is the database side of them. Each function works inside the caller's transaction
and adds its events to the caller's `Events`.

Lock order, everywhere: the agent, then the interaction, then the offer. Two transactions that
take locks in one order cannot deadlock each other; the sweeps, which lock many rows, skip rows
that are locked and catch them on the next tick instead of waiting. Rows are locked FOR NO KEY
UPDATE, never FOR UPDATE: inserting an offer takes KEY SHARE on its agent and interaction (the
foreign keys), which FOR UPDATE would wait on, and the matcher inserts many offers at once in
no particular order (measured: such waits deadlocked the matcher under load).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from app.agents import states
from app.agents.models import AgentState
from app.agents.service import AgentNotFound
from app.agents.states import Cause
from app.core.events import Events
from app.core.pg import now
from app.routing.holdings import return_to_queue

ROUTABLE_NAMES = sorted(state.value for state in states.ROUTABLE)


@dataclass(frozen=True, slots=True)
class AgentNow:
    """An agent's state as read under its row lock."""

    id: uuid.UUID
    state: AgentState
    reason: str | None


async def lock_agent(connection: asyncpg.Connection, agent_id: uuid.UUID) -> AgentNow:
    row = await connection.fetchrow(
        "SELECT state, state_reason FROM agents WHERE id = $1 FOR NO KEY UPDATE", agent_id
    )
    if row is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    return AgentNow(agent_id, AgentState(row["state"]), row["state_reason"])


async def set_state(
    connection: asyncpg.Connection,
    events: Events,
    agent: AgentNow,
    state: AgentState,
    *,
    reason: str | None,
    actor: str,
    by: Cause,
    forced: bool = False,
) -> AgentNow:
    """Move a locked agent to `state` for the cause `by` (a move the table of
    app/agents/states.py refuses raises IllegalTransition); the same state with the same
    reason changes nothing. `forced`: a supervisor moved it (its event says so)."""
    if agent.state is state and agent.reason == reason:
        return agent
    states.ensure_can_move(agent.state, state, by=by)
    moment = now()
    becomes_idle = states.becomes_idle(agent.state, state)
    await connection.execute(
        "UPDATE agents SET state = $2, state_reason = $3, state_since = $4, updated_at = $4,"
        " idle_since = CASE WHEN $5 THEN $4 ELSE idle_since END WHERE id = $1",
        agent.id,
        state.value,
        reason,
        moment,
        becomes_idle,
    )
    return state_changed(events, agent, state, reason, actor, forced=forced)


MISSED_AN_OFFER = "missed an offer"


async def missed_offer(
    connection: asyncpg.Connection,
    events: Events,
    agent: AgentNow,
    *,
    sends_away: bool,
    actor: str,
) -> AgentNow:
    """What missing an offer does to the agent (locked) who missed it, whichever way it was
    missed: its offer timed out (the sweeper), or its phone never answered the call it accepted
    (app/routing/line.py). The offer itself ends as `timed_out`, which keeps the agent from
    being offered that interaction again; this is the rest: the agent goes away ("missed an
    offer") when the interaction's queue sends its agents away for a missed offer
    (`sends_away`: `away_on_missed_offer`, and whatever else the caller knows, such as the
    desk's replica still being there to have shown the offer). Returns the agent as it is now.

    Only an agent in routing (or away already) can miss an offer, so the move is always
    allowed; it is checked all the same, as a refusal would roll back the caller's whole
    transaction (the sweeper's: every offer it timed out)."""
    if not sends_away or not states.can_move(agent.state, AgentState.away, by=Cause.missed_offer):
        return agent
    return await set_state(
        connection,
        events,
        agent,
        AgentState.away,
        reason=MISSED_AN_OFFER,
        actor=actor,
        by=Cause.missed_offer,
    )


# The state an agent's holdings call for (`states.state_for_holdings`, pinned to it by
# tests/agents/test_state_rules_in_sql.py), written when it differs (decisions.sql).
REFRESH = "SELECT routing_refresh_agent($1, $2)"


async def refresh_agent_state(
    connection: asyncpg.Connection, events: Events, agent: AgentNow, *, actor: str
) -> AgentNow:
    """busy while holding work, wrap_up after a call, available when free; away/offline stay.

    The agent is locked by the caller, so `agent.state` is the state being left."""
    if agent.state not in states.ROUTABLE:
        return agent
    changed = await connection.fetchval(REFRESH, agent.id, now())
    if changed is None:
        return agent
    return state_changed(events, agent, AgentState(changed), None, actor)


def state_changed(
    events: Events,
    agent: AgentNow,
    state: AgentState,
    reason: str | None,
    actor: str,
    *,
    forced: bool = False,
) -> AgentNow:
    """The event of a state change just written; returns the agent as it is now."""
    events.add(
        "agent.state_changed",
        subject_type="agent",
        subject_id=agent.id,
        actor=actor,
        payload=states.state_payload(agent.state, state, reason, forced=forced),
    )
    return AgentNow(agent.id, state, reason)


async def change_state(
    connection: asyncpg.Connection,
    events: Events,
    agent_id: uuid.UUID,
    state: AgentState,
    *,
    reason: str | None,
    actor: str,
    forced: bool = False,
) -> None:
    """An agent (or its supervisor) asks for available, away or offline, from the desk or REST.

    Available: the state its holdings then call for (busy while it holds work), idle from now
    if it was not available. Away or offline: it leaves routing, and its offers return.
    `forced`: a supervisor moves the agent (app/supervisor/actions.py); its event says so."""
    agent = await lock_agent(connection, agent_id)
    if state is AgentState.available:
        agent = await set_state(
            connection,
            events,
            agent,
            state,
            reason=reason,
            actor=actor,
            by=Cause.request,
            forced=forced,
        )
        await refresh_agent_state(connection, events, agent, actor=actor)
    else:
        await release_agent(
            connection,
            events,
            agent,
            state=state,
            reason=reason,
            actor=actor,
            by=Cause.request,
            forced=forced,
        )


async def release_agent(
    connection: asyncpg.Connection,
    events: Events,
    agent: AgentNow,
    *,
    state: AgentState,
    reason: str | None,
    actor: str,
    by: Cause,
    forced: bool = False,
) -> AgentNow:
    """The agent (locked) leaves routing: socket gone, heartbeat lost, away: its offers return
    (withdrawn for `reason`, or for the state it goes to when none is given)."""
    offers = await connection.fetch(
        "SELECT id, interaction_id FROM offers WHERE agent_id = $1 AND state = 'pending'"
        " ORDER BY interaction_id",
        agent.id,
    )
    for offer in offers:
        await return_to_queue(
            connection,
            events,
            offer_id=offer["id"],
            interaction_id=offer["interaction_id"],
            agent_id=agent.id,
            outcome="withdrawn",
            reason=reason or state.value,
            actor=actor,
        )
    return await set_state(
        connection, events, agent, state, reason=reason, actor=actor, by=by, forced=forced
    )


async def lock_agents(connection: asyncpg.Connection, agent_ids: set[uuid.UUID]) -> list[AgentNow]:
    """Lock the agents not locked by someone else, in id order; the rest wait for a later tick."""
    rows = await connection.fetch(
        "SELECT id, state, state_reason FROM agents WHERE id = ANY($1::uuid[])"
        " ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
        list(agent_ids),
    )
    return [AgentNow(row["id"], AgentState(row["state"]), row["state_reason"]) for row in rows]

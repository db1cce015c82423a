"""Offer decisions (accept, reject, time out), completion, and the sweeps that keep nothing stuck.

These run several times per interaction, so they are plain SQL on asyncpg (app/core/pg.py).
Each function works inside the caller's transaction and adds its events to the caller's
`pg.Events`; whoever commits then wakes the matcher (freed capacity may route waiting work).
Accepting and completing are one call each to a PL/pgSQL function (migration 0006), which
writes its events itself; they come back in `Events.written`, ready to publish.

Lock order, everywhere: the agent, then the interaction, then the offer. Two transactions that
take locks in one order cannot deadlock each other; the sweeps, which lock many rows, skip rows
that are locked and catch them on the next tick instead of waiting. Rows are locked FOR NO KEY
UPDATE, never FOR UPDATE: inserting an offer takes KEY SHARE on its agent and interaction (the
foreign keys), which FOR UPDATE would wait on, and the matcher inserts many offers at once in
no particular order (measured: such waits deadlocked the matcher under load).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import asyncpg

from app.agents.models import AgentState
from app.agents.service import AgentNotFound
from app.core.errors import IllegalTransition, NotFound
from app.core.events import SYSTEM_ACTOR, Events
from app.core.hub import EventRecord
from app.core.pg import now
from app.interactions.lifecycle import ensure_can_move, move_payload
from app.interactions.models import InteractionState
from app.interactions.schemas import InteractionOut
from app.interactions.service import InteractionNotFound

S = InteractionState
ROUTABLE = (AgentState.available, AgentState.busy, AgentState.wrap_up)
ROUTABLE_NAMES = [state.value for state in ROUTABLE]


class OfferNotFound(NotFound):
    code = "offer_not_found"


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


# --- offers ---------------------------------------------------------------------------------


async def _lock_interaction(
    connection: asyncpg.Connection, interaction_id: uuid.UUID
) -> asyncpg.Record:
    row = await connection.fetchrow(
        "SELECT i.state, i.agent_id, q.wrap_up_seconds FROM interactions i"
        " JOIN queues q ON q.id = i.queue_id WHERE i.id = $1 FOR NO KEY UPDATE OF i",
        interaction_id,
    )
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    return row


AGENT_AND_OFFER = """
    SELECT a.state, a.state_reason, o.interaction_id, o.agent_id AS holder, o.state AS offer_state
    FROM agents a LEFT JOIN offers o ON o.id = $2
    WHERE a.id = $1
    FOR NO KEY UPDATE OF a
"""


async def _agent_and_offer(
    connection: asyncpg.Connection, agent_id: uuid.UUID, offer_id: uuid.UUID
) -> tuple[AgentNow, uuid.UUID]:
    """Lock the agent and read its pending offer (one round trip; the offer is locked later,
    after its interaction, in the lock order)."""
    row = _pending_offer(
        await connection.fetchrow(AGENT_AND_OFFER, agent_id, offer_id), agent_id, offer_id
    )
    agent = AgentNow(agent_id, AgentState(row["state"]), row["state_reason"])
    return agent, uuid.UUID(str(row["interaction_id"]))


def _pending_offer(
    row: asyncpg.Record | None, agent_id: uuid.UUID, offer_id: uuid.UUID
) -> asyncpg.Record:
    """The row of an agent and its offer (`holder`, `offer_state`), if that offer is pending and
    held by the agent; else the error that says which is not so."""
    if row is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    if row["holder"] != agent_id:
        raise OfferNotFound(f"you hold no offer {offer_id}")
    if row["offer_state"] != "pending":
        raise IllegalTransition(f"the offer is already {row['offer_state']}")
    return row


# One call: the statements of an accept run inside PostgreSQL (migration 0006), in the lock order.
ACCEPT = (
    "SELECT * FROM routing_accept($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb,"
    " $7::text::jsonb)"
)

# Why an accept was refused, read after the call wrote nothing.
ACCEPT_REFUSED = """
    SELECT o.agent_id AS holder, o.state AS offer_state, o.deadline, i.state AS interaction_state
    FROM agents a
    LEFT JOIN offers o ON o.id = $2
    LEFT JOIN interactions i ON i.id = o.interaction_id
    WHERE a.id = $1
"""


async def accept_offer(
    connection: asyncpg.Connection,
    events: Events,
    offer_id: uuid.UUID,
    *,
    agent_id: uuid.UUID,
    actor: str,
) -> uuid.UUID:
    """The agent takes the offered interaction; returns the interaction's id.

    An available agent becomes busy (wrap-up and away stay as they are)."""
    moment = now()
    rows = await connection.fetch(
        ACCEPT,
        agent_id,
        offer_id,
        moment,
        actor,
        json.dumps({"agent_id": str(agent_id)}),
        json.dumps(move_payload(S.offered, agent_id, {"offer_id": str(offer_id)})),
        json.dumps(state_payload(AgentState.available, AgentState.busy, None)),
    )
    if not rows:
        await _explain_refused_accept(connection, agent_id, offer_id)
    written = _written(rows, moment, actor)
    events.note_written(written)
    return next(uuid.UUID(e.subject_id) for e in written if e.kind == "interaction.assigned")


async def _explain_refused_accept(
    connection: asyncpg.Connection, agent_id: uuid.UUID, offer_id: uuid.UUID
) -> NoReturn:
    row = _pending_offer(
        await connection.fetchrow(ACCEPT_REFUSED, agent_id, offer_id), agent_id, offer_id
    )
    ensure_can_move(S(row["interaction_state"]), S.assigned, what="assign it")
    if row["deadline"] <= now():
        raise IllegalTransition("the offer has timed out; it is back in the queue")
    raise IllegalTransition("the offer changed while it was being accepted; try again")


def _written(rows: list[asyncpg.Record], moment: datetime, actor: str) -> list[EventRecord]:
    """The events a routing function wrote, as the hub would read them, in id order, with what
    it returned beside them (`routing_accept`: the interaction it assigned)."""
    return [
        EventRecord(
            id=row["event_id"],
            occurred_at=moment,
            kind=row["event_kind"],
            subject_type=row["event_subject_type"],
            subject_id=row["event_subject_id"],
            actor=actor,
            payload=json.loads(row["event_payload"]),
            attached=_attached(row.get("event_attached")),
        )
        for row in sorted(rows, key=lambda row: row["event_id"])
    ]


def _attached(interaction: str | None) -> dict[str, Any]:
    """The interaction as the REST API and the assignment frame show it, from its JSON."""
    if interaction is None:
        return {}
    return {"interaction": InteractionOut.model_validate_json(interaction).model_dump(mode="json")}


async def reject_offer(
    connection: asyncpg.Connection,
    events: Events,
    offer_id: uuid.UUID,
    *,
    agent_id: uuid.UUID,
    reason: str,
    actor: str,
) -> None:
    _, interaction_id = await _agent_and_offer(connection, agent_id, offer_id)
    returned = await _return_to_queue(
        connection,
        events,
        offer_id=offer_id,
        interaction_id=interaction_id,
        agent_id=agent_id,
        outcome="rejected",
        reason=reason,
        actor=actor,
    )
    if not returned:
        raise IllegalTransition("the offer was withdrawn a moment ago")


async def _return_to_queue(
    connection: asyncpg.Connection,
    events: Events,
    *,
    offer_id: uuid.UUID,
    interaction_id: uuid.UUID,
    agent_id: uuid.UUID,
    outcome: str,
    reason: str,
    actor: str,
) -> bool:
    """End a pending offer; its interaction waits again, its waiting time intact.

    False when the offer was no longer pending: the customer hung up meanwhile (abandoning
    withdraws the offer under the interaction's lock, which the first statement waits for).
    """
    moment = now()
    requeued = await connection.fetchval(
        "UPDATE interactions SET state = 'queued', updated_at = $2"
        " WHERE id = $1 AND state = 'offered' RETURNING id",
        interaction_id,
        moment,
    )
    ended = await connection.fetchval(
        "UPDATE offers SET state = $2, decided_at = $3, reason = $4"
        " WHERE id = $1 AND state = 'pending' RETURNING id",
        offer_id,
        outcome,
        moment,
        reason[:300],
    )
    if ended is None:
        return False
    events.add(
        f"offer.{outcome}",
        subject_type="offer",
        subject_id=offer_id,
        actor=actor,
        payload={
            "interaction_id": str(interaction_id),
            "agent_id": str(agent_id),
            "reason": reason,
        },
    )
    if requeued is not None:
        extra = {"offer_id": str(offer_id), "reason": reason}
        _moved(events, interaction_id, S.offered, S.queued, None, actor, extra)
    return True


def _moved(
    events: Events,
    interaction_id: uuid.UUID,
    source: InteractionState,
    target: InteractionState,
    agent_id: uuid.UUID | None,
    actor: str,
    extra: Mapping[str, object] | None = None,
) -> None:
    """The event of one interaction move (the same payload as interactions.service.move)."""
    events.add(
        f"interaction.{target.value}",
        subject_type="interaction",
        subject_id=interaction_id,
        actor=actor,
        payload=move_payload(source, agent_id, extra),
    )


# --- completion -----------------------------------------------------------------------------


COMPLETE = "SELECT * FROM routing_complete($1, $2, $3, $4, $5, $6, $7::text::jsonb)"

# Why a completion was refused, read after the call wrote nothing.
COMPLETE_REFUSED = """
    SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1) AS agent_known,
           i.state, i.agent_id, q.wrap_up_seconds
    FROM (SELECT 1) AS one
    LEFT JOIN interactions i ON i.id = $2
    LEFT JOIN queues q ON q.id = i.queue_id
"""


async def complete(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    *,
    disposition: str,
    notes: str,
    agent_id: uuid.UUID,
    actor: str,
) -> InteractionState:
    """The agent is done: wrap-up follows when the queue asks for it, else completion.

    One call (migration 0006): the agent's state then follows what it holds, as
    `refresh_agent_state` has it."""
    moment = now()
    rows = await connection.fetch(
        COMPLETE,
        agent_id,
        interaction_id,
        moment,
        actor,
        disposition,
        notes,
        json.dumps(move_payload(S.assigned, agent_id, {"disposition": disposition})),
    )
    if not rows:
        await _explain_refused_completion(connection, agent_id, interaction_id)
    written = _written(rows, moment, actor)
    events.note_written(written)
    return S(written[0].kind.removeprefix("interaction."))


async def _explain_refused_completion(
    connection: asyncpg.Connection, agent_id: uuid.UUID, interaction_id: uuid.UUID
) -> NoReturn:
    row = await connection.fetchrow(COMPLETE_REFUSED, agent_id, interaction_id)
    assert row is not None  # one row, whatever exists
    if not row["agent_known"]:
        raise AgentNotFound(f"no agent with id {agent_id}")
    if row["state"] is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    if row["agent_id"] != agent_id:
        raise InteractionNotFound(f"interaction {interaction_id} is not assigned to you")
    target = S.wrap_up if row["wrap_up_seconds"] > 0 else S.completed
    ensure_can_move(S(row["state"]), target, what="complete it")
    raise IllegalTransition("the interaction changed while it was being completed; try again")


async def end_wrap_up(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    *,
    agent_id: uuid.UUID,
    actor: str,
) -> InteractionState:
    agent = await lock_agent(connection, agent_id)
    interaction = await _lock_interaction(connection, interaction_id)
    if interaction["agent_id"] != agent_id:
        raise InteractionNotFound(f"interaction {interaction_id} is not assigned to you")
    source = S(interaction["state"])
    ensure_can_move(source, S.completed, what="end its wrap-up")
    await _finish(connection, [interaction_id])
    _moved(events, interaction_id, source, S.completed, agent_id, actor)
    await refresh_agent_state(connection, events, agent, actor=actor)
    return S.completed


async def _finish(connection: asyncpg.Connection, interaction_ids: list[uuid.UUID]) -> None:
    await connection.execute(
        "UPDATE interactions SET state = 'completed', ended_at = $2, updated_at = $2"
        " WHERE id = ANY($1::uuid[])",
        interaction_ids,
        now(),
    )


# --- agent state ----------------------------------------------------------------------------


async def set_state(
    connection: asyncpg.Connection,
    events: Events,
    agent: AgentNow,
    state: AgentState,
    *,
    reason: str | None,
    actor: str,
) -> AgentNow:
    """Move a locked agent to `state`; the same state with the same reason changes nothing."""
    if agent.state is state and agent.reason == reason:
        return agent
    moment = now()
    becomes_idle = state is AgentState.available and agent.state is not AgentState.available
    await connection.execute(
        "UPDATE agents SET state = $2, state_reason = $3, state_since = $4, updated_at = $4,"
        " idle_since = CASE WHEN $5 THEN $4 ELSE idle_since END WHERE id = $1",
        agent.id,
        state.value,
        reason,
        moment,
        becomes_idle,
    )
    return _state_changed(events, agent, state, reason, actor)


# The state an agent's holdings call for, written when it differs (migration 0006).
REFRESH = "SELECT routing_refresh_agent($1, $2)"


async def refresh_agent_state(
    connection: asyncpg.Connection, events: Events, agent: AgentNow, *, actor: str
) -> AgentNow:
    """busy while holding work, wrap_up after a call, available when free; away/offline stay.

    The agent is locked by the caller, so `agent.state` is the state being left."""
    if agent.state not in ROUTABLE:
        return agent
    changed = await connection.fetchval(REFRESH, agent.id, now())
    if changed is None:
        return agent
    return _state_changed(events, agent, AgentState(changed), None, actor)


def _state_changed(
    events: Events, agent: AgentNow, state: AgentState, reason: str | None, actor: str
) -> AgentNow:
    """The event of a state change just written; returns the agent as it is now."""
    events.add(
        "agent.state_changed",
        subject_type="agent",
        subject_id=agent.id,
        actor=actor,
        payload=state_payload(agent.state, state, reason),
    )
    return AgentNow(agent.id, state, reason)


def state_payload(source: AgentState, target: AgentState, reason: str | None) -> dict[str, Any]:
    """The payload of an `agent.state_changed` event (also built in routing_complete)."""
    return {"from": source.value, "to": target.value, "reason": reason}


async def change_state(
    connection: asyncpg.Connection,
    events: Events,
    agent_id: uuid.UUID,
    state: AgentState,
    *,
    reason: str | None,
    actor: str,
) -> None:
    """An agent (or its supervisor) asks for available, away or offline, from the desk or REST.

    Available: the state its holdings then call for (busy while it holds work), idle from now
    if it was not available. Away or offline: it leaves routing, and its offers return."""
    agent = await lock_agent(connection, agent_id)
    if state is AgentState.available:
        agent = await set_state(connection, events, agent, state, reason=reason, actor=actor)
        await refresh_agent_state(connection, events, agent, actor=actor)
    else:
        await release_agent(connection, events, agent, state=state, reason=reason, actor=actor)


async def release_agent(
    connection: asyncpg.Connection,
    events: Events,
    agent: AgentNow,
    *,
    state: AgentState,
    reason: str | None,
    actor: str,
) -> AgentNow:
    """The agent (locked) leaves routing: socket gone, heartbeat lost, away: its offers return
    (withdrawn for `reason`, or for the state it goes to when none is given)."""
    offers = await connection.fetch(
        "SELECT id, interaction_id FROM offers WHERE agent_id = $1 AND state = 'pending'"
        " ORDER BY interaction_id",
        agent.id,
    )
    for offer in offers:
        await _return_to_queue(
            connection,
            events,
            offer_id=offer["id"],
            interaction_id=offer["interaction_id"],
            agent_id=agent.id,
            outcome="withdrawn",
            reason=reason or state.value,
            actor=actor,
        )
    return await set_state(connection, events, agent, state, reason=reason, actor=actor)


async def _lock_agents(connection: asyncpg.Connection, agent_ids: set[uuid.UUID]) -> list[AgentNow]:
    """Lock the agents not locked by someone else, in id order; the rest wait for a later tick."""
    rows = await connection.fetch(
        "SELECT id, state, state_reason FROM agents WHERE id = ANY($1::uuid[])"
        " ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
        list(agent_ids),
    )
    return [AgentNow(row["id"], AgentState(row["state"]), row["state_reason"]) for row in rows]


# --- sweeps (run by the leading matcher, once a tick) ---------------------------------------

OVERDUE_OFFERS = """
    SELECT o.id, o.interaction_id, o.agent_id, q.away_on_missed_offer AS away
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
    agents = {a.id: a for a in await _lock_agents(connection, {r["agent_id"] for r in overdue})}
    ended = 0
    for offer in overdue:
        agent = agents.get(offer["agent_id"])
        if agent is None:  # busy deciding right now: its decision or the next tick settles it
            continue
        returned = await _return_to_queue(
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
        if offer["away"]:
            agents[agent.id] = await set_state(
                connection,
                events,
                agent,
                AgentState.away,
                reason="missed an offer",
                actor=SYSTEM_ACTOR,
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
    return await _release_all(connection, events, rows, AgentState.away, "no heartbeat")


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
    return await _release_all(connection, events, rows, AgentState.offline, "deactivated")


async def _release_all(
    connection: asyncpg.Connection,
    events: Events,
    rows: list[asyncpg.Record],
    state: AgentState,
    reason: str,
) -> int:
    """A sweep's agents (locked rows of id, state, state_reason) leave routing for `state`."""
    for row in rows:
        agent = AgentNow(row["id"], AgentState(row["state"]), row["state_reason"])
        await release_agent(
            connection, events, agent, state=state, reason=reason, actor=SYSTEM_ACTOR
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
    agents = {a.id: a for a in await _lock_agents(connection, {r["agent_id"] for r in overdue})}
    ended = await connection.fetch(
        "SELECT id, agent_id FROM interactions WHERE id = ANY($1::uuid[]) AND state = 'wrap_up'"
        " AND agent_id = ANY($2::uuid[]) ORDER BY id FOR NO KEY UPDATE SKIP LOCKED",
        [row["id"] for row in overdue],
        list(agents),
    )
    if not ended:
        return 0
    await _finish(connection, [row["id"] for row in ended])
    extra = {"reason": "wrap-up time over"}
    for row in ended:
        _moved(events, row["id"], S.wrap_up, S.completed, row["agent_id"], SYSTEM_ACTOR, extra)
    for agent_id in {row["agent_id"] for row in ended}:
        await refresh_agent_state(connection, events, agents[agent_id], actor=SYSTEM_ACTOR)
    return len(ended)

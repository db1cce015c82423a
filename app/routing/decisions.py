"""Offer decisions (accept, reject) and the end of an interaction's handling (complete, end
wrap-up), as the agent's desk or the REST desk asks for them.

They run several times per interaction, so they are plain SQL on asyncpg (app/core/pg.py).
Accepting and completing are one call each to a PL/pgSQL function whose one definition is
app/routing/decisions.sql (applied after every migration): the statements run inside
PostgreSQL, in the lock order (the agent, then the interaction, then the offer), one round
trip instead of seven and six. They write their events themselves; the events come back in
`Events.written`, ready to publish. A refused call writes nothing; the reason is then read and
raised with the same errors the Python checks give. The others work inside the caller's
transaction and add their events to the caller's `Events`; whoever commits wakes the matcher
(freed capacity may route waiting work).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

import asyncpg

from app.agents import states
from app.agents.models import AgentState
from app.agents.service import AgentNotFound
from app.core.errors import IllegalTransition, NotFound
from app.core.events import Events
from app.core.hub import EventRecord
from app.core.pg import now
from app.interactions.lifecycle import ensure_can_move, move_payload
from app.interactions.models import InteractionState
from app.interactions.schemas import InteractionOut
from app.interactions.service import InteractionNotFound
from app.routing.agent_states import AgentNow, lock_agent, refresh_agent_state
from app.routing.holdings import finish, moved, return_to_queue

S = InteractionState


class OfferNotFound(NotFound):
    code = "offer_not_found"


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


# One call: the statements of an accept run inside PostgreSQL (decisions.sql), in the lock order.
ACCEPT = (
    "SELECT * FROM routing_accept($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb,"
    " $7::text::jsonb)"
)


# The `agent.state_changed` of an accept (written only when the agent was available), the same
# every time: serialised once.
ACCEPTED_STATE = json.dumps(
    states.state_payload(
        AgentState.available, states.state_after_accept(AgentState.available), None
    )
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
        ACCEPTED_STATE,
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
    returned = await return_to_queue(
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

    One call (decisions.sql): the agent's state then follows what it holds, as
    `refresh_agent_state` has it."""
    ended = await end_handling(
        connection,
        events,
        interaction_id,
        agent_id=agent_id,
        actor=actor,
        disposition=disposition,
        notes=notes,
        extra={"disposition": disposition},
    )
    if ended is None:
        await _explain_refused_completion(connection, agent_id, interaction_id)
    return ended


async def end_handling(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    *,
    agent_id: uuid.UUID,
    actor: str,
    disposition: str | None,
    notes: str,
    extra: Mapping[str, Any],
) -> InteractionState | None:
    """The talk of an assigned interaction ends (`routing_complete`): wrap_up when its queue has
    a wrap-up time, else completed; the agent's state then follows what it holds (into wrap-up
    after a call). The state it went to, or None when it wrote nothing: the interaction is not
    assigned to `agent_id` (any more). Its event's payload carries `extra`. Shared by the
    agent's completion and the caller who hangs up during the talk (app/routing/line.py)."""
    moment = now()
    rows = await connection.fetch(
        COMPLETE,
        agent_id,
        interaction_id,
        moment,
        actor,
        disposition,
        notes,
        json.dumps(move_payload(S.assigned, agent_id, extra)),
    )
    if not rows:
        return None
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
    disposition: str | None = None,
    notes: str | None = None,
) -> InteractionState:
    """Wrap-up is over: the interaction completed, with the disposition and notes given now
    (those given at completion stay where none is), and the agent's state follows."""
    agent = await lock_agent(connection, agent_id)
    interaction = await _lock_interaction(connection, interaction_id)
    if interaction["agent_id"] != agent_id:
        raise InteractionNotFound(f"interaction {interaction_id} is not assigned to you")
    source = S(interaction["state"])
    ensure_can_move(source, S.completed, what="end its wrap-up")
    await finish(connection, [interaction_id], disposition=disposition, notes=notes)
    moved(events, interaction_id, source, S.completed, agent_id, actor)
    await refresh_agent_state(connection, events, agent, actor=actor)
    return S.completed

"""From the event log to the frames an agent's desk receives, live and replayed.

`db` is an asyncpg connection or the pool: the replay reads a lot and keeps one connection; the
live pump passes the pool, as most events become frames without a read and need no connection.

A reconnecting desk is told what it must know to rebuild its state, once each: what became of
the offers and interactions it may have known (`missed_events`: withdrawals and interaction
updates, in log order), then what it holds now (`current_frames`: its state, each pending offer,
each held interaction). No `offer`, `assignment` or `state` frame is replayed from the log:
an offer made while the desk was away may be dead by now, and a console that acted on it
before `ready` would accept what is gone; what is live comes from `current_frames`, once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from app.agents.models import AgentState
from app.agents.service import AgentNotFound
from app.core.hub import EventRecord
from app.core.pg import Reader
from app.desk import screen_pop
from app.desk.protocol import (
    AssignmentFrame,
    ComplaintDeadlineFrame,
    ComplaintUpdateFrame,
    DeskFrame,
    InteractionUpdateFrame,
    NoticeFrame,
    OfferFrame,
    OfferWithdrawnFrame,
    StateFrame,
)
from app.interactions.schemas import InteractionOut
from app.interactions.service import InteractionNotFound
from app.tickets.acts import ASSIGNED, MOVED
from app.tickets.sweep import ESCALATED, WARNING

OFFER_ENDINGS = {"offer.withdrawn", "offer.timed_out", "offer.rejected"}
# The interaction events that are not updates of work the desk holds or may hold: the queueing
# concerns no desk; an offer and an assignment come as frames of their own.
NOT_UPDATES = {"interaction.queued", "interaction.offered", "interaction.assigned"}
# A deadline of a complaint the agent owns, near or passed: the sweep names the owner as the
# event's agent, so only the owner's desk hears of it (live, or replayed on reconnecting).
COMPLAINT_DEADLINES = {WARNING, ESCALATED}
# A complaint the agent owns moved or was given to it: the service names the owner as the
# event's agent too (app/tickets/service.py, `_record`).
COMPLAINT_UPDATES = {MOVED, ASSIGNED}
# A supervisor's notice to a queue's agents: it names them (`agent_ids`), so the hub hands it to
# their desks (app/supervisor/actions.py). Shown live only: a desk that was away has missed it.
QUEUE_NOTICE = "queue.notice"
REPLAY_LIMIT = 1000

# Every field of InteractionOut, the interaction as the REST API shows it.
INTERACTION_COLUMNS = """
    id, channel, external_ref, queue_id, customer_id, priority, needs, subject, summary, state,
    agent_id, waiting_since, created_at, offered_at, assigned_at, wrap_up_at, ended_at,
    disposition, notes, transferred_from, ivr, not_before, linked_to
"""
INTERACTION = "SELECT" + INTERACTION_COLUMNS + "FROM interactions WHERE id = $1"
# Held work and pending offers oldest first, so a reconnecting desk always lists them alike.
HELD = (
    "SELECT" + INTERACTION_COLUMNS + "FROM interactions"
    " WHERE agent_id = $1 AND state IN ('assigned', 'wrap_up') ORDER BY assigned_at, id"
)
AGENT_STATE = "SELECT state, state_reason FROM agents WHERE id = $1"
PENDING_OFFERS = (
    "SELECT id, interaction_id, channel, deadline, reason, matched FROM offers"
    " WHERE agent_id = $1 AND state = 'pending' ORDER BY created_at, id"
)
MISSED = (
    "SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload FROM events"
    " WHERE id > $1"
    " AND ((subject_type = 'agent' AND subject_id = $2) OR payload->>'agent_id' = $2)"
    " ORDER BY id LIMIT $3"
)


async def frame_for(db: Reader, event: EventRecord) -> DeskFrame | None:
    """The frame an event becomes on its agent's desk, or None when the desk need not know."""
    payload = event.payload
    if event.kind == "agent.state_changed":
        return StateFrame(
            event_id=event.id, state=AgentState(payload["to"]), reason=payload.get("reason")
        )
    if event.kind == "interaction.offered":
        interaction_id = uuid.UUID(event.subject_id)
        pop = event.attached.get(screen_pop.ScreenPopDetails.name)
        if pop is None:  # read from the log: written by another replica, or replayed
            pop = await screen_pop.read(db, interaction_id, screen_pop.routing_of(payload))
        return OfferFrame(
            event_id=event.id,
            offer_id=uuid.UUID(payload["offer_id"]),
            interaction_id=interaction_id,
            channel=payload["channel"],
            deadline=datetime.fromisoformat(payload["deadline"]),
            screen_pop=pop,
        )
    if event.kind in OFFER_ENDINGS:
        return OfferWithdrawnFrame(
            event_id=event.id,
            offer_id=uuid.UUID(event.subject_id),
            interaction_id=uuid.UUID(payload["interaction_id"]),
            reason=str(payload.get("reason", event.kind)),
        )
    if event.kind == "interaction.assigned":
        interaction = event.attached.get("interaction")
        if interaction is None:  # read from the log: another replica's, or replayed
            interaction_id = uuid.UUID(event.subject_id)
            row = await db.fetchrow(INTERACTION, interaction_id)
            if row is None:
                raise InteractionNotFound(f"no interaction with id {interaction_id}")
            interaction = _dump(row)
        return AssignmentFrame(event_id=event.id, interaction=interaction)
    if event.kind in COMPLAINT_DEADLINES:
        return ComplaintDeadlineFrame(
            event_id=event.id,
            complaint_id=uuid.UUID(event.subject_id),
            reference=payload["reference"],
            step=payload["step"],
            clock=payload["clock"],
            due_at=datetime.fromisoformat(payload["due_at"]),
            escalated=event.kind == ESCALATED,
        )
    if event.kind in COMPLAINT_UPDATES:
        return ComplaintUpdateFrame(
            event_id=event.id,
            complaint_id=uuid.UUID(event.subject_id),
            reference=payload["reference"],
            step=payload["step"],
            action=payload.get("action", ""),
            actor=event.actor,
        )
    if event.kind == QUEUE_NOTICE:
        return NoticeFrame.model_validate(
            {
                "event_id": event.id,
                "queue_id": event.subject_id,
                "text": payload["text"],
                "from": payload.get("from", event.actor),
            }
        )
    if _is_update(event):
        state = event.kind.removeprefix("interaction.")
        return InteractionUpdateFrame(
            event_id=event.id,
            interaction_id=uuid.UUID(event.subject_id),
            state=state,
            detail=payload,
        )
    return None


def _is_update(event: EventRecord) -> bool:
    return event.kind.startswith("interaction.") and event.kind not in NOT_UPDATES


def _dump(row: asyncpg.Record) -> dict[str, Any]:
    return InteractionOut.model_validate(dict(row)).model_dump(mode="json")


async def missed_events(db: Reader, agent_id: uuid.UUID, after: int) -> list[EventRecord]:
    """What a desk reconnecting after event `after` is told of what happened meanwhile, oldest
    first: the endings of offers it may have seen (an offer made while it was away and ended
    since is not mentioned at all), the updates of interactions, and the deadlines of its
    complaints that neared or passed. What it holds now comes
    from `current_frames`."""
    rows = await db.fetch(MISSED, after, str(agent_id), REPLAY_LIMIT)
    return worth_replaying([EventRecord(**row) for row in rows])


def worth_replaying(missed: list[EventRecord]) -> list[EventRecord]:
    """Of the events a desk missed, those whose frames it is told again (`missed_events`)."""
    unseen = {e.payload.get("offer_id") for e in missed if e.kind == "interaction.offered"}
    return [
        event
        for event in missed
        if (event.kind in OFFER_ENDINGS and event.subject_id not in unseen)
        or _is_update(event)
        or event.kind in COMPLAINT_DEADLINES
        or event.kind in COMPLAINT_UPDATES
    ]


async def current_frames(db: Reader, agent_id: uuid.UUID) -> list[DeskFrame]:
    """What the agent holds now, each once: its state, pending offers (with screen pop) and
    assignments. They carry no event id: the ready frame after them says where the log is."""
    agent = await db.fetchrow(AGENT_STATE, agent_id)
    if agent is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    frames: list[DeskFrame] = [StateFrame(state=agent["state"], reason=agent["state_reason"])]
    for offer in await db.fetch(PENDING_OFFERS, agent_id):
        matched = offer["matched"]
        routing = screen_pop.routing_of_offer(offer["reason"], matched)
        frames.append(
            OfferFrame(
                offer_id=offer["id"],
                interaction_id=offer["interaction_id"],
                channel=offer["channel"],
                deadline=offer["deadline"],
                screen_pop=await screen_pop.read(db, offer["interaction_id"], routing),
            )
        )
    held = await db.fetch(HELD, agent_id)
    frames.extend(AssignmentFrame(interaction=_dump(row)) for row in held)
    return frames

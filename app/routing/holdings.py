"""Ending what an agent holds: an offer returned to the queue, interactions finished, and the
events of each offer's end and each interaction's move. Shared by the offer decisions, the
agent's leaving routing, the sweeps and the caller's line (app/routing/line.py), inside the
caller's transaction; the caller writes and publishes `Events`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg

from app.core.events import Events
from app.core.pg import now
from app.interactions.lifecycle import move_payload
from app.interactions.models import InteractionState

S = InteractionState


async def return_to_queue(
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
    offer_ended(events, offer_id, outcome, interaction_id, agent_id, reason, actor)
    if requeued is not None:
        extra = {"offer_id": str(offer_id), "reason": reason}
        moved(events, interaction_id, S.offered, S.queued, None, actor, extra)
    return True


def offer_ended(
    events: Events,
    offer_id: uuid.UUID,
    outcome: str,
    interaction_id: uuid.UUID,
    agent_id: uuid.UUID,
    reason: str,
    actor: str,
) -> None:
    """The event of an offer's end (`offer.<outcome>`): it names the agent, so the agent's desk
    is told (an `offer_withdrawn` frame, app/desk/frames.py)."""
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


def moved(
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


async def finish(
    connection: asyncpg.Connection,
    interaction_ids: list[uuid.UUID],
    *,
    disposition: str | None = None,
    notes: str | None = None,
) -> None:
    """Wrap-ups over: completed, with a disposition and notes where given (else as they were)."""
    await connection.execute(
        "UPDATE interactions SET state = 'completed', ended_at = $2, updated_at = $2,"
        " disposition = coalesce($3, disposition), notes = coalesce($4, notes)"
        " WHERE id = ANY($1::uuid[])",
        interaction_ids,
        now(),
        disposition,
        notes,
    )

"""Interactions: history and the moves made over the admin API. Intake is intake.py (plain SQL,
a hot path).

Offers and assignment are routing's business (app/routing), and so is every move that settles
an offer or an agent's holding (a caller who hangs up or takes a callback: app/routing/line.py);
this module owns the interaction row, its legal moves (lifecycle.py) and the event each move
writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.core.channels import Channel
from app.core.errors import Forbidden, IllegalTransition, InvalidField, NotFound
from app.core.events import events_of
from app.interactions.lifecycle import ensure_can_move, move_payload
from app.interactions.models import (
    TERMINAL_STATES,
    Interaction,
    InteractionState,
    Offer,
    OfferState,
)
from app.queues import service as queues
from app.queues.models import Queue, QueueSkill
from app.skills.models import Skill

S = InteractionState


class InteractionNotFound(NotFound):
    code = "interaction_not_found"


@dataclass(frozen=True, slots=True)
class InteractionFilter:
    state: InteractionState | None = None
    channel: Channel | None = None
    queue_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    external_ref: str | None = None


def now() -> datetime:
    return datetime.now(UTC)


async def has_served(session: AsyncSession, user_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
    """Whether the agent of `user_id` holds or held an interaction of the customer: it holds
    it now or held it last (its agent), or it accepted it once (a transfer takes the agent
    off the interaction, not the accepted offer off the record). The customers API asks this
    before an agent changes a customer (main hands it over as `ServedCustomers`)."""
    agent = select(Agent.id).where(Agent.user_id == user_id).scalar_subquery()
    accepted = exists().where(
        Offer.interaction_id == Interaction.id,
        Offer.agent_id == agent,
        Offer.state == OfferState.accepted,
    )
    served = exists().where(
        Interaction.customer_id == customer_id, or_(Interaction.agent_id == agent, accepted)
    )
    return bool((await session.execute(select(served))).scalar_one())


async def resolve_queue(session: AsyncSession, reference: str, *, field: str = "queue") -> Queue:
    """A queue by id or by name (case-insensitive)."""
    try:
        return await queues.get_queue(session, uuid.UUID(reference))
    except (ValueError, queues.QueueNotFound):
        pass
    query = select(Queue).where(func.lower(Queue.name) == reference.lower())
    queue = (await session.execute(query)).scalar_one_or_none()
    if queue is None:
        raise InvalidField(field, f"no queue named or numbered {reference!r}")
    return queue


async def _queue_needs(session: AsyncSession, queue: Queue) -> dict[str, int]:
    rows = await session.execute(
        select(Skill.name, QueueSkill.min_proficiency)
        .join(Skill, Skill.id == QueueSkill.skill_id)
        .where(QueueSkill.queue_id == queue.id)
    )
    return {name: level for name, level in rows}


async def get_interaction(
    session: AsyncSession, interaction_id: uuid.UUID, *, for_update: bool = False
) -> Interaction:
    query = select(Interaction).where(Interaction.id == interaction_id)
    if for_update:
        query = query.with_for_update(key_share=True)
    interaction = (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()
    if interaction is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    return interaction


def ensure_assigned_to(interaction: Interaction, agent_id: uuid.UUID) -> None:
    """An agent sees, and acts on, only the interactions assigned to it."""
    if interaction.agent_id != agent_id:
        raise Forbidden("an agent sees only the interactions assigned to it")


async def list_interactions(
    session: AsyncSession, where: InteractionFilter, *, limit: int, offset: int
) -> tuple[list[Interaction], int]:
    query = select(Interaction)
    for column, value in (
        (Interaction.state, where.state),
        (Interaction.channel, where.channel),
        (Interaction.queue_id, where.queue_id),
        (Interaction.customer_id, where.customer_id),
        (Interaction.agent_id, where.agent_id),
        (Interaction.external_ref, where.external_ref),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.external_ref is not None and where.channel is None:
        # A reference is unique per channel, and that index leads with the channel: naming
        # every channel lets PostgreSQL probe it once per channel instead of scanning the table.
        query = query.where(Interaction.channel.in_(list(Channel)))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = query.order_by(Interaction.created_at.desc(), Interaction.id).limit(limit).offset(offset)
    return list((await session.execute(page)).scalars()), total


async def move(
    session: AsyncSession,
    interaction: Interaction,
    target: InteractionState,
    *,
    actor: str,
    what: str,
    payload: dict[str, Any] | None = None,
) -> None:
    """Move an interaction (locked by the caller) to `target`, stamping the time and the event."""
    ensure_can_move(interaction.state, target, what=what)
    moment = now()
    previous = interaction.state
    interaction.state = target
    if target is S.offered:
        interaction.offered_at = moment
    elif target is S.assigned:
        interaction.assigned_at = moment
    elif target is S.wrap_up:
        interaction.wrap_up_at = moment
    elif target in TERMINAL_STATES:
        interaction.ended_at = moment
    events_of(session).add(
        f"interaction.{target.value}",
        subject_type="interaction",
        subject_id=interaction.id,
        actor=actor,
        payload=move_payload(previous, interaction.agent_id, payload),
    )


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


async def transfer(
    session: AsyncSession, interaction_id: uuid.UUID, queue_ref: str, *, actor: str, note: str
) -> Interaction:
    """Send an assigned interaction to another queue; it waits there anew, its history kept."""
    interaction = await get_interaction(session, interaction_id, for_update=True)
    if interaction.state is not S.assigned:
        raise IllegalTransition(
            f"cannot transfer it: only assigned work moves; it is {interaction.state.value}"
        )
    target = await resolve_queue(session, queue_ref)
    previous_agent = interaction.agent_id
    interaction.transferred_from = interaction.queue_id
    interaction.queue_id = target.id
    interaction.needs = [
        {"skill": name, "level": level}
        for name, level in sorted((await _queue_needs(session, target)).items())
    ]
    interaction.agent_id = None
    interaction.waiting_since = now()
    await move(
        session,
        interaction,
        S.queued,
        actor=actor,
        what="transfer it",
        payload={
            "to_queue_id": str(target.id),
            "channel": interaction.channel.value,
            "from_agent_id": _str(previous_agent),
            "note": note,
        },
    )
    return interaction

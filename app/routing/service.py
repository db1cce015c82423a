"""Offer decisions (accept, reject, time out) and the sweeps that keep nothing stuck.

Each function runs inside the caller's unit of work and writes its events there; whoever
commits then wakes the matcher (freed capacity may route waiting work).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent, AgentState
from app.core.channels import Channel
from app.core.errors import IllegalTransition, NotFound
from app.core.events import SYSTEM_ACTOR, record_event
from app.interactions import service as interactions
from app.interactions.models import Interaction, InteractionState, Offer, OfferState
from app.queues.models import Queue
from app.routing.load import loads_of

ROUTABLE = (AgentState.available, AgentState.busy, AgentState.wrap_up)
VOICE_LIKE = (Channel.voice, Channel.callback)


class OfferNotFound(NotFound):
    code = "offer_not_found"


def now() -> datetime:
    return datetime.now(UTC)


async def _pending_offer(session: AsyncSession, offer_id: uuid.UUID, agent_id: uuid.UUID) -> Offer:
    query = select(Offer).where(Offer.id == offer_id).with_for_update()
    offer = (await session.execute(query)).scalar_one_or_none()
    if offer is None or offer.agent_id != agent_id:
        raise OfferNotFound(f"you hold no offer {offer_id}")
    if offer.state is not OfferState.pending:
        raise IllegalTransition(f"the offer is already {offer.state.value}")
    return offer


async def accept_offer(
    session: AsyncSession, offer_id: uuid.UUID, *, agent_id: uuid.UUID, actor: str
) -> Interaction:
    offer = await _pending_offer(session, offer_id, agent_id)
    if offer.deadline <= now():
        raise IllegalTransition("the offer has timed out; it is back in the queue")
    interaction = await interactions.get_interaction(session, offer.interaction_id, for_update=True)
    offer.state = OfferState.accepted
    offer.decided_at = now()
    interaction.agent_id = agent_id
    await record_event(
        session,
        "offer.accepted",
        subject_type="offer",
        subject_id=offer.id,
        actor=actor,
        payload={"interaction_id": str(interaction.id), "agent_id": str(agent_id)},
    )
    await interactions.move(
        session,
        interaction,
        InteractionState.assigned,
        actor=actor,
        what="assign it",
        payload={"offer_id": str(offer.id)},
    )
    await refresh_agent_state(session, agent_id, actor=actor)
    return interaction


async def reject_offer(
    session: AsyncSession, offer_id: uuid.UUID, *, agent_id: uuid.UUID, reason: str, actor: str
) -> None:
    offer = await _pending_offer(session, offer_id, agent_id)
    await _return_to_queue(session, offer, OfferState.rejected, reason=reason, actor=actor)


async def _return_to_queue(
    session: AsyncSession, offer: Offer, outcome: OfferState, *, reason: str, actor: str
) -> None:
    """End a pending offer; its interaction waits again, its waiting time intact."""
    offer.state = outcome
    offer.decided_at = now()
    offer.reason = reason[:300]
    await record_event(
        session,
        f"offer.{outcome.value}",
        subject_type="offer",
        subject_id=offer.id,
        actor=actor,
        payload={
            "interaction_id": str(offer.interaction_id),
            "agent_id": str(offer.agent_id),
            "reason": reason,
        },
    )
    interaction = await interactions.get_interaction(session, offer.interaction_id, for_update=True)
    if interaction.state is InteractionState.offered:
        await interactions.move(
            session,
            interaction,
            InteractionState.queued,
            actor=actor,
            what="requeue it",
            payload={"offer_id": str(offer.id), "reason": reason},
        )


async def time_out_offers(session: AsyncSession) -> int:
    """Offers past their deadline go back to the queue; the agent who missed one may go away."""
    query = (
        select(Offer, Queue.away_on_missed_offer)
        .join(Interaction, Interaction.id == Offer.interaction_id)
        .join(Queue, Queue.id == Interaction.queue_id)
        .where(Offer.state == OfferState.pending, Offer.deadline <= now())
        .with_for_update(of=Offer, skip_locked=True)
    )
    rows = (await session.execute(query)).all()
    for offer, away in rows:
        await _return_to_queue(
            session, offer, OfferState.timed_out, reason="offer timed out", actor=SYSTEM_ACTOR
        )
        if away:
            await set_state(
                session,
                offer.agent_id,
                AgentState.away,
                reason="missed an offer",
                actor=SYSTEM_ACTOR,
            )
    return len(rows)


async def release_agent(
    session: AsyncSession, agent_id: uuid.UUID, *, state: AgentState, reason: str, actor: str
) -> None:
    """The agent leaves routing (socket gone, heartbeat lost, logged off): its offers return."""
    query = (
        select(Offer)
        .where(Offer.agent_id == agent_id, Offer.state == OfferState.pending)
        .with_for_update()
    )
    for offer in (await session.execute(query)).scalars():
        await _return_to_queue(session, offer, OfferState.withdrawn, reason=reason, actor=actor)
    await set_state(session, agent_id, state, reason=reason, actor=actor)


async def sweep_silent_agents(session: AsyncSession, *, silence: timedelta) -> int:
    """Rule 8: an agent whose socket has said nothing for `silence` leaves available."""
    query = (
        select(Agent.id)
        .where(Agent.state.in_(ROUTABLE), Agent.last_seen_at < now() - silence)
        .with_for_update(skip_locked=True)
    )
    silent = list((await session.execute(query)).scalars())
    for agent_id in silent:
        await release_agent(
            session, agent_id, state=AgentState.away, reason="no heartbeat", actor=SYSTEM_ACTOR
        )
    return len(silent)


async def end_overdue_wrap_ups(session: AsyncSession) -> int:
    """A wrap-up ends by itself after the queue's wrap-up time."""
    query = (
        select(Interaction)
        .join(Queue, Queue.id == Interaction.queue_id)
        .where(
            Interaction.state == InteractionState.wrap_up,
            Interaction.wrap_up_at + func.make_interval(0, 0, 0, 0, 0, 0, Queue.wrap_up_seconds)
            < func.now(),
        )
        .with_for_update(of=Interaction, skip_locked=True)
    )
    overdue = list((await session.execute(query)).scalars())
    for interaction in overdue:
        await interactions.move(
            session,
            interaction,
            InteractionState.completed,
            actor=SYSTEM_ACTOR,
            what="end its wrap-up",
            payload={"reason": "wrap-up time over"},
        )
        if interaction.agent_id is not None:
            await refresh_agent_state(session, interaction.agent_id, actor=SYSTEM_ACTOR)
    return len(overdue)


async def set_state(
    session: AsyncSession, agent_id: uuid.UUID, state: AgentState, *, reason: str | None, actor: str
) -> None:
    query = select(Agent).where(Agent.id == agent_id).with_for_update()
    agent = (await session.execute(query)).scalar_one()
    if agent.state is state and agent.state_reason == reason:
        return
    previous = agent.state
    agent.state, agent.state_reason, agent.state_since = state, reason, now()
    await record_event(
        session,
        "agent.state_changed",
        subject_type="agent",
        subject_id=agent_id,
        actor=actor,
        payload={"from": previous.value, "to": state.value, "reason": reason},
    )


async def refresh_agent_state(session: AsyncSession, agent_id: uuid.UUID, *, actor: str) -> None:
    """busy while holding work, wrap_up after a call, available when free; away/offline stay."""
    agent = (
        await session.execute(select(Agent).where(Agent.id == agent_id).with_for_update())
    ).scalar_one()
    if agent.state not in ROUTABLE:
        return
    in_wrap_up = (
        await session.execute(
            select(Interaction.id)
            .where(
                and_(
                    Interaction.agent_id == agent_id,
                    Interaction.state == InteractionState.wrap_up,
                    Interaction.channel.in_(VOICE_LIKE),
                )
            )
            .limit(1)
        )
    ).first() is not None
    held = (await loads_of(session, [agent_id]))[agent_id]
    if in_wrap_up:
        target = AgentState.wrap_up
    elif held.voice or held.chat or held.email:
        target = AgentState.busy
    else:
        target = AgentState.available
        if agent.state is not AgentState.available:
            agent.idle_since = now()
    await set_state(session, agent_id, target, reason=None, actor=actor)

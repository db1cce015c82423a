"""From the event log to the frames an agent's desk receives."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent, AgentState
from app.core.hub import EventRecord
from app.desk import screen_pop
from app.desk.protocol import (
    AssignmentFrame,
    InteractionUpdateFrame,
    OfferFrame,
    OfferWithdrawnFrame,
    StateFrame,
)
from app.interactions import service as interactions
from app.interactions.models import Interaction, InteractionState, Offer, OfferState
from app.interactions.schemas import InteractionOut

OFFER_ENDINGS = {"offer.withdrawn", "offer.timed_out", "offer.rejected"}


def routing_of(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "reason": payload.get("reason", ""),
        "matched_skills": payload.get("matched_skills", {}),
        "effective_priority": payload.get("effective_priority"),
    }


async def frame_for(session: AsyncSession, event: EventRecord) -> BaseModel | None:
    """The frame an event becomes on its agent's desk, or None when the desk need not know."""
    payload = event.payload
    if event.kind == "agent.state_changed":
        return StateFrame(
            event_id=event.id, state=AgentState(payload["to"]), reason=payload.get("reason")
        )
    if event.kind == "interaction.offered":
        interaction_id = uuid.UUID(event.subject_id)
        return OfferFrame(
            event_id=event.id,
            offer_id=uuid.UUID(payload["offer_id"]),
            interaction_id=interaction_id,
            channel=payload["channel"],
            deadline=datetime.fromisoformat(payload["deadline"]),
            screen_pop=await screen_pop.build(session, interaction_id, routing_of(payload)),
        )
    if event.kind in OFFER_ENDINGS:
        return OfferWithdrawnFrame(
            event_id=event.id,
            offer_id=uuid.UUID(event.subject_id),
            interaction_id=uuid.UUID(payload["interaction_id"]),
            reason=str(payload.get("reason", event.kind)),
        )
    if event.kind == "interaction.assigned":
        interaction = await interactions.get_interaction(session, uuid.UUID(event.subject_id))
        return AssignmentFrame(event_id=event.id, interaction=_dump(interaction))
    if event.kind.startswith("interaction.") and event.kind != "interaction.queued":
        state = event.kind.removeprefix("interaction.")
        return InteractionUpdateFrame(
            event_id=event.id,
            interaction_id=uuid.UUID(event.subject_id),
            state=state,
            detail=payload,
        )
    return None


def _dump(interaction: Interaction) -> dict[str, Any]:
    return InteractionOut.model_validate(interaction).model_dump(mode="json")


async def current_frames(session: AsyncSession, agent_id: uuid.UUID) -> list[BaseModel]:
    """What the agent holds now: its state, pending offers (with screen pop) and assignments."""
    agent = (await session.execute(select(Agent).where(Agent.id == agent_id))).scalar_one()
    frames: list[BaseModel] = [StateFrame(state=agent.state, reason=agent.state_reason)]
    offers = await session.execute(
        select(Offer).where(Offer.agent_id == agent_id, Offer.state == OfferState.pending)
    )
    for offer in offers.scalars():
        routing = {"reason": offer.reason, **offer.matched}
        frames.append(
            OfferFrame(
                offer_id=offer.id,
                interaction_id=offer.interaction_id,
                channel=offer.channel.value,
                deadline=offer.deadline,
                screen_pop=await screen_pop.build(session, offer.interaction_id, routing),
            )
        )
    held = await session.execute(
        select(Interaction).where(
            Interaction.agent_id == agent_id,
            Interaction.state.in_((InteractionState.assigned, InteractionState.wrap_up)),
        )
    )
    frames.extend(AssignmentFrame(interaction=_dump(i)) for i in held.scalars())
    return frames

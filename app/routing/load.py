"""What agents hold right now: pending offers plus assigned and wrapping-up interactions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.channels import Channel
from app.interactions.models import Interaction, InteractionState, Offer, OfferState
from app.routing.policy import Load

HELD = (InteractionState.assigned, InteractionState.wrap_up)


def _add(load: Load, channel: Channel, count: int) -> Load:
    if channel in (Channel.voice, Channel.callback):
        return Load(voice=load.voice + count, chat=load.chat, email=load.email)
    if channel is Channel.chat:
        return Load(voice=load.voice, chat=load.chat + count, email=load.email)
    return Load(voice=load.voice, chat=load.chat, email=load.email + count)


async def loads_of(session: AsyncSession, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Load]:
    ids = list(agent_ids)
    loads: dict[uuid.UUID, Load] = defaultdict(Load)
    if not ids:
        return loads
    offers = select(Offer.agent_id.label("agent_id"), Offer.channel.label("channel")).where(
        Offer.state == OfferState.pending, Offer.agent_id.in_(ids)
    )
    held = select(Interaction.agent_id, Interaction.channel).where(
        Interaction.state.in_(HELD), Interaction.agent_id.in_(ids)
    )
    both = union_all(offers, held).subquery()
    rows = await session.execute(
        select(both.c.agent_id, both.c.channel, func.count()).group_by(
            both.c.agent_id, both.c.channel
        )
    )
    for agent_id, channel, count in rows:
        loads[agent_id] = _add(loads[agent_id], Channel(channel), count)
    return loads

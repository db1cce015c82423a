"""The screen pop: who the customer is and what happened before, built for one offer."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.auth.models import User
from app.customers import service as customers
from app.interactions import service as interactions
from app.queues.models import Queue

HISTORY_LENGTH = 10


async def build(
    session: AsyncSession, interaction_id: uuid.UUID, routing: dict[str, Any]
) -> dict[str, Any]:
    interaction = await interactions.get_interaction(session, interaction_id)
    customer = await customers.get_customer(session, interaction.customer_id)
    history = await interactions.recent_for_customer(session, customer.id, limit=HISTORY_LENGTH + 1)
    earlier = [item for item in history if item.id != interaction.id][:HISTORY_LENGTH]
    names = await _agent_names(session, {i.agent_id for i in earlier if i.agent_id is not None})
    queue_name = (
        await session.execute(select(Queue.name).where(Queue.id == interaction.queue_id))
    ).scalar_one()
    return {
        "interaction": {
            "id": str(interaction.id),
            "channel": interaction.channel.value,
            "external_ref": interaction.external_ref,
            "queue": queue_name,
            "subject": interaction.subject,
            "priority": interaction.priority,
            "waiting_since": interaction.waiting_since.isoformat(),
        },
        "customer": {
            "id": str(customer.id),
            "name": customer.name,
            "tier": customer.tier.value,
            "lifecycle_stage": customer.lifecycle_stage.value,
            "value": str(customer.value),
            "language": customer.language,
            "notes": customer.notes,
            "contact_points": [
                {"kind": c.kind.value, "value": c.value} for c in customer.contact_points
            ],
        },
        "history": [
            {
                "id": str(item.id),
                "channel": item.channel.value,
                "created_at": item.created_at.isoformat(),
                "state": item.state.value,
                "subject": item.subject,
                "disposition": item.disposition,
                "agent": names.get(item.agent_id) if item.agent_id else None,
            }
            for item in earlier
        ],
        # Filled by the complaints issue; the slot is part of the protocol already.
        "open_complaints": [],
        "routing": routing,
    }


async def _agent_names(session: AsyncSession, agent_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not agent_ids:
        return {}
    rows = await session.execute(
        select(Agent.id, User.display_name)
        .join(User, User.id == Agent.user_id)
        .where(Agent.id.in_(agent_ids))
    )
    return dict(rows.all())

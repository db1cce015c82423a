"""An agent's answer to an interaction's customer, by its channel: a mail for an email
(app/channels/email/replies.py), a line for a chat (app/channels/chat/replies.py); a call is
answered on the phone. The desk's `reply` (which main gives the desk: `reply_as_holder`) and
`POST /v1/interactions/{id}/replies` both come here, so the rules are the same either way."""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.auth.models import User
from app.channels.chat import replies as chat_replies
from app.channels.email import replies as email_replies
from app.channels.email.replies import CannotReply
from app.core.channels import Channel
from app.interactions import service as interactions
from app.interactions.models import Interaction


class Sent(Protocol):
    @property
    def message_id(self) -> uuid.UUID: ...

    @property
    def channel_message_id(self) -> str: ...


async def reply_as_holder(
    session: AsyncSession,
    interaction_id: uuid.UUID,
    text: str,
    *,
    agent_id: uuid.UUID,
    actor: str,
) -> Sent:
    """The reply of the agent who holds the interaction (the desk's `reply`), in the session's
    transaction: another agent is refused as over HTTP, then the channel's rules hold."""
    interaction = await interactions.get_interaction(session, interaction_id, for_update=True)
    interactions.ensure_assigned_to(interaction, agent_id)
    return await reply(session, interaction, text, actor=actor)


async def reply(session: AsyncSession, interaction: Interaction, text: str, *, actor: str) -> Sent:
    """The answer by the interaction's own channel (the caller has checked who may)."""
    match interaction.channel:
        case Channel.email:
            return await email_replies.reply(session, interaction, text, actor=actor)
        case Channel.chat:
            name = await _agent_name(session, interaction.agent_id)
            return await chat_replies.say(session, interaction, text, actor=actor, agent_name=name)
        case _:
            channel = interaction.channel.value
            raise CannotReply(f"a {channel} interaction is answered on the phone, not in writing")


async def _agent_name(session: AsyncSession, agent_id: uuid.UUID | None) -> str:
    """The name the customer sees on the agent's lines."""
    if agent_id is None:
        return ""
    query = (
        select(User.display_name).join(Agent, Agent.user_id == User.id).where(Agent.id == agent_id)
    )
    return await session.scalar(query) or ""

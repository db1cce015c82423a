"""What the center tells a customer outside a conversation an agent holds (a complaint's
acknowledgement, a rejection, its reply), on the channel of one of their interactions: a mail on
an email's thread (whatever its state: the customer's answer threads back to it), a line in a
chat still open. A call carries no writing, nor does a chat that has ended: the complaints
service then keeps the text for an agent to read out. Main hands `tell` to the complaints
service (`tickets.service.CustomerNotices`).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.chat import replies as chat_replies
from app.channels.chat.replies import CannotSay
from app.channels.email import replies as email_replies
from app.channels.email.replies import CannotReply
from app.core.channels import Channel
from app.interactions.models import Interaction

SENDER = "Customer care"  # whom a chat's customer sees the notice from


async def tell(
    session: AsyncSession, interaction_id: uuid.UUID, text: str, *, subject: str, actor: str
) -> str | None:
    """How it went out ("mail", "chat"), or None when this interaction cannot carry it."""
    interaction = await session.get(Interaction, interaction_id)
    if interaction is None:
        return None
    try:
        match interaction.channel:
            case Channel.email:
                await email_replies.on_thread(
                    session, interaction, text, actor=actor, subject=subject
                )
                return "mail"
            case Channel.chat:
                await chat_replies.say(session, interaction, text, actor=actor, agent_name=SENDER)
                return "chat"
    except (CannotReply, CannotSay):
        return None
    return None

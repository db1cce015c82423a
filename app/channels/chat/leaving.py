"""After hours: the widget's form, a message with an email address, becomes an email interaction
in the site's queue, answered by mail like any other (docs/chat-protocol.md, "After hours").

Stored before the customer is told (`left_message`), once per visitor and text (a resend after
a drop adds nothing), and opened through intake with the message as its first.
"""

from __future__ import annotations

import hashlib

import asyncpg

from app.channels.chat.sites import Site
from app.channels.chat.visitors import Visitor
from app.core import pg
from app.core.channels import Channel
from app.core.errors import InvalidField
from app.customers import email_contacts
from app.customers.models import ContactKind
from app.interactions import messages
from app.interactions.intake import Conversation, Intake
from app.interactions.schemas import ContactIn, InteractionCreate

ACTOR = "channel:chat"
KIND = "left_message"
SUBJECT = "Message left in chat"
SUMMARY_LIMIT = 20_000


class AfterHours:
    def __init__(self, *, pool: asyncpg.Pool, intake: Intake) -> None:
        self._pool = pool
        self._intake = intake

    async def leave_message(self, site: Site, visitor: Visitor, email: str, text: str) -> None:
        address = email_contacts.normalized(email)
        if address is None:
            raise InvalidField("email", f"{email!r} is not an email address we can answer")
        basis = f"left\x00{visitor.id}\x00{address}\x00{text}"
        key = hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()
        async with pg.transaction(self._pool) as connection:
            stored = await messages.store(
                connection,
                messages.NewMessage(
                    kind=KIND,
                    dedupe_key=key,
                    channel_message_id=None,
                    sender=address,
                    sender_name=visitor.name,
                    subject=SUBJECT,
                    text=text,
                    quoted="",
                    from_html=False,
                    received_at=pg.now(),
                ),
            )
        if stored.interaction_id is not None:
            return  # left before: one interaction for it
        data = InteractionCreate(
            channel=Channel.email,
            queue=str(site.queue_id),
            contact=ContactIn(kind=ContactKind.email, value=address),
            customer_name=visitor.name or None,
            external_ref=key,
            subject=SUBJECT,
            summary=text[:SUMMARY_LIMIT],
        )
        await self._intake.receive(data, actor=ACTOR, conversation=Conversation(stored.id))

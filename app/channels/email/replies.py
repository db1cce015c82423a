"""An agent's reply by mail, and what became of it.

A reply is composed to thread back (app/channels/email/compose.py: Message-ID on the support
domain, In-Reply-To the customer's latest message, References the thread's chain, Reply-To
`support+<token>@`, the token once in the subject), stored as the interaction's outbound
message and written to the outbox in the same transaction (kind `mail`, sender `smtp`, keyed
by the message): nothing an agent wrote is lost across a restart. The outbox's courier sends
it after the commit and retries a relay that is down or answers 4xx; a 5xx is final. The
interaction's messages read back with each reply's state: pending, sent, failed (retrying) or
dead (refused for good, the relay's words shown).

Agents reply over HTTP (app/channels/messages_api.py: whoever may see the interaction) or from
the desk socket (only the agent who holds it); both come here through app/channels/replies.py,
which answers each interaction by its own channel.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.channels.email import compose
from app.channels.email.models import EmailAddress
from app.core.errors import Conflict
from app.core.events import events_of
from app.core.outbox import OutboxMessage, enqueue_in, mail_message
from app.customers.models import ContactKind, ContactPoint, Customer
from app.interactions.models import (
    Interaction,
    InteractionMessage,
    InteractionState,
    MessageDirection,
)

# Work that can still be answered: held by an agent, or being wrapped up.
ANSWERABLE = frozenset({InteractionState.assigned, InteractionState.wrap_up})
SUBJECT_TYPE = "interaction_message"


class CannotReply(Conflict):
    code = "cannot_reply"


@dataclass(frozen=True, slots=True)
class Sent:
    """A reply as stored: its message's id and Message-ID, and its outbox message's."""

    message_id: uuid.UUID
    channel_message_id: str
    outbox_id: uuid.UUID


async def reply(session: AsyncSession, interaction: Interaction, text: str, *, actor: str) -> Sent:
    """Answer the customer of an email interaction that is being handled (the caller has
    checked who may); in the session's transaction."""
    if interaction.channel.value != "email":
        raise CannotReply("only an email interaction is answered by mail")
    if interaction.state not in ANSWERABLE:
        raise CannotReply(
            f"the interaction is {interaction.state.value}: a reply goes out while it is held"
            " or wrapped up"
        )
    return await on_thread(session, interaction, text, actor=actor)


async def on_thread(
    session: AsyncSession,
    interaction: Interaction,
    text: str,
    *,
    actor: str,
    subject: str | None = None,
) -> Sent:
    """A mail to the customer on an email interaction's thread, whatever its state: what the
    center tells them later (a complaint's acknowledgement, its reply) threads with what they
    wrote, and their answer comes back as a follow-up of it. `subject`: other than the
    thread's (a complaint's names its reference)."""
    support = await _support_of(session, interaction)
    customer = await session.get(Customer, interaction.customer_id)
    assert customer is not None, "an interaction's customer is kept"
    messages = await _messages(session, interaction.id)
    to = _customer_address(messages) or await _email_contact(session, customer.id)
    if to is None:
        raise CannotReply("the customer has no email address to answer")
    token = interaction.reply_token or compose.reply_token()
    interaction.reply_token = token
    chain = [m.channel_message_id for m in messages if m.channel_message_id]
    inbound = [m for m in messages if m.direction is MessageDirection.inbound]
    thread = compose.Thread(
        token=token,
        subject=subject or (inbound[-1].subject if inbound else "") or interaction.subject,
        answering=inbound[-1].channel_message_id if inbound else None,
        references=chain,
    )
    mail = compose.reply(
        support=support, customer=to, customer_name=customer.name, thread=thread, body=text
    )
    return await _keep_and_send(session, interaction, mail, text, actor)


async def _keep_and_send(
    session: AsyncSession,
    interaction: Interaction,
    mail: EmailMessage,
    text: str,
    actor: str,
) -> Sent:
    header = str(mail["Message-ID"]).strip("<>")
    stored = InteractionMessage(
        id=uuid.uuid4(),
        interaction_id=interaction.id,
        direction=MessageDirection.outbound,
        kind="reply",
        channel_message_id=header,
        dedupe_key=f"out:{uuid.uuid4().hex}",
        sender=mail["From"].addresses[0].addr_spec,
        sender_name=actor,
        subject=str(mail["Subject"]),
        text=text,
        received_at=datetime.now(UTC),
    )
    session.add(stored)
    await session.flush()
    enqueued = await enqueue_in(
        session,
        mail_message(
            sender="smtp",
            message=mail,
            dedupe_key=f"reply:{stored.id}",
            subject_type=SUBJECT_TYPE,
            subject_id=stored.id,
        ),
    )
    events_of(session).add(
        "interaction.message",
        subject_type="interaction",
        subject_id=interaction.id,
        actor=actor,
        payload={"message_id": str(stored.id), "direction": "outbound", "kind": "reply"},
    )
    return Sent(stored.id, header, enqueued.id)


async def _support_of(session: AsyncSession, interaction: Interaction) -> compose.SupportAddress:
    query = select(EmailAddress).where(EmailAddress.queue_id == interaction.queue_id)
    address = await session.scalar(query.order_by(EmailAddress.address).limit(1))
    if address is None:
        raise CannotReply("the interaction's queue has no support address to answer from")
    return compose.SupportAddress(address.address, address.display_name)


async def _messages(session: AsyncSession, interaction_id: uuid.UUID) -> list[InteractionMessage]:
    query = select(InteractionMessage).where(InteractionMessage.interaction_id == interaction_id)
    found = await session.scalars(query.order_by(InteractionMessage.received_at))
    return list(found)


def _customer_address(messages: list[InteractionMessage]) -> str | None:
    inbound = [m.sender for m in messages if m.direction is MessageDirection.inbound and m.sender]
    return inbound[-1] if inbound else None


async def _email_contact(session: AsyncSession, customer_id: uuid.UUID) -> str | None:
    query = select(ContactPoint.value).where(
        ContactPoint.customer_id == customer_id, ContactPoint.kind == ContactKind.email
    )
    return await session.scalar(query.order_by(ContactPoint.created_at).limit(1))


async def delivery_states(
    session: AsyncSession, message_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str | None]]:
    """Each outbound message's outbox state and, when it failed, the relay's words."""
    if not message_ids:
        return {}
    query = select(OutboxMessage.subject_id, OutboxMessage.state, OutboxMessage.last_error).where(
        OutboxMessage.subject_type == SUBJECT_TYPE,
        OutboxMessage.subject_id.in_([str(m) for m in message_ids]),
    )
    rows = (await session.execute(query)).all()
    return {uuid.UUID(row.subject_id): (row.state.value, row.last_error) for row in rows}

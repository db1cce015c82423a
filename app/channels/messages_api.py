"""An interaction's messages over HTTP, whatever its channel: the agent's reply (`POST
.../replies`: a mail for an email, a line for a chat, by app/channels/replies.py), the thread
or transcript as it stands with each reply's delivery (`GET .../messages`), and attachments,
downloaded only by those who may see the interaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import quote

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from app.auth.dependencies import AnyUser, Session
from app.channels import replies as channel_replies
from app.channels.email import replies
from app.core.errors import NotFound
from app.core.pagination import Page, Pagination
from app.interactions import service as interactions
from app.interactions.api import visible
from app.interactions.models import InteractionMessage, MessageAttachment, MessageDirection
from app.interactions.schemas import ReplyText

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])


class ReplyIn(BaseModel):
    text: ReplyText = Field(description="The reply, plain text in any script")


class ReplyOut(BaseModel):
    message_id: uuid.UUID = Field(description="The reply as one of the interaction's messages")
    channel_message_id: str = Field(
        description="An email's Message-ID (the customer's answer names it); a chat line's id"
    )
    delivery: str = Field(
        description="`pending`: an email's until the relay takes it (GET .../messages); a chat"
        " line's until the customer's screen shows it (`delivered_at`)"
    )


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int


class MessageOut(BaseModel):
    id: uuid.UUID
    direction: MessageDirection
    kind: str
    sender: str | None
    sender_name: str
    subject: str
    text: str
    quoted: str = Field(description="The quoted history, apart from the new text")
    from_html: bool
    dropped: list[str] = Field(description="What was not kept, and why")
    mentions: uuid.UUID | None = Field(description="Another thread this message names")
    received_at: datetime
    attachments: list[AttachmentOut]
    delivery: str | None = Field(
        description="A reply's: pending, sending, sent, failed (retrying) or dead (refused)"
    )
    delivery_error: str | None = Field(description="The relay's words when it refused")
    delivered_at: datetime | None = Field(
        description="A chat line's: when it reached the other side's screen"
    )
    read_at: datetime | None = Field(description="A chat line's: when it was read there")


class AttachmentNotFound(NotFound):
    code = "not_found"


@router.post(
    "/{interaction_id}/replies",
    status_code=status.HTTP_201_CREATED,
    summary="Answer an interaction's customer: by mail for an email, a line for a chat",
)
async def send_reply(
    interaction_id: uuid.UUID, body: ReplyIn, principal: AnyUser, session: Session
) -> ReplyOut:
    interaction = await interactions.get_interaction(session, interaction_id, for_update=True)
    await visible(principal, session, interaction)
    sent = await channel_replies.reply(session, interaction, body.text, actor=principal.actor)
    return ReplyOut(
        message_id=sent.message_id, channel_message_id=sent.channel_message_id, delivery="pending"
    )


@router.get("/{interaction_id}/messages", summary="An interaction's messages, oldest first")
async def list_messages(
    interaction_id: uuid.UUID, principal: AnyUser, session: Session, page: Pagination
) -> Page[MessageOut]:
    interaction = await interactions.get_interaction(session, interaction_id)
    await visible(principal, session, interaction)
    of_it = InteractionMessage.interaction_id == interaction_id
    total = await session.scalar(select(func.count()).where(of_it))
    query = select(InteractionMessage).where(of_it).order_by(InteractionMessage.received_at)
    found = list(await session.scalars(query.limit(page.limit).offset(page.offset)))
    ids = [m.id for m in found]
    files = await session.scalars(
        select(MessageAttachment).where(MessageAttachment.message_id.in_(ids))
    )
    by_message: dict[uuid.UUID, list[AttachmentOut]] = {}
    for file in files:
        by_message.setdefault(file.message_id, []).append(
            AttachmentOut(
                id=file.id, filename=file.filename, content_type=file.content_type, size=file.size
            )
        )
    delivery = await replies.delivery_states(session, ids)
    items = [
        MessageOut(
            id=m.id,
            direction=m.direction,
            kind=m.kind,
            sender=m.sender,
            sender_name=m.sender_name,
            subject=m.subject,
            text=m.text,
            quoted=m.quoted,
            from_html=m.from_html,
            dropped=list(m.dropped),
            mentions=m.mentions,
            received_at=m.received_at,
            attachments=by_message.get(m.id, []),
            delivery=delivery.get(m.id, (None, None))[0],
            delivery_error=delivery.get(m.id, (None, None))[1],
            delivered_at=m.delivered_at,
            read_at=m.read_at,
        )
        for m in found
    ]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.get(
    "/{interaction_id}/attachments/{attachment_id}",
    summary="Download an attachment of one of the interaction's messages",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_attachment(
    interaction_id: uuid.UUID, attachment_id: uuid.UUID, principal: AnyUser, session: Session
) -> Response:
    interaction = await interactions.get_interaction(session, interaction_id)
    await visible(principal, session, interaction)
    query = (
        select(MessageAttachment)
        .join(InteractionMessage, InteractionMessage.id == MessageAttachment.message_id)
        .where(
            MessageAttachment.id == attachment_id,
            InteractionMessage.interaction_id == interaction_id,
        )
    )
    file = await session.scalar(query)
    if file is None:
        raise AttachmentNotFound(f"interaction {interaction_id} has no attachment {attachment_id}")
    # Always a download, never shown inline: what a customer sent is not run in the console.
    disposition = f"attachment; filename*=UTF-8''{quote(file.filename or 'attachment')}"
    return Response(
        content=file.data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )

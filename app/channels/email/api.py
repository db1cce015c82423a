"""Email in over HTTP: the support addresses (`/v1/email/addresses`: admins change them, staff
read them) and the inbound webhook (`POST /v1/email/inbound`: a mail provider posts a raw RFC
5322 message with a gateway key; the same function as the SMTP listener takes it)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from sqlalchemy import func, select

from app.auth.dependencies import Admin, Gateway, Session, Staff
from app.channels.email.inbound import MailIn, Refused
from app.channels.email.models import EmailAddress
from app.channels.email.schemas import (
    EmailAddressCreate,
    EmailAddressOut,
    EmailAddressUpdate,
    MailTaken,
)
from app.core.errors import AppError, InvalidField, NotFound
from app.core.pagination import Page, Pagination
from app.queues.models import Queue

router = APIRouter(prefix="/v1/email", tags=["email"])


class MailTooLarge(AppError):
    status_code = 413
    code = "mail_too_large"


class MailRefused(AppError):
    """A message not taken: unparseable, with no sender, or for no support address (the SMTP
    listener's 554 and 550)."""

    status_code = 422
    code = "mail_refused"


@router.get("/addresses", summary="The support addresses mail comes in to, and their queues")
async def list_addresses(_: Staff, session: Session, page: Pagination) -> Page[EmailAddressOut]:
    total = await session.scalar(select(func.count()).select_from(EmailAddress))
    rows = await session.scalars(
        select(EmailAddress).order_by(EmailAddress.address).limit(page.limit).offset(page.offset)
    )
    items = [EmailAddressOut.model_validate(row) for row in rows]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.post(
    "/addresses", status_code=status.HTTP_201_CREATED, summary="Take mail for a support address"
)
async def create_address(body: EmailAddressCreate, _: Admin, session: Session) -> EmailAddressOut:
    await _ensure_queue(session, body.queue_id)
    address = EmailAddress(**body.model_dump())
    session.add(address)
    await session.flush()
    await session.refresh(address)
    return EmailAddressOut.model_validate(address)


@router.patch("/addresses/{address_id}", summary="Change a support address's queue or name")
async def update_address(
    address_id: uuid.UUID, body: EmailAddressUpdate, _: Admin, session: Session
) -> EmailAddressOut:
    address = await _address(session, address_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "queue_id" in changes:
        await _ensure_queue(session, changes["queue_id"])
    for name, value in changes.items():
        setattr(address, name, value)
    await session.flush()
    await session.refresh(address)
    return EmailAddressOut.model_validate(address)


@router.delete(
    "/addresses/{address_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop taking mail for a support address (its mail is refused from then on)",
)
async def delete_address(address_id: uuid.UUID, _: Admin, session: Session) -> None:
    await session.delete(await _address(session, address_id))


@router.post(
    "/inbound",
    summary="A raw RFC 5322 message from a mail provider's inbound webhook",
    description="The body is the message as it came, byte for byte, whatever its Content-Type "
    "says (providers send `message/rfc822`; the document names `application/octet-stream`, "
    "which every client can send). Answered as the SMTP listener answers it: 413 over "
    "CC_EMAIL_MAX_BYTES (its 552), 422 for a message that cannot be parsed or is for no "
    "support address (its 554, 550), else what it became.",
    responses={
        413: {"description": "The message is over CC_EMAIL_MAX_BYTES (SMTP's 552)"},
        422: {
            "description": "The message cannot be parsed, has no sender, or is for no support "
            "address (SMTP's 554, 550)"
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def inbound(request: Request, principal: Gateway) -> MailTaken:
    mail_in: MailIn = request.app.state.mail_in
    raw = await _body(request, mail_in.max_bytes)
    try:
        taken = await mail_in.take(raw)
    except Refused as refused:
        if refused.code == 552:
            raise MailTooLarge(refused.reason) from refused
        raise MailRefused(refused.reason) from refused
    return MailTaken(
        message_id=taken.message_id,
        kind=taken.kind.value,
        interaction_id=taken.interaction_id,
        duplicate=taken.duplicate,
        opened=taken.opened,
        linked_to=taken.linked_to,
    )


async def _body(request: Request, limit: int) -> bytes:
    """The body, read no further than the limit (a larger one is refused, not buffered)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise MailTooLarge(f"message too large: the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MailTooLarge(f"message too large: the limit is {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _address(session: Session, address_id: uuid.UUID) -> EmailAddress:
    address = await session.get(EmailAddress, address_id)
    if address is None:
        raise NotFound(f"no support address with id {address_id}")
    return address


async def _ensure_queue(session: Session, queue_id: uuid.UUID) -> None:
    if await session.get(Queue, queue_id) is None:
        raise InvalidField("queue_id", f"no queue with id {queue_id}")

"""The outbox over HTTP: what the center sent or is sending to the outside, and why not.

Staff read it (a bridge request that never reached the gateway, a reply the relay refused); an
admin sends a failed or dead message again once its cause is fixed. The outbox itself is core's
(app/core/outbox.py); this is its window.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.auth.dependencies import Admin, Session, Staff
from app.core import outbox
from app.core.inputs import REFUSES_NUL
from app.core.outbox import (
    KIND_LENGTH,
    SENDER_LENGTH,
    SUBJECT_ID_LENGTH,
    SUBJECT_TYPE_LENGTH,
    OutboxFilter,
    OutboxState,
)
from app.core.pagination import Page, Pagination

router = APIRouter(prefix="/v1/outbox", tags=["outbox"])


class OutboxMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str = Field(
        description="The request's shape: `http`, or `mail` (a message and its envelope)"
    )
    sender: str = Field(description="The configured sender that delivers it (`twilio`, `smtp`)")
    request: dict[str, Any] = Field(description="What is sent, with no credentials in it")
    dedupe_key: str = Field(description="The decision it stands for: written once per key")
    subject_type: str
    subject_id: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime | None = Field(
        description="When it is tried next (while `sending`: when its claim lapses)"
    )
    last_attempt_at: datetime | None
    last_status: int | None = Field(
        description="The last answer's status: HTTP's, or the relay's SMTP reply code (550)"
    )
    last_error: str | None = Field(
        description="Why the last attempt failed; when sent, what was not taken (recipients a"
        " relay refused)"
    )
    created_at: datetime
    sent_at: datetime | None


@router.get("", summary="Messages to the outside, newest first, by state, kind or subject")
async def list_outbox(
    _: Staff,
    session: Session,
    page: Pagination,
    state: Annotated[OutboxState | None, Query()] = None,
    kind: Annotated[
        str | None, Query(max_length=KIND_LENGTH, examples=["http"]), REFUSES_NUL
    ] = None,
    sender: Annotated[
        str | None, Query(max_length=SENDER_LENGTH, examples=["twilio"]), REFUSES_NUL
    ] = None,
    subject_type: Annotated[
        str | None, Query(max_length=SUBJECT_TYPE_LENGTH, examples=["interaction"]), REFUSES_NUL
    ] = None,
    subject_id: Annotated[str | None, Query(max_length=SUBJECT_ID_LENGTH), REFUSES_NUL] = None,
) -> Page[OutboxMessageOut]:
    where = OutboxFilter(
        state=state, kind=kind, sender=sender, subject_type=subject_type, subject_id=subject_id
    )
    messages, total = await outbox.list_messages(
        session, where, limit=page.limit, offset=page.offset
    )
    items = [OutboxMessageOut.model_validate(message) for message in messages]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{message_id}", summary="One message to the outside, with its last error")
async def get_outbox_message(_: Staff, session: Session, message_id: uuid.UUID) -> OutboxMessageOut:
    return OutboxMessageOut.model_validate(await outbox.get_message(session, message_id))


@router.post(
    "/{message_id}/retry",
    summary="Send a failed or dead message again, now, with a full round of attempts",
    responses={409: {"description": "The message is pending, being sent, or sent"}},
)
async def retry_outbox_message(
    principal: Admin, session: Session, message_id: uuid.UUID
) -> OutboxMessageOut:
    message = await outbox.retry(session, message_id, actor=principal.actor)
    return OutboxMessageOut.model_validate(message)

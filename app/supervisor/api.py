from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.auth.dependencies import Session, Staff
from app.core.events import Event
from app.core.inputs import BIGINT_MAX, REFUSES_NUL

router = APIRouter(prefix="/v1", tags=["events"])


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    kind: str
    subject_type: str
    subject_id: str
    actor: str
    payload: dict[str, Any]


class EventPage(BaseModel):
    """A page of the log read with a cursor, not an offset: the log only grows, and a client
    polls it from the last id it handled, so a count of everything it holds would cost a scan
    and tell that client nothing."""

    items: list[EventOut]
    after: int = Field(description="The cursor as asked: these events have larger ids")
    limit: int
    next_after: int = Field(
        description="The `after` of the next read: the last item's id, or `after` when none"
    )
    has_more: bool = Field(
        description="More events matched past this page: read again at once rather than wait"
    )


@router.get("/events", summary="The event log: every change, oldest first after a given id")
async def list_events(
    _: Staff,
    session: Session,
    after: Annotated[
        int, Query(ge=0, le=BIGINT_MAX, description="Return events with a larger id")
    ] = 0,
    kind: Annotated[
        str | None, Query(max_length=64, examples=["customer.created"]), REFUSES_NUL
    ] = None,
    subject_type: Annotated[str | None, Query(max_length=32), REFUSES_NUL] = None,
    subject_id: Annotated[str | None, Query(max_length=64), REFUSES_NUL] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page")] = 100,
) -> EventPage:
    query = select(Event).where(Event.id > after)
    if kind is not None:
        query = query.where(Event.kind == kind)
    if subject_type is not None:
        query = query.where(Event.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(Event.subject_id == subject_id)
    # One row past the page says whether another read would find more, without a count.
    rows = list((await session.execute(query.order_by(Event.id).limit(limit + 1))).scalars())
    items = [EventOut.model_validate(event) for event in rows[:limit]]
    return EventPage(
        items=items,
        after=after,
        limit=limit,
        next_after=items[-1].id if items else after,
        has_more=len(rows) > limit,
    )

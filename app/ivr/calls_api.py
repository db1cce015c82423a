"""The call records, for staff: every call a gateway told us of, how far it got and how it ended.

A call that ended inside the IVR never became an interaction: this is where it is seen, with
its path and outcome (containment: docs/metrics.md). A call that reached a queue names its
interaction.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Select, func, select

from app.auth.dependencies import Session, Staff
from app.core.errors import NotFound
from app.core.pagination import Page, Pagination
from app.ivr.models import Call, CallOutcome, CallPhase, Gateway

router = APIRouter(prefix="/v1/voice", tags=["voice: call records"])


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    gateway: Gateway
    call_ref: str = Field(description="The gateway's id of the call (Twilio's CallSid)")
    caller: str = Field(description="Who called, as the gateway wrote it")
    calling_number: str | None = Field(description="The caller's number in E.164, if readable")
    dialled: str
    customer_id: uuid.UUID | None
    flow_id: uuid.UUID
    flow_version: int = Field(description="The flow version the call ran on, start to end")
    phase: CallPhase
    outcome: CallOutcome | None = Field(description="How it ended, once it has")
    end_cause: str | None
    learned: dict[str, Any] | None = Field(description="What the IVR learned (docs/ivr.md)")
    interaction_id: uuid.UUID | None = Field(description="Its interaction, once it reached a queue")
    agent_id: uuid.UUID | None = Field(description="The agent its caller was connected to")
    started_at: datetime
    ended_at: datetime | None


class UnknownCallRecord(NotFound):
    code = "not_found"


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # an offset that takes year 1 or 9999 past the calendar's edge
        raise ValueError("a moment between the years 1 and 9999, in UTC") from None


# A moment with its offset (ISO 8601): "2026-12-05T09:00:00+08:00".
Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]


@router.get("/calls", summary="Call records, newest first")
async def list_calls(
    _: Staff,
    session: Session,
    page: Pagination,
    outcome: CallOutcome | None = None,
    phase: CallPhase | None = None,
    since: Annotated[Moment | None, Query(description="Started at or after")] = None,
    until: Annotated[Moment | None, Query(description="Started before")] = None,
) -> Page[CallOut]:
    query: Select[Any] = select(Call)
    if outcome is not None:
        query = query.where(Call.outcome == outcome)
    if phase is not None:
        query = query.where(Call.phase == phase)
    if since is not None:
        query = query.where(Call.started_at >= since)
    if until is not None:
        query = query.where(Call.started_at < until)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    found = await session.scalars(
        query.order_by(Call.started_at.desc(), Call.id).limit(page.limit).offset(page.offset)
    )
    items = [CallOut.model_validate(call) for call in found]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.get("/calls/{call_id}", summary="One call record")
async def get_call(call_id: uuid.UUID, _: Staff, session: Session) -> CallOut:
    call = await session.get(Call, call_id)
    if call is None:
        raise UnknownCallRecord(f"no call with id {call_id}")
    return CallOut.model_validate(call)

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, status

from app.auth.dependencies import Admin, AnyUser, Session
from app.core.pagination import Page, Pagination
from app.queues import service
from app.queues.schemas import QueueCreate, QueueOut, QueueStatusOut, QueueUpdate

router = APIRouter(prefix="/v1/queues", tags=["queues"])


@router.get("", summary="List queues")
async def list_queues(_: AnyUser, session: Session, page: Pagination) -> Page[QueueOut]:
    queues, total = await service.list_queues(session, limit=page.limit, offset=page.offset)
    return Page(items=queues, total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a queue")
async def create_queue(body: QueueCreate, principal: Admin, session: Session) -> QueueOut:
    return await service.create_queue(session, body, actor=principal.actor)


@router.get("/{queue_id}", summary="One queue")
async def get_queue(queue_id: uuid.UUID, _: AnyUser, session: Session) -> QueueOut:
    return await service.get_queue_view(session, queue_id)


@router.get("/{queue_id}/status", summary="Open, closed or on a holiday now; the next opening")
async def get_queue_status(queue_id: uuid.UUID, _: AnyUser, session: Session) -> QueueStatusOut:
    return await service.get_queue_status(session, queue_id, datetime.now(UTC))


@router.patch("/{queue_id}", summary="Change a queue's settings or required skills")
async def update_queue(
    queue_id: uuid.UUID, body: QueueUpdate, principal: Admin, session: Session
) -> QueueOut:
    return await service.update_queue(session, queue_id, body, actor=principal.actor)


@router.delete(
    "/{queue_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a queue",
    responses={409: {"description": "The queue still has interactions"}},
)
async def delete_queue(queue_id: uuid.UUID, principal: Admin, session: Session) -> None:
    await service.delete_queue(session, queue_id, actor=principal.actor)

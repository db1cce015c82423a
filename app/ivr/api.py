"""The IVR's admin API: flows and their versions, dialled numbers, dry runs (docs/ivr.md).

Admins write; supervisors read. The gateways' webhooks are elsewhere: they read flows through
`service.flow_for_call` and `service.flow_version`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status

from app.auth.dependencies import Admin, Session, Staff
from app.core.inputs import INTEGER_MAX, REFUSES_NUL
from app.core.pagination import Page, Pagination
from app.ivr import numbers, service
from app.ivr.dry_run import Transcript, dry_run
from app.ivr.schemas import (
    DryRunIn,
    FlowCreate,
    FlowOut,
    FlowUpdate,
    FlowVersionCreate,
    FlowVersionOut,
    NumberMapping,
    NumberOut,
)

router = APIRouter(prefix="/v1/ivr", tags=["ivr"])

INVALID_FLOW: dict[int | str, dict[str, Any]] = {
    422: {"description": "The flow is not valid: `fields` names each node at fault"}
}
DialledNumber = Annotated[
    str,
    Path(max_length=32, description="A dialled number, E.164 best (+861012345678)"),
    REFUSES_NUL,
]
Version = Annotated[int, Path(ge=1, le=INTEGER_MAX)]


@router.get("/flows", summary="List IVR flows")
async def list_flows(_: Staff, session: Session, page: Pagination) -> Page[FlowOut]:
    flows, total = await service.list_flows(session, limit=page.limit, offset=page.offset)
    return Page(items=flows, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/flows",
    status_code=status.HTTP_201_CREATED,
    summary="Create a flow (its version 1)",
    responses=INVALID_FLOW,
)
async def create_flow(body: FlowCreate, principal: Admin, session: Session) -> FlowOut:
    return await service.create_flow(session, body, actor=principal.actor)


@router.get("/flows/{flow_id}", summary="One flow and its versions")
async def get_flow(flow_id: uuid.UUID, _: Staff, session: Session) -> FlowOut:
    return await service.get_flow_view(session, flow_id)


@router.patch("/flows/{flow_id}", summary="Rename a flow, or make it the default")
async def update_flow(
    flow_id: uuid.UUID, body: FlowUpdate, principal: Admin, session: Session
) -> FlowOut:
    return await service.update_flow(session, flow_id, body, actor=principal.actor)


@router.post(
    "/flows/{flow_id}/versions",
    status_code=status.HTTP_201_CREATED,
    summary="Save a new version of a flow",
    responses=INVALID_FLOW,
)
async def add_version(
    flow_id: uuid.UUID, body: FlowVersionCreate, principal: Admin, session: Session
) -> FlowVersionOut:
    return await service.add_version(session, flow_id, body, actor=principal.actor)


@router.get("/flows/{flow_id}/versions/{version}", summary="One version of a flow, its document")
async def get_version(
    flow_id: uuid.UUID, version: Version, _: Staff, session: Session
) -> FlowVersionOut:
    return await service.get_version(session, flow_id, version)


@router.post(
    "/flows/{flow_id}/versions/{version}/publish",
    summary="Publish a version (or roll back: publish an earlier one again)",
)
async def publish(
    flow_id: uuid.UUID, version: Version, principal: Admin, session: Session
) -> FlowVersionOut:
    """New calls get this version; the one published before is retired. Calls under way keep
    the version they started on."""
    return await service.publish(session, flow_id, version, actor=principal.actor)


@router.get("/numbers", summary="List dialled numbers and their flows")
async def list_numbers(_: Staff, session: Session, page: Pagination) -> Page[NumberOut]:
    found, total = await numbers.list_numbers(session, limit=page.limit, offset=page.offset)
    return Page(items=found, total=total, limit=page.limit, offset=page.offset)


@router.put("/numbers/{number}", summary="Give a dialled number a flow of its own")
async def map_number(
    number: DialledNumber,
    body: NumberMapping,
    principal: Admin,
    session: Session,
    request: Request,
) -> NumberOut:
    region = request.app.state.settings.default_phone_region
    return await numbers.map_number(
        session, number, body.flow_id, default_region=region, actor=principal.actor
    )


@router.delete(
    "/numbers/{number}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Take a number's own flow away (it gets the default flow)",
)
async def unmap_number(
    number: DialledNumber, principal: Admin, session: Session, request: Request
) -> None:
    region = request.app.state.settings.default_phone_region
    await numbers.unmap_number(session, number, default_region=region, actor=principal.actor)


@router.post(
    "/dry-run",
    summary="Run a flow with a caller's inputs, without a call",
    responses=INVALID_FLOW,
)
async def run_dry(body: DryRunIn, _: Admin, session: Session) -> Transcript:
    """What the caller would hear, the nodes the call goes through and where it ends, for a
    flow document (checked first, as on save) or a stored flow's version."""
    if body.document is not None:
        service.ensure_valid(body.document)
        flow = body.document
    else:
        assert body.flow_id is not None  # DryRunIn holds one or the other
        flow = await service.stored_flow(session, body.flow_id, body.version)
    return dry_run(flow, body.events(), body.facts)

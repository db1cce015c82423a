"""The IVR's admin API: dry runs of flows."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.dependencies import Admin
from app.ivr import service
from app.ivr.dry_run import Transcript, dry_run
from app.ivr.schemas import DryRunIn

router = APIRouter(prefix="/v1/ivr", tags=["ivr"])


@router.post(
    "/dry-run",
    summary="Run a flow with a caller's inputs, without a call",
    responses={422: {"description": "The flow is not valid (`fields` names each node at fault)"}},
)
async def run_dry(body: DryRunIn, _: Admin) -> Transcript:
    """What the caller would hear, the nodes the call goes through and where it ends. The
    flow is checked first, as on save."""
    service.ensure_valid(body.document)
    return dry_run(body.document, body.events(), body.facts)

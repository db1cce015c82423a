from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.agents import service as agents
from app.auth.dependencies import (
    RAISE_WORK,
    AnyUser,
    Session,
    bearer_secret,
    hot_principal,
)
from app.auth.models import Role
from app.auth.principal import Principal
from app.core import pg
from app.core.channels import Channel
from app.core.inputs import REFUSES_NUL
from app.core.pagination import Page, Pagination
from app.core.settings import Settings
from app.interactions import service
from app.interactions.intake import Intake
from app.interactions.models import Interaction, InteractionState
from app.interactions.schemas import InteractionCreate, InteractionOut, InteractionReceived

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])


async def agent_id_of(principal: Principal, session: Session) -> uuid.UUID | None:
    if principal.has_role(Role.agent):
        return await agents.agent_id_for_user(session, principal.id)
    return None


# The request body as documented: the endpoint reads and validates it itself (below).
INTAKE_BODY: dict[str, Any] = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InteractionCreate"}}},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Queue an interaction from any channel (idempotent per channel reference)",
    response_class=Response,
    responses={
        201: {
            "model": InteractionReceived,
            "description": "Written: `offered` already when an agent was free (`offered_to` "
            "names the agent), else `queued`",
        },
        200: {
            "model": InteractionReceived,
            "description": "The same channel reference was delivered before, with the same "
            "request: what it became",
        },
        401: {"description": "No token or key, or one that is unknown, expired or revoked"},
        403: {"description": "Not a gateway key or an admin: agents and supervisors raise none"},
        409: {
            "description": "The same channel reference was delivered before with another "
            "queue, customer, priority, skills, subject or summary: each difference is named"
        },
        422: {"description": "The body is not valid: every problem is named in `fields`"},
    },
    openapi_extra={"requestBody": INTAKE_BODY, "security": [{"HTTPBearer": []}]},
)
async def create_interaction(request: Request) -> Response:
    """Every interaction of every channel comes in here, so it skips FastAPI's dependencies,
    body parsing and response validation, which cost more than the rest of the request
    (docs/benchmarks.md), and does the same itself: the caller first (401), then the body
    (422, the same field names and messages as FastAPI's, but an empty or malformed body is
    named by pydantic's JSON error, and the content type is not checked). The caller's token
    or key is checked by intake's look-up, in the same statement (a bad body checks it alone
    first, so an unknown caller still hears 401 before 422)."""
    state = request.app.state
    intake: Intake = state.intake
    secret = bearer_secret(request.headers.get("authorization"))  # none at all: 401 at once
    raw = await request.body()  # before a connection is taken: a slow upload holds none
    async with state.pg.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
        body = await _intake_body(raw, connection, secret, state.settings)
        # The one way in (app.interactions.intake); the caller is checked in its look-up's
        # round trip (one statement less per request).
        received = await intake.receive(body, secret=secret, connection=connection)
    return Response(
        received.interaction.model_dump_json(),
        status_code=status.HTTP_201_CREATED if received.created else status.HTTP_200_OK,
        media_type="application/json",
    )


async def _intake_body(
    raw: bytes, connection: asyncpg.Connection, secret: str, settings: Settings
) -> InteractionCreate:
    try:
        return InteractionCreate.model_validate_json(raw)
    except ValidationError as error:
        # An unknown caller hears 401 first, and one who may not raise work 403, as FastAPI's
        # dependencies answer before its body's 422.
        RAISE_WORK.check(await hot_principal(connection, secret, settings))
        # Located under "body", as FastAPI locates the errors of a body it validates.
        raise RequestValidationError(
            [{**problem, "loc": ("body", *problem["loc"])} for problem in error.errors()]
        ) from None


def document_intake_body(schema: dict[str, Any]) -> None:
    """Put InteractionCreate and the models it uses into an OpenAPI schema's components: the
    intake endpoint names it as its body without FastAPI seeing it as a parameter."""
    body = InteractionCreate.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in body.pop("$defs", {}).items():
        components.setdefault(name, model)
    components["InteractionCreate"] = body


@router.get("", summary="List interactions (agents see only their own)")
async def list_interactions(
    principal: AnyUser,
    session: Session,
    page: Pagination,
    state: Annotated[InteractionState | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    queue_id: Annotated[uuid.UUID | None, Query()] = None,
    customer_id: Annotated[uuid.UUID | None, Query()] = None,
    agent_id: Annotated[uuid.UUID | None, Query()] = None,
    external_ref: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=255,
            description="The channel's own id (call id, Message-ID): with `channel`, one at most",
        ),
        REFUSES_NUL,
    ] = None,
) -> Page[InteractionOut]:
    own = await agent_id_of(principal, session)
    if own is not None:
        agent_id = own
    where = service.InteractionFilter(
        state=state,
        channel=channel,
        queue_id=queue_id,
        customer_id=customer_id,
        agent_id=agent_id,
        external_ref=external_ref,
    )
    items, total = await service.list_interactions(
        session, where, limit=page.limit, offset=page.offset
    )
    return Page(
        items=[InteractionOut.model_validate(i) for i in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def visible(principal: Principal, session: Session, interaction: Interaction) -> None:
    own = await agent_id_of(principal, session)
    if own is not None:
        service.ensure_assigned_to(interaction, own)


@router.get("/{interaction_id}", summary="One interaction")
async def get_interaction(
    interaction_id: uuid.UUID, principal: AnyUser, session: Session
) -> InteractionOut:
    interaction = await service.get_interaction(session, interaction_id)
    await visible(principal, session, interaction)
    return InteractionOut.model_validate(interaction)

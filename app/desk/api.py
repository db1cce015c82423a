"""The agent's desk socket, and the one-use ticket that opens it (docs/agent-protocol.md)."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket, status
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State

from app.agents import service as agents
from app.auth import service as auth
from app.auth.dependencies import DeskAgent, Session
from app.auth.models import Role
from app.auth.principal import Principal
from app.auth.schemas import SocketTicketOut
from app.core.db import unit_of_work
from app.core.errors import NotFound
from app.core.inputs import REFUSES_NUL
from app.core.logging import get_logger
from app.core.socket_session import BAD_TICKET, DATABASE_BUSY, CloseCode, Closing
from app.desk.connection import AgentConnection

log = get_logger(__name__)
router = APIRouter()

# Every refusal is a close code with its reason, sent right after the handshake rather than a
# refused handshake: a browser's websocket never sees a refused handshake's status, but it does
# see a close code and its reason.
NO_CREDENTIALS = Closing(CloseCode.REFUSED, "a ticket is needed: POST /v1/desk/tickets")
NOT_AN_AGENT = Closing(CloseCode.REFUSED, "an agent's token is needed")


@router.post(
    "/v1/desk/tickets",
    tags=["desk"],
    status_code=status.HTTP_201_CREATED,
    summary="A one-use ticket to open the agent's desk socket (valid for seconds)",
)
async def desk_ticket(principal: DeskAgent, session: Session, request: Request) -> SocketTicketOut:
    """Open `/v1/desk/ws?ticket=<ticket>` with it before it expires; it opens one socket.
    The login token itself then never travels in a URL, where logs and proxies keep it."""
    ticket, expires_at = await auth.issue_socket_ticket(
        session, principal.id, request.app.state.settings
    )
    return SocketTicketOut(ticket=ticket, expires_at=expires_at)


@router.websocket("/v1/desk/ws")
async def agent_desk(
    websocket: WebSocket,
    ticket: Annotated[
        str | None, Query(description="A one-use ticket from POST /v1/desk/tickets"), REFUSES_NUL
    ] = None,
    token: Annotated[
        str | None,
        Query(description="Deprecated: the agent's login token; use a ticket", deprecated=True),
        REFUSES_NUL,
    ] = None,
) -> None:
    """The agent's desk: offers with screen pop in, decisions out (docs/agent-protocol.md)."""
    state = websocket.app.state
    try:
        opening = await _who_opens(state, ticket, token)
    except (SQLAlchemyError, OSError, TimeoutError):
        opening = DATABASE_BUSY
    await websocket.accept()
    if isinstance(opening, Closing):
        await websocket.close(code=opening.code, reason=opening.reason)
        return
    principal, agent_id = opening
    connection = AgentConnection(
        websocket,
        agent_id=agent_id,
        actor=principal.actor,
        sessions=state.sessions,
        pool=state.pg,
        hub=state.hub,
        wake_matcher=state.matcher.wake_if_waiting,
        presence=state.presence,
        heartbeat_seconds=state.settings.heartbeat_seconds,
        lease=state.lease,
        open_desks=state.open_desks,
        replies=state.desk_replies,
        outbox=state.outbox,
        # Complaints tell their customer through the channels (main hands them over); raising
        # one sends no answer link, so the configured base serves.
        notices=state.customer_notices,
        link_base=state.settings.public_base_url or "",
    )
    await connection.serve()


async def _who_opens(
    state: State, ticket: str | None, token: str | None
) -> tuple[Principal, uuid.UUID] | Closing:
    """The agent a ticket (or, deprecated, a token) opens the desk for, or why not. A ticket
    is spent here, committed before the socket is served."""
    if ticket is None and token is None:
        return NO_CREDENTIALS
    async with unit_of_work(state.sessions) as session:
        if ticket is not None:
            principal = await auth.redeem_socket_ticket(session, ticket, state.settings)
            refused = BAD_TICKET
        else:
            assert token is not None
            _note_a_token_in_a_url()
            principal = await auth.principal_for_secret(session, token, state.settings)
            refused = NOT_AN_AGENT
        if principal is None or not principal.has_role(Role.agent):
            return refused
        try:
            return principal, await agents.agent_id_for_user(session, principal.id)
        except NotFound:
            return refused


@functools.cache
def _note_a_token_in_a_url() -> None:
    """Once per process: operators learn that some console still opens desks the old way."""
    log.warning(
        "a desk was opened with a login token in its URL, which is deprecated and goes in the"
        " next release: consoles should ask POST /v1/desk/tickets and open the desk with the"
        " ticket instead"
    )

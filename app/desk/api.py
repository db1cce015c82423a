from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket

from app.agents import service as agents
from app.auth import service as auth
from app.auth.models import Role
from app.core.errors import NotFound
from app.core.inputs import REFUSES_NUL
from app.core.socket_session import CloseCode
from app.desk.connection import AgentConnection

router = APIRouter()


@router.websocket("/v1/desk/ws")
async def agent_desk(
    websocket: WebSocket,
    token: Annotated[str, Query(description="The agent's login token"), REFUSES_NUL],
) -> None:
    """The agent's desk: offers with screen pop in, decisions out (docs/agent-protocol.md)."""
    state = websocket.app.state
    async with state.sessions() as session:
        principal = await auth.principal_for_secret(session, token, state.settings)
        agent_id = None
        if principal is not None and principal.has_role(Role.agent):
            try:
                agent_id = await agents.agent_id_for_user(session, principal.id)
            except NotFound:
                agent_id = None
    await websocket.accept()
    if principal is None or agent_id is None:
        # Refused after the handshake, not at it: a browser's websocket never sees a refused
        # handshake's status, but it does see a close code and its reason.
        await websocket.close(code=CloseCode.REFUSED, reason="an agent's token is needed")
        return
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
    )
    await connection.serve()

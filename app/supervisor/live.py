"""The supervisor's live socket, and the one-use ticket that opens it (docs/supervisors.md,
"The live socket").

Opened like the agent's desk: a ticket from `POST /v1/supervisor/tickets` (auth's one-use
tickets, the desk's own machinery), the client's hello, then a snapshot of the board (or, on a
resume, only what changed since the event id the hello names), the ready frame, and the
board's frames as they come (app/supervisor/board.py). Core's socket session carries them: a
supervisor that does not read fills its own session's queue and is closed, alone.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket, status
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import State

from app.auth import service as auth
from app.auth.dependencies import STAFF, Session, Staff
from app.auth.principal import Principal
from app.auth.schemas import SocketTicketOut
from app.core import socket_session
from app.core.db import unit_of_work
from app.core.hub import EventRecord, Subscription
from app.core.inputs import REFUSES_NUL
from app.core.pg import Reader
from app.core.socket_session import (
    BAD_TICKET,
    DATABASE_BUSY,
    CloseCode,
    Closing,
    Heartbeat,
    Replay,
    SocketSession,
)
from app.supervisor.board import LiveBoard
from app.supervisor.views import Hello, ReadyFrame, SupervisorFrame

router = APIRouter()

NO_TICKET = Closing(CloseCode.REFUSED, "a ticket is needed: POST /v1/supervisor/tickets")
NOT_STAFF = Closing(CloseCode.REFUSED, "only a supervisor or an admin watches the floor")
TICKET_LENGTH = 128  # far above a ticket's length (ccs_ and 43 characters)

Live = SocketSession[SupervisorFrame]


@router.post(
    "/v1/supervisor/tickets",
    tags=["supervisor"],
    status_code=status.HTTP_201_CREATED,
    summary="A one-use ticket to open the supervisor's live socket (valid for seconds)",
)
async def supervisor_ticket(
    principal: Staff, session: Session, request: Request
) -> SocketTicketOut:
    """Open `/v1/supervisor/ws?ticket=<ticket>` with it before it expires; it opens one socket.
    The login token itself then never travels in a URL, where logs and proxies keep it."""
    ticket, expires_at = await auth.issue_socket_ticket(
        session, principal.id, request.app.state.settings
    )
    return SocketTicketOut(ticket=ticket, expires_at=expires_at)


@router.websocket("/v1/supervisor/ws")
async def live_floor(
    websocket: WebSocket,
    ticket: Annotated[
        str | None,
        Query(
            max_length=TICKET_LENGTH, description="A one-use ticket: POST /v1/supervisor/tickets"
        ),
        REFUSES_NUL,
    ] = None,
) -> None:
    """Queues, agents and late complaints, live (docs/supervisors.md, "The live socket")."""
    state = websocket.app.state
    try:
        opening = await _who_opens(state, ticket)
    except (SQLAlchemyError, OSError, TimeoutError):
        opening = DATABASE_BUSY
    # Refusals are close codes after the handshake: a browser never sees a refused handshake's
    # status, but it does see a close code and its reason.
    await websocket.accept()
    if isinstance(opening, Closing):
        await websocket.close(code=opening.code, reason=opening.reason)
        return
    await watch(websocket, opening, state)


async def _who_opens(state: State, ticket: str | None) -> Principal | Closing:
    """The supervisor or admin a ticket opens the socket for, or why not (it is spent here)."""
    if ticket is None:
        return NO_TICKET
    async with unit_of_work(state.sessions) as session:
        principal = await auth.redeem_socket_ticket(session, ticket, state.settings)
    if principal is None:
        return BAD_TICKET
    return principal if STAFF.allows(principal) else NOT_STAFF


async def watch(websocket: WebSocket, principal: Principal, state: State) -> None:
    """One supervisor's socket: hello, catch-up, then the board's frames until it goes."""
    board: LiveBoard = state.live_board
    live: Live = SocketSession(
        websocket,
        hub=state.hub,
        # Nothing comes through the pump: the board sends, once per window, to every socket.
        # Never registered with the hub, so it costs the hub nothing.
        subscription=Subscription(wants=_nothing),
        pool=state.pg,
        frame_for=_no_frame,
        heartbeat=Heartbeat(every=state.settings.heartbeat_seconds),
        context={"supervisor": principal.name},
        # Unbounded here: the board holds each socket to a bound that grows with the floor.
        limits=dataclasses.replace(socket_session.LIMITS, queue=0),
    )
    async with live:
        hello = await live.hello(Hello)
        caught_up_to = board.generation
        await live.replay(_catch_up(live, board, hello.last_event_id), hello.last_event_id)
        board.join(live, caught_up_to)
        try:
            while True:
                await live.receive()  # a sign of life: the socket carries no actions
        finally:
            board.leave(live)


def _catch_up(live: Live, board: LiveBoard, after: int | None) -> Replay[SupervisorFrame]:
    """What the client is sent before ready: only what changed since `after` when the board
    can tell, else a snapshot. Both from the board's memory: no read per socket."""
    caught_up: list[int] = [board.event_id]

    async def missed(_connection: object, _after: int) -> list[EventRecord]:
        return []  # the board's views stand for the events: none is replayed one by one

    async def holds(_connection: object) -> list[SupervisorFrame]:
        await board.settled()
        caught_up[0] = board.event_id
        changes = None if after is None else board.changes_since(after)
        if changes is None:
            return [board.snapshot()]
        return list(changes)

    def ready(_last_event_id: int) -> SupervisorFrame:
        return ReadyFrame(event_id=caught_up[0], heartbeat_seconds=live.heartbeat.every)

    return Replay(missed=missed, holds=holds, ready=ready)


def _nothing(_event: EventRecord) -> bool:
    return False


async def _no_frame(_db: Reader, _event: EventRecord) -> SupervisorFrame | None:
    return None

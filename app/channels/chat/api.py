"""The customer's chat socket over HTTP's upgrade: `/v1/chat/ws?site=<site id>`, opened from a
page of one of the site's origins (docs/chat-protocol.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket
from starlette.datastructures import State

from app.channels.chat.sites import Site, read_site
from app.channels.chat.socket import ChatConnection
from app.core import pg
from app.core.instruments import SocketKind, connected
from app.core.socket_session import DATABASE_BUSY, CloseCode, Closing

router = APIRouter(tags=["chat"])

UNKNOWN_SITE = Closing(CloseCode.REFUSED, "unknown site: check the widget's site id")
FOREIGN_ORIGIN = Closing(CloseCode.REFUSED, "origin not allowed: add it to the site's origins")


@router.websocket("/v1/chat/ws")
async def customer_chat(
    websocket: WebSocket,
    site: Annotated[uuid.UUID, Query(description="The chat site's id (POST /v1/chat/sites)")],
) -> None:
    """A customer's chat: hello, then messages both ways (docs/chat-protocol.md)."""
    state = websocket.app.state
    opening = await _site_for(state, site, websocket.headers.get("origin"))
    await websocket.accept()
    if isinstance(opening, Closing):
        # Said with a close code: a browser never sees a refused handshake's HTTP status.
        await websocket.close(code=opening.code, reason=opening.reason)
        return
    connection = ChatConnection(
        websocket,
        site=opening,
        rooms=state.chats,
        after_hours=state.chat_after_hours,
        pool=state.pg,
        hub=state.hub,
    )
    with connected(SocketKind.chat):
        await connection.serve()


async def _site_for(state: State, site_id: uuid.UUID, origin: str | None) -> Site | Closing:
    try:
        async with state.pg.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            site = await read_site(connection, site_id)
    except (OSError, TimeoutError):
        return DATABASE_BUSY
    if site is None:
        return UNKNOWN_SITE
    if not site.allows(origin):
        return FOREIGN_ORIGIN
    return site

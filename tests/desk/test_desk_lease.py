"""A replica that finds its own lease lapsed (a long pause, a lost connection) closes its desks
with 1012, so that they reconnect rather than look available while nothing reaches them."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
import websockets

from app.core.hub import asyncpg_dsn
from app.core.socket_session import CloseCode
from tests.desk.conftest import Center


async def _desk_lease(connection: asyncpg.Connection) -> uuid.UUID:
    lease: uuid.UUID = await connection.fetchval(
        "SELECT p.replica_id FROM agent_presence p JOIN agents a ON a.id = p.agent_id"
        " JOIN users u ON u.id = a.user_id WHERE u.username = 'mei'"
    )
    return lease


async def _until_closed(socket: websockets.ClientConnection) -> None:
    async with asyncio.timeout(10):
        while True:
            await socket.recv()


async def test_a_replica_whose_lease_lapsed_closes_its_desks_and_they_come_back_under_a_new_one(
    center: Center, database_url: str
) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        held = await _desk_lease(connection)
        # The replica paused past its lease: the others saw it lapse.
        await connection.execute(
            "UPDATE replicas SET lease_until = clock_timestamp() WHERE id = $1", held
        )

        with pytest.raises(websockets.ConnectionClosed) as closed:
            await _until_closed(desk.socket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.SERVICE_RESTART

        again = await center.available(mei)
        renewed = await _desk_lease(connection)
        assert renewed != held
        live = await connection.fetchval(
            "SELECT lease_until > clock_timestamp() FROM replicas WHERE id = $1", renewed
        )
        assert live
        call = await center.call()
        offer = await again.next("offer")
        assert offer["interaction_id"] == call["id"]
    finally:
        await connection.close()

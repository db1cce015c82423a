"""Web chat over real sockets: the app served on a loopback port in the test's loop, customers
on the `websockets` client with their page's Origin, agents on real desks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from pydantic import TypeAdapter

from app.channels.chat import protocol
from app.channels.chat.sites import identity_signature
from tests.channels.email.conftest import open_desk
from tests.desk.conftest import Desk
from tests.support import login, served_in_loop

Headers = dict[str, str]
PASSWORD = "correct horse battery"
SECRET = "a" * 64
chat_frame = TypeAdapter[protocol.ChatFrame](protocol.ChatFrame)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a loopback port, in the test's loop: one replica, whose matcher leads."""
    async with served_in_loop(app) as base_url:
        yield base_url


@dataclass
class Customer:
    """A customer's chat socket, with every frame it received kept in order."""

    socket: websockets.ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **message: Any) -> None:
        await self.socket.send(json.dumps(message))

    async def next(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        """The next frame of `kind`, skipping others (kept in `frames`); every frame must be
        one of the protocol's."""
        async with asyncio.timeout(within):
            while True:
                raw = await self.socket.recv()
                chat_frame.validate_json(raw)
                frame: dict[str, Any] = json.loads(raw)
                self.frames.append(frame)
                if frame["type"] == kind:
                    return frame

    async def seen(self, kind: str, within: float = 10.0, **fields: Any) -> dict[str, Any]:
        """A frame of `kind` with these fields, received already or coming."""
        async with asyncio.timeout(within):
            checked = 0
            while True:
                for frame in self.frames[checked:]:
                    if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                        return frame
                checked = len(self.frames)
                await self.next(kind, within)

    async def closed(self, within: float = 10.0) -> tuple[int | None, str]:
        """The code and reason the server closed the socket with."""
        async with asyncio.timeout(within):
            try:
                while True:
                    self.frames.append(json.loads(await self.socket.recv()))
            except websockets.ConnectionClosed as closed:
                received = closed.rcvd
                return (None, "") if received is None else (received.code, received.reason)


@dataclass
class Site:
    """A chat site on the `webchat` queue, whose page origin is the served app's."""

    id: uuid.UUID
    queue_id: uuid.UUID
    name: str
    origin: str
    ws_url: str

    async def customer(
        self,
        *,
        token: str | None = None,
        identity: str | None = None,
        signature: str | None = None,
        name: str = "Li Wei",
        origin: str | None = None,
    ) -> tuple[Customer, dict[str, Any]]:
        """A customer's socket past its hello: the socket and the welcome."""
        customer = await self.connect(origin=origin)
        signed = None
        if identity is not None:
            signed = {
                "customer": identity,
                "signature": signature or identity_signature(SECRET, identity),
            }
        await customer.send(type="hello", visitor_token=token, identity=signed, name=name)
        return customer, await customer.next("welcome")

    async def connect(self, *, origin: str | None = None) -> Customer:
        socket = await websockets.connect(
            f"{self.ws_url}/v1/chat/ws?site={self.id}",
            origin=websockets.Origin(origin or self.origin),
        )
        return Customer(socket)


async def make_site(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    **settings: Any,
) -> Site:
    queue = await client.post(
        "/v1/queues", json={"name": "webchat", "wrap_up_seconds": 0}, headers=admin
    )
    assert queue.status_code == 201, queue.text
    queue_id = uuid.UUID(queue.json()["id"])
    site_id = uuid.uuid4()
    columns = {
        "resume_seconds": 120,
        "quiet_close_seconds": 600,
        "messages_per_minute": 20,
        "chats_per_minute": 3,
        **settings,
    }
    async with app.state.pg.acquire() as connection:
        await connection.execute(
            "INSERT INTO chat_sites (id, name, queue_id, identity_secret, allowed_origins,"
            " resume_seconds, quiet_close_seconds, messages_per_minute, chats_per_minute)"
            " VALUES ($1, 'shop', $2, $3, $4::text::jsonb, $5, $6, $7, $8)",
            site_id,
            queue_id,
            SECRET,
            json.dumps([served]),
            *columns.values(),
        )
    return Site(site_id, queue_id, "shop", served, served.replace("http://", "ws://"))


@pytest.fixture
async def site(app: FastAPI, client: httpx.AsyncClient, admin: Headers, served: str) -> Site:
    return await make_site(app, client, admin, served)


async def chat_agent(
    client: httpx.AsyncClient, admin: Headers, served: str, name: str, *, chats: int = 3
) -> tuple[Headers, Desk]:
    """An agent who takes chats, with a desk open on the served app and available."""
    body = {
        "username": name,
        "display_name": name.title(),
        "password": PASSWORD,
        "capacity": {"chat": chats, "voice": 0, "email": 0},
    }
    made = await client.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    headers = await login(client, name, PASSWORD)
    desk = await open_desk(client, served, headers)
    await desk.send(type="set_state", state="available")
    assert (await desk.next("ack"))["of"] == "set_state"
    return headers, desk

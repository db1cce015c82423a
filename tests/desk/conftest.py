"""A live server, an admin, a skill, a queue and logged-in agents with desk sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from app.auth.models import Role
from app.desk.protocol import desk_frame
from tests.support import LiveServer, create_user_directly, login


@dataclass
class Desk:
    """An agent's websocket, with every frame it received kept in order."""

    socket: websockets.ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, **message: Any) -> None:
        await self.socket.send(json.dumps(message))

    async def next(self, kind: str, within: float = 10.0) -> dict[str, Any]:
        """The next frame of `kind`, skipping others (they stay in `frames`). Every frame must
        be one of the protocol's (`DeskFrame`)."""
        async with asyncio.timeout(within):
            while True:
                raw = await self.socket.recv()
                desk_frame.validate_json(raw)
                frame: dict[str, Any] = json.loads(raw)
                self.frames.append(frame)
                if frame["type"] == kind:
                    return frame


@dataclass
class Center:
    http: httpx.AsyncClient
    admin: dict[str, str]
    ws_url: str
    app: FastAPI

    async def agent(self, username: str, **skills: int) -> dict[str, str]:
        body = {
            "username": username,
            "display_name": username.title(),
            "password": "correct horse battery",
            "skills": [{"skill": s, "level": lvl} for s, lvl in skills.items()],
        }
        response = await self.http.post("/v1/agents", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return await login(self.http, username, "correct horse battery")

    async def ticket(self, headers: dict[str, str]) -> str:
        """A one-use ticket for the agent's desk socket."""
        response = await self.http.post("/v1/desk/tickets", headers=headers)
        assert response.status_code == 201, response.text
        ticket: str = response.json()["ticket"]
        return ticket

    async def desk(
        self,
        headers: dict[str, str],
        last_event_id: int | None = None,
        *,
        ws_url: str | None = None,
        **options: Any,
    ) -> Desk:
        """A desk past its hello and ready, opened with a ticket (on the server at `ws_url`,
        by default the live server); `options` go to `websockets.connect`."""
        ticket = await self.ticket(headers)
        url = f"{ws_url or self.ws_url}/v1/desk/ws?ticket={ticket}"
        desk = Desk(await websockets.connect(url, **options))
        await desk.send(type="hello", last_event_id=last_event_id)
        await desk.next("ready")
        return desk

    async def available(self, headers: dict[str, str]) -> Desk:
        desk = await self.desk(headers)
        await desk.send(type="set_state", state="available")
        await desk.next("ack")
        return desk

    async def call(self, **body: Any) -> dict[str, Any]:
        payload = {"channel": "voice", "queue": "billing", **body}
        if "customer_id" not in payload and "contact" not in payload:
            payload["contact"] = {"kind": "phone", "value": "+86 138 0013 8000"}
        response = await self.http.post("/v1/interactions", json=payload, headers=self.admin)
        assert response.status_code in (200, 201), response.text
        created: dict[str, Any] = response.json()
        return created


CenterFactory = Callable[..., Awaitable[Center]]


@pytest.fixture
async def center(app: FastAPI, live_server: LiveServer) -> AsyncIterator[Center]:
    async with center_at(app, live_server.base_url) as built:
        yield built


@contextlib.asynccontextmanager
async def center_at(app: FastAPI, base_url: str) -> AsyncIterator[Center]:
    """An admin, the skills billing and vip, and the queue billing, on the server at
    `base_url` (serving `app`'s database)."""
    await create_user_directly(app, "boss", Role.admin, "correct horse battery")
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        admin = await login(http, "boss", "correct horse battery")
        for skill in ("billing", "vip"):
            await http.post("/v1/skills", json={"name": skill}, headers=admin)
        queue = {
            "name": "billing",
            "offer_timeout_seconds": 5,
            "wrap_up_seconds": 0,
            "required_skills": [{"skill": "billing", "level": 2}],
        }
        assert (await http.post("/v1/queues", json=queue, headers=admin)).status_code == 201
        ws_url = base_url.replace("http://", "ws://")
        yield Center(http=http, admin=admin, ws_url=ws_url, app=app)

"""A live center with desks (tests/desk's), a supervisor who acts on it, and supervisors
watching it on their live sockets."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from app.auth.models import Role
from app.supervisor.views import supervisor_frame
from tests.desk.conftest import Center, center, center_at
from tests.desk.test_desk_protocol import desks_left
from tests.support import create_user_directly, login, served_in_loop

__all__ = [
    "Frame",
    "Supervisor",
    "Watch",
    "center",
    "center_here",
    "desks_left",
    "open_watch",
    "supervisor_headers",
]

Frame = dict[str, Any]
Headers = dict[str, str]


@dataclass
class Watch:
    """A supervisor's live socket, with every frame it received kept in order, each with the
    moment it arrived (time.monotonic)."""

    socket: websockets.ClientConnection
    frames: list[Frame] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)

    async def send(self, **message: Any) -> None:
        await self.socket.send(json.dumps(message))

    async def receive(self) -> Frame:
        """The next frame, which must be one of the protocol's."""
        raw = await self.socket.recv()
        supervisor_frame.validate_json(raw)
        frame: Frame = json.loads(raw)
        self.frames.append(frame)
        self.arrived.append(time.monotonic())
        return frame

    async def next(self, kind: str, within: float = 10.0) -> Frame:
        """The next frame of `kind`, skipping others (they stay in `frames`)."""
        return await self.until(lambda frame: frame["type"] == kind, within)

    async def until(self, wanted: Callable[[Frame], bool], within: float = 10.0) -> Frame:
        async with asyncio.timeout(within):
            while True:
                frame = await self.receive()
                if wanted(frame):
                    return frame

    def queue_frames(self, name: str) -> list[tuple[float, Frame]]:
        return [
            (at, frame)
            for at, frame in zip(self.arrived, self.frames, strict=True)
            if frame["type"] == "queue" and frame["queue"]["name"] == name
        ]


async def supervisor_headers(center: Center, username: str = "sue") -> dict[str, str]:
    await create_user_directly(center.app, username, Role.supervisor, "correct horse battery")
    return await login(center.http, username, "correct horse battery")


async def ticket(center: Center, headers: dict[str, str]) -> str:
    response = await center.http.post("/v1/supervisor/tickets", headers=headers)
    assert response.status_code == 201, response.text
    issued: str = response.json()["ticket"]
    return issued


async def open_watch(
    center: Center,
    headers: dict[str, str],
    last_event_id: int | None = None,
    **options: Any,
) -> Watch:
    """A supervisor's socket past its hello (the catch-up frames and ready are left to read);
    `options` go to `websockets.connect`."""
    url = f"{center.ws_url}/v1/supervisor/ws?ticket={await ticket(center, headers)}"
    watch = Watch(await websockets.connect(url, **options))
    await watch.send(type="hello", last_event_id=last_event_id)
    return watch


def queue_named(frame: Frame, name: str) -> Frame:
    """The queue of a snapshot by name."""
    return next(queue for queue in frame["queues"] if queue["name"] == name)


@pytest.fixture
async def center_here(app: FastAPI) -> AsyncIterator[Center]:
    """The desk tests' center on the test's own app, served in the test's loop: a test can
    watch its live board (`app.state.live_board`)."""
    async with served_in_loop(app) as base_url, center_at(app, base_url) as built:
        yield built


@dataclass
class Supervisor:
    center: Center
    headers: Headers
    user_id: str

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"

    async def post(self, path: str, **body: Any) -> httpx.Response:
        return await self.center.http.post(f"/v1/supervisor{path}", json=body, headers=self.headers)

    async def events(self, kind: str, subject_id: str) -> list[dict[str, Any]]:
        """The log's events of `kind` about `subject_id`, oldest first."""
        response = await self.center.http.get(
            "/v1/events", params={"kind": kind, "subject_id": subject_id}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def interaction(self, interaction_id: str) -> dict[str, Any]:
        response = await self.center.http.get(
            f"/v1/interactions/{interaction_id}", headers=self.headers
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def queue(self, name: str, **skills: int) -> str:
        """A new queue requiring `skills`: its id."""
        for skill in skills:
            await self.center.http.post(
                "/v1/skills", json={"name": skill}, headers=self.center.admin
            )
        body = {
            "name": name,
            "offer_timeout_seconds": 5,
            "wrap_up_seconds": 0,
            "required_skills": [{"skill": s, "level": lvl} for s, lvl in skills.items()],
        }
        response = await self.center.http.post("/v1/queues", json=body, headers=self.center.admin)
        assert response.status_code == 201, response.text
        queue_id: str = response.json()["id"]
        return queue_id


async def agent_id(live: Center, headers: Headers) -> str:
    """The id of the agent logged in with `headers`."""
    me = await live.http.get("/v1/agents/me", headers=headers)
    assert me.status_code == 200, me.text
    found: str = me.json()["id"]
    return found


@pytest.fixture
async def sue(center: Center) -> Supervisor:
    await create_user_directly(center.app, "sue", Role.supervisor, "correct horse battery")
    headers = await login(center.http, "sue", "correct horse battery")
    me = await center.http.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    return Supervisor(center, headers, me.json()["id"])


async def raised_on_billing(
    client: httpx.AsyncClient, admin: dict[str, str], customer: str
) -> uuid.UUID:
    """A call raised for `customer` on the billing queue over the API: its id."""
    body = {"channel": "voice", "queue": "billing", "customer_id": customer}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])

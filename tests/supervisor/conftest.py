"""A live server with the desk tests' center (a queue, agents with desks), and supervisors
watching it on their live sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from fastapi import FastAPI

from app.auth.models import Role
from app.supervisor.views import supervisor_frame
from tests.desk.conftest import Center, center, center_at
from tests.support import create_user_directly, login, served_in_loop

__all__ = ["Watch", "center", "center_here", "open_watch", "supervisor_headers"]

Frame = dict[str, Any]


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

"""Helpers the tests share."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from app.agents import service as agents
from app.agents.schemas import AgentCreate
from app.auth import service as users
from app.auth.models import Role
from app.auth.schemas import UserCreate
from app.core.db import unit_of_work
from app.core.events import SYSTEM_ACTOR
from app.core.hub import EventHub
from app.core.settings import Settings
from app.main import create_app


async def create_user_directly(app: FastAPI, username: str, role: Role, password: str) -> None:
    async with unit_of_work(app.state.sessions) as session:
        if role is Role.agent:
            body = AgentCreate(username=username, display_name=username, password=password)
            await agents.create_agent(session, body, actor=SYSTEM_ACTOR)
        else:
            user = UserCreate(
                username=username, display_name=username, role=role, password=password
            )
            await users.create_user(session, user, actor=SYSTEM_ACTOR)


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LiveServer:
    base_url: str

    @classmethod
    @contextlib.contextmanager
    def running(cls, settings: Settings, database_url: str) -> Iterator[LiveServer]:
        port = free_port()
        config = uvicorn.Config(
            create_app(settings, database_url), host="127.0.0.1", port=port, log_config=None
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        try:
            yield cls(base_url=f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=10)


Headers = dict[str, str]


def field_problems(response: httpx.Response) -> dict[str, str]:
    """A 422 body's fields, as {field: problem}."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["detail"]
    return {item["field"]: item["problem"] for item in body["fields"]}


async def create_skills(client: httpx.AsyncClient, admin: Headers, *names: str) -> None:
    for name in names:
        response = await client.post("/v1/skills", json={"name": name}, headers=admin)
        assert response.status_code == 201, response.text


class CountsReads(EventHub):
    """The real event hub, counting its reads of the log (finished ones)."""

    reads = 0

    async def _fetch(self) -> None:
        await super()._fetch()
        self.reads += 1


async def until_waiting_for_a_lock(observer: asyncpg.Connection, pid: int) -> None:
    """Returns once the session `pid` waits for a lock another session holds."""
    waiting = "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted"
    for _ in range(250):
        if await observer.fetchval(waiting, pid):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {pid} never waited for a lock")


def settings_with_passes_on_demand() -> Settings:
    """Test settings whose matcher's tick is an hour: a pass runs only when something wakes it,
    so no pass makes or times out an offer behind a test's back."""
    return Settings(
        environment="test",
        load_demo=False,
        default_phone_region="CN",
        password_hashing="fast",
        matcher_tick_seconds=3600,
    )

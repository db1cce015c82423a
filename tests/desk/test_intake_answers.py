"""`POST /v1/interactions` answers what is true when its write commits: with an agent free and
her desk connected, `offered`, naming her (`offered_to`), for a caller new to the center as
for one it knows.

One replica here: the test's own app serves the HTTP requests and the desk socket in the test's
event loop, so its matcher is the one that leads and the test can see what its directory has
read (an arrival is offered at once only against the agents it holds: app/routing/arrivals.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.auth.models import Role
from tests.desk.conftest import Center
from tests.support import create_user_directly, free_port, login

SILENCE = timedelta(seconds=15)


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan run already by the `app` fixture) on a loopback port."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        assert not serving.done(), "the test server stopped"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def center(app: FastAPI, served: str) -> AsyncIterator[Center]:
    await create_user_directly(app, "boss", Role.admin, "correct horse battery")
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        admin = await login(http, "boss", "correct horse battery")
        assert (await http.post("/v1/skills", json={"name": "billing"}, headers=admin)).is_success
        queue = {"name": "billing", "required_skills": [{"skill": "billing", "level": 2}]}
        assert (await http.post("/v1/queues", json=queue, headers=admin)).status_code == 201
        yield Center(http=http, admin=admin, ws_url=served.replace("http://", "ws://"), app=app)


async def _until_the_directory_holds(
    app: FastAPI, connection: asyncpg.Connection, agent: str
) -> None:
    """Until the leading matcher's directory holds the agent's row as it is now: what an
    arrival is weighed against (passes run every tick here; a wake asks for one at once)."""
    matcher, agent_id = app.state.matcher, uuid.UUID(agent)
    deadline = time.monotonic() + 10
    while True:
        matcher.wake()
        version = await connection.fetchval(
            "SELECT routing_version FROM agents WHERE id = $1", agent_id
        )
        view = matcher.arrival_view(
            await connection.fetchval("SELECT version FROM queues_settings_version")
        )
        if (
            view is not None
            and view.directory.version_read(agent_id) == version
            and agent_id in {kept.id for kept in view.directory.kept(SILENCE)}
        ):
            return
        assert time.monotonic() < deadline, "the matcher never read the agent"
        await asyncio.sleep(0.02)


async def test_a_new_caller_and_a_known_one_are_answered_offered_to_the_free_agent(
    center: Center, connection: asyncpg.Connection
) -> None:
    mei = await center.agent("mei", billing=4)
    mei_id = (await center.http.get("/v1/agents/me", headers=mei)).json()["id"]
    desk = await center.available(mei)
    known = {"name": "Ada", "chat_ids": ["ada-1"]}
    assert (await center.http.post("/v1/customers", json=known, headers=center.admin)).is_success
    # The matcher keeps the queues' settings it read with waiting work: until a pass has read
    # some since the queue was made, arrivals wait for a pass (whoever calls). Ada's first chat
    # is that work; its offer says a pass read it, and Mei.
    first = await center.call(channel="chat", contact={"kind": "chat", "value": "ada-1"})
    assert (await desk.next("offer"))["interaction_id"] == first["id"]

    await _until_the_directory_holds(center.app, connection, mei_id)
    new = await center.call(channel="chat", contact={"kind": "chat", "value": "visitor-1"})

    assert new["state"] == "offered"
    assert new["offered_to"] == mei_id
    assert new["agent_id"] is None  # she holds it once she accepts
    assert (await desk.next("offer"))["interaction_id"] == new["id"]

    await _until_the_directory_holds(center.app, connection, mei_id)
    again = await center.call(channel="chat", contact={"kind": "chat", "value": "ada-1"})

    assert (again["state"], again["offered_to"]) == ("offered", mei_id)
    assert (await desk.next("offer"))["interaction_id"] == again["id"]
    pending = await connection.fetch(
        "SELECT interaction_id::text, agent_id::text FROM offers WHERE state = 'pending'"
    )
    assert sorted(tuple(row) for row in pending) == sorted(
        (interaction["id"], mei_id) for interaction in (first, new, again)
    )

"""`POST /v1/interactions` answers what is true when its write commits: with an agent free and
her desk connected, `offered`, naming her (`offered_to`), for a caller new to the center as
for one it knows.

One replica here: the test's own app serves the HTTP requests and the desk socket in the test's
event loop, so its matcher is the one that leads and the test can see what its directory has
read (an arrival is offered at once only against the agents it holds: app/routing/arrivals.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from tests.desk.conftest import Center
from tests.support import create_user_directly, login, served_in_loop, until_the_directory_holds


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app (its lifespan run already by the `app` fixture) on a loopback port."""
    async with served_in_loop(app) as base_url:
        yield base_url


@pytest.fixture
async def center(app: FastAPI, served: str) -> AsyncIterator[Center]:
    await create_user_directly(app, "boss", Role.admin, "correct horse battery")
    async with httpx.AsyncClient(base_url=served, timeout=10) as http:
        admin = await login(http, "boss", "correct horse battery")
        assert (await http.post("/v1/skills", json={"name": "billing"}, headers=admin)).is_success
        queue = {"name": "billing", "required_skills": [{"skill": "billing", "level": 2}]}
        assert (await http.post("/v1/queues", json=queue, headers=admin)).status_code == 201
        yield Center(http=http, admin=admin, ws_url=served.replace("http://", "ws://"), app=app)


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

    await until_the_directory_holds(center.app, connection, mei_id)
    new = await center.call(channel="chat", contact={"kind": "chat", "value": "visitor-1"})

    assert new["state"] == "offered"
    assert new["offered_to"] == mei_id
    assert new["agent_id"] is None  # she holds it once she accepts
    assert (await desk.next("offer"))["interaction_id"] == new["id"]

    await until_the_directory_holds(center.app, connection, mei_id)
    again = await center.call(channel="chat", contact={"kind": "chat", "value": "ada-1"})

    assert (again["state"], again["offered_to"]) == ("offered", mei_id)
    assert (await desk.next("offer"))["interaction_id"] == again["id"]
    pending = await connection.fetch(
        "SELECT interaction_id::text, agent_id::text FROM offers WHERE state = 'pending'"
    )
    assert sorted(tuple(row) for row in pending) == sorted(
        (interaction["id"], mei_id) for interaction in (first, new, again)
    )

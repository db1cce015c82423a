"""Intake hands its `interaction.queued` event to its replica's hub: no read of the log for it."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app import main
from app.core.hub import EventRecord, asyncpg_dsn
from app.core.settings import Settings
from tests.support import CountsReads, until_the_hub_is_past_a_marker

Headers = dict[str, str]


@pytest.fixture
async def app(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FastAPI]:
    # The app's own hub, counting its reads; it does not poll, so only a NOTIFY wakes a read.
    monkeypatch.setattr(main, "EventHub", functools.partial(CountsReads, poll_interval=60))
    application = main.create_app(settings, database_url)
    async with application.router.lifespan_context(application):
        yield application


async def _settled(hub: CountsReads, database_url: str) -> int:
    """The reads once the setup's own events (written by the ORM, so read) are all in: a
    marker committed after them has been handed out, by a read after every one they asked."""
    await until_the_hub_is_past_a_marker(hub, asyncpg_dsn(database_url))
    return hub.reads


async def test_a_new_interaction_s_event_is_published_as_stored_and_costs_the_hub_no_read(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, database_url: str
) -> None:
    queue = await client.post("/v1/queues", json={"name": "Billing"}, headers=admin)
    assert queue.status_code == 201, queue.text
    customer = await client.post("/v1/customers", json={"name": "Ada"}, headers=admin)
    hub: CountsReads = app.state.hub
    heard = hub.subscribe(lambda event: event.kind == "interaction.queued")
    reads = await _settled(hub, database_url)

    body = {
        "channel": "chat",
        "queue": "billing",
        "customer_id": customer.json()["id"],
        "external_ref": "chat-7",
    }
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    published = heard.queue.get_nowait()  # there before the answer
    async with app.state.pg.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload FROM events"
            " WHERE subject_id = $1",
            response.json()["id"],
        )
    assert row is not None
    assert published == EventRecord(**row)  # every field, as the hub would have read it
    assert published.payload["external_ref"] == "chat-7"

    again = await client.post("/v1/interactions", json=body, headers=admin)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == response.json()["id"]
    # A marker committed after it is read: any event or NOTIFY the repeat made came first.
    await until_the_hub_is_past_a_marker(hub, asyncpg_dsn(database_url))
    assert hub.reads == reads + 1  # the marker's only: neither request's event cost a read
    assert heard.queue.empty(), "delivered once; a repeated reference writes no event"

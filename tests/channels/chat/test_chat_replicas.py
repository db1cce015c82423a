"""A chat whose customer's socket is on one replica and whose agent's desk is on another: every
line, the agent taking it, typing and receipts cross between them through PostgreSQL (events
through the hubs, signals by NOTIFY), as with several replicas behind a load balancer."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.settings import Settings
from app.main import create_app
from tests.channels.chat.conftest import Site, chat_agent
from tests.channels.chat.test_chat import say, taken
from tests.support import served_in_loop

Headers = dict[str, str]
pytestmark = pytest.mark.asyncio


@pytest.fixture
async def other_replica(settings: Settings, database_url: str) -> AsyncIterator[str]:
    """A second replica of the app on the same database, served on a port of its own."""
    second = create_app(settings, database_url)
    async with second.router.lifespan_context(second), served_in_loop(second) as base_url:
        yield base_url


async def test_a_chat_across_two_replicas_goes_both_ways(
    app: FastAPI,
    site: Site,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    other_replica: str,
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei")
    elsewhere = dataclasses.replace(site, ws_url=other_replica.replace("http://", "ws://"))
    customer, _ = await elsewhere.customer()

    await say(customer, "Hello from the other replica")
    chat_id = (await taken(desk))["interaction_id"]
    assert (await customer.next("agent_joined"))["agent"] == "Mei"

    await desk.send(type="typing", interaction_id=chat_id, active=True)
    assert (await customer.next("typing"))["active"] is True
    await desk.send(type="reply", interaction_id=chat_id, text="Hello from this one")
    line = await customer.next("message")
    assert line["text"] == "Hello from this one"
    receipt = await desk.next("receipt")
    assert receipt["message_ids"] == [line["message_id"]]

    await customer.send(type="typing", active=False)
    assert (await desk.next("typing"))["active"] is False
    second = await say(customer, "Thanks")
    update = await desk.next("interaction_update")
    assert (update["detail"]["message_id"], update["detail"]["text"]) == (
        second["message_id"],
        "Thanks",
    )

"""A pass reads the waiting work in the policy's own order of service, a page at a time, and
only as far as the free agents can take it: the highest effective priority is served first
however long the backlog, and a long backlog costs a pass what the free agents can take."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core import pg
from app.core.events import Events
from app.core.pg import now
from app.routing import policy, waiting
from app.routing.directory import AgentDirectory
from app.routing.offers import OfferWriter
from app.routing.passes import PassResult, run_pass
from app.routing.waiting import QueueBook
from tests.support import create_skills, present_desk

Headers = dict[str, str]
SILENCE = timedelta(seconds=15)
TIERS = ("platinum", "gold", "iron", "lead")


async def _queue(client: httpx.AsyncClient, admin: Headers, name: str, **rules: Any) -> None:
    body = {"name": name, "required_skills": [{"skill": name, "level": 1}], **rules}
    response = await client.post("/v1/queues", json=body, headers=admin)
    assert response.status_code == 201, response.text


async def _customer(client: httpx.AsyncClient, admin: Headers, tier: str, n: int) -> str:
    body = {"name": f"Customer {n}", "tier": tier, "chat_ids": [f"visitor-{n}"]}
    response = await client.post("/v1/customers", json=body, headers=admin)
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["id"]
    return customer_id


async def _waiting(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    *,
    queue: str,
    customer: str,
    priority: int = 0,
    waited: float = 0.0,
    channel: str = "chat",
) -> str:
    body = {"channel": channel, "queue": queue, "customer_id": customer, "priority": priority}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    interaction_id: str = response.json()["id"]
    await connection.execute(
        "UPDATE interactions SET waiting_since = waiting_since - $2::interval WHERE id = $1::uuid",
        interaction_id,
        timedelta(seconds=waited),
    )
    return interaction_id


async def _lin(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    capacity: dict[str, int] | None = None,
) -> None:
    """One agent with billing, room for one chat (or `capacity`), present and available."""
    body = {
        "username": "lin",
        "display_name": "Lin",
        "skills": [{"skill": "billing", "level": 3}],
        "capacity": capacity or {"voice": 0, "chat": 1, "email": 0},
    }
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    lin = response.json()["id"]
    await present_desk(connection, lin)


@pytest.fixture
async def by_hand(app: FastAPI, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The app's own matcher stopped: the test runs the passes."""
    await app.state.matcher.stop()
    connection = await pg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 3 and at most 9 a pass, so that a dozen waiting make a long backlog."""
    monkeypatch.setattr(waiting, "WAITING_PAGE", 3)
    monkeypatch.setattr(waiting, "WAITING_LIMIT", 9)


async def _pass(connection: asyncpg.Connection) -> PassResult:
    directory = AgentDirectory()
    return await run_pass(
        connection, Events(), directory, QueueBook(), OfferWriter(), silence=SILENCE
    )


async def _offered(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch("SELECT interaction_id::text AS id FROM offers")
    return [row["id"] for row in rows]


async def test_pages_come_in_the_policys_order_of_service(
    by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers, small_pages: None
) -> None:
    """Tier weights, aging and explicit priorities that differ by queue: the order the database
    pages in is the policy's, float for float."""
    await create_skills(client, admin, "billing", "sales")
    await _queue(client, admin, "billing", aging_factor=0.37)
    await _queue(
        client,
        admin,
        "sales",
        aging_factor=1.9,
        tier_weights={"platinum": 12.5, "gold": 7.25, "iron": 3, "lead": 0.1},
    )
    rng = random.Random(5)
    customers = [await _customer(client, admin, tier, n) for n, tier in enumerate(TIERS)]
    for _ in range(14):
        await _waiting(
            client,
            admin,
            by_hand,
            queue=rng.choice(("billing", "sales")),
            customer=rng.choice(customers),
            priority=rng.choice((0, 0, 3, 10)),
            waited=rng.choice((0.0, 1.5, 7.25, 30.0)),
        )
    moment = now()

    paged: list[uuid.UUID] = []
    rows = await waiting.page(by_hand, moment, None)
    while rows:
        paged.extend(row["id"] for row in rows)
        rows = await waiting.page(by_hand, moment, rows[-1])

    everything = await by_hand.fetch(waiting.WAITING, 1000, moment, None, None, None, 1000)
    needed = {row["queue_id"] for row in everything}
    queues = await QueueBook().settings(by_hand, everything[0]["queues_version"], needed)
    items = await waiting.waiting_items(by_hand, queues, everything)
    rules = {queue_id: queue.rules for queue_id, queue in queues.items()}
    assert paged == [item.id for _, item, _ in policy.in_line(items, rules, moment)]
    assert len(paged) == 14


async def test_the_highest_priority_is_served_first_behind_a_long_backlog(
    by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers, small_pages: None
) -> None:
    """A dozen older chats fill more than a pass reads; the platinum one asked last is the
    one offered, as the policy orders them over everything waiting."""
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing", aging_factor=0.01)
    lead = await _customer(client, admin, "lead", 1)
    platinum = await _customer(client, admin, "platinum", 2)
    for n in range(12):
        await _waiting(client, admin, by_hand, queue="billing", customer=lead, waited=60.0 + n)
    first = await _waiting(client, admin, by_hand, queue="billing", customer=platinum)
    await _lin(client, admin, by_hand)

    result = await _pass(by_hand)

    assert result.offers == 1
    assert await _offered(by_hand) == [first]


async def test_a_pass_reads_on_past_work_nobody_free_can_take(
    by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers, small_pages: None
) -> None:
    """Two pages of sales work ahead of it, which Lin cannot take: the billing chat on the
    third page is still offered in this pass (no pair is left that could be made)."""
    await create_skills(client, admin, "billing", "sales")
    await _queue(client, admin, "billing")
    await _queue(client, admin, "sales")
    customer = await _customer(client, admin, "iron", 1)
    for n in range(6):
        await _waiting(client, admin, by_hand, queue="sales", customer=customer, waited=60.0 + n)
    billing = await _waiting(client, admin, by_hand, queue="billing", customer=customer)
    await _lin(client, admin, by_hand)

    result = await _pass(by_hand)

    assert (result.offers, result.left_waiting, result.left_unread) == (1, 6, False)
    assert await _offered(by_hand) == [billing]


async def test_a_pass_stops_reading_once_nobody_has_room(
    by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers, small_pages: None
) -> None:
    """Lin takes the first chat: the pass reads no page after the first, and says more waits
    than it read (so arrivals queue behind it, and freed room wakes the next pass)."""
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing")
    customer = await _customer(client, admin, "iron", 1)
    oldest = await _waiting(client, admin, by_hand, queue="billing", customer=customer, waited=99)
    for _ in range(8):
        await _waiting(client, admin, by_hand, queue="billing", customer=customer)
    await _lin(client, admin, by_hand)

    result = await _pass(by_hand)

    assert (result.offers, len(result.left), result.left_unread) == (1, 2, True)
    assert await _offered(by_hand) == [oldest]


async def test_behind_the_ranked_window_the_oldest_come_first(
    by_hand: asyncpg.Connection,
    client: httpx.AsyncClient,
    admin: Headers,
    small_pages: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the oldest are ranked (a backlog of 100,000 is not sorted on every pass): behind
    more than that, a platinum chat waits its turn, and the oldest of those ranked goes first."""
    monkeypatch.setattr(waiting, "RANKED_LIMIT", 4)
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing", aging_factor=0.01)
    lead = await _customer(client, admin, "lead", 1)
    platinum = await _customer(client, admin, "platinum", 2)
    oldest = await _waiting(client, admin, by_hand, queue="billing", customer=lead, waited=90.0)
    for n in range(5):
        await _waiting(client, admin, by_hand, queue="billing", customer=lead, waited=60.0 + n)
    await _waiting(client, admin, by_hand, queue="billing", customer=platinum)
    await _lin(client, admin, by_hand)

    result = await _pass(by_hand)

    assert result.offers == 1
    assert await _offered(by_hand) == [oldest]


async def test_a_backlog_of_one_channel_hides_no_newer_work_of_another(
    by_hand: asyncpg.Connection,
    client: httpx.AsyncClient,
    admin: Headers,
    small_pages: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each channel's oldest are ranked apart: a backlog of old emails longer than the window
    does not keep a newer call from an agent who takes calls only (rule 4 for every channel)."""
    monkeypatch.setattr(waiting, "RANKED_LIMIT", 4)
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing", aging_factor=0.01)
    lead = await _customer(client, admin, "lead", 1)
    platinum = await _customer(client, admin, "platinum", 2)
    for n in range(6):
        await _waiting(
            client,
            admin,
            by_hand,
            queue="billing",
            customer=lead,
            waited=60.0 + n,
            channel="email",
        )
    call = await _waiting(
        client, admin, by_hand, queue="billing", customer=platinum, channel="voice"
    )
    await _lin(client, admin, by_hand, capacity={"voice": 1, "chat": 0, "email": 0})

    result = await _pass(by_hand)

    assert result.offers == 1
    assert await _offered(by_hand) == [call]

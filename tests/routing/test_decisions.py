"""Accepting and completing, one database call each: what they write, and what they refuse.

The matcher's tick is an hour here, and the agents have no presence, so no pass makes an offer
or times one out behind the test's back: each offer is written by the test, as a pass would.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.errors import AppError, IllegalTransition, NotFound
from app.core.events import Events
from app.core.hub import EventRecord, asyncpg_dsn
from app.core.settings import Settings
from app.interactions.service import InteractionNotFound
from app.routing import service as routing
from tests.support import (
    CountedPasses,
    create_billing_queue,
    settings_with_passes_on_demand,
    until_waiting_for_a_lock,
)

Headers = dict[str, str]


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


@pytest.fixture
async def connection(app: FastAPI) -> AsyncIterator[asyncpg.Connection]:
    async with app.state.pg.acquire() as borrowed:
        yield borrowed


async def _available_agent(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, name: str
) -> uuid.UUID:
    body = {
        "username": name,
        "display_name": name.title(),
        "skills": [{"skill": "billing", "level": 3}],
    }
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    agent_id = uuid.UUID(response.json()["id"])
    await connection.execute("UPDATE agents SET state = 'available' WHERE id = $1", agent_id)
    return agent_id


async def _offered(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    agent_id: uuid.UUID,
    *,
    channel: str = "voice",
    deadline_in: float = 30.0,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A queued interaction offered to the agent, as a matcher pass writes it: (interaction,
    offer)."""
    body = {
        "channel": channel,
        "queue": "billing",
        "contact": {"kind": "phone", "value": "+86 138 0013 8000"},
    }
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    interaction_id = uuid.UUID(response.json()["id"])
    offer_id = uuid.uuid4()
    moment = datetime.now(UTC)
    await connection.execute(
        "UPDATE interactions SET state = 'offered', offered_at = $2 WHERE id = $1",
        interaction_id,
        moment,
    )
    await connection.execute(
        "INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,"
        " reason, matched) VALUES ($1, $2, $3, $4, 'pending', $5, $6, 'test', '{}')",
        offer_id,
        interaction_id,
        agent_id,
        channel,
        moment,
        moment + timedelta(seconds=deadline_in),
    )
    return interaction_id, offer_id


async def _logged(connection: asyncpg.Connection, after: int) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT id, kind, subject_type, subject_id, actor, payload::text FROM events"
        " WHERE id > $1 ORDER BY id",
        after,
    )
    return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]


def _as_logged(events: list[EventRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "actor": e.actor,
            "payload": e.payload,
        }
        for e in events
    ]


async def _last_event(connection: asyncpg.Connection) -> int:
    last: int = await connection.fetchval("SELECT coalesce(max(id), 0) FROM events")
    return last


async def _states(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, offer_id: uuid.UUID
) -> tuple[str, str, str]:
    row = await connection.fetchrow(
        "SELECT i.state AS interaction, o.state AS offer, a.state AS agent"
        " FROM offers o JOIN interactions i ON i.id = o.interaction_id"
        " JOIN agents a ON a.id = o.agent_id WHERE o.id = $1 AND i.id = $2",
        offer_id,
        interaction_id,
    )
    assert row is not None
    return row["interaction"], row["offer"], row["agent"]


async def test_accepting_assigns_makes_the_agent_busy_and_returns_the_events_it_logged(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    interaction_id, offer_id = await _offered(client, admin, connection, mei)
    before = await _last_event(connection)

    events = Events()
    taken = await routing.accept_offer(connection, events, offer_id, agent_id=mei, actor="mei")

    assert taken == interaction_id
    assert await _states(connection, interaction_id, offer_id) == ("assigned", "accepted", "busy")
    logged = await _logged(connection, before)
    assert [e["kind"] for e in logged] == [
        "offer.accepted",
        "interaction.assigned",
        "agent.state_changed",
    ]
    assert logged[0]["payload"] == {"interaction_id": str(interaction_id), "agent_id": str(mei)}
    answered = logged[1]["payload"]
    # the wait it ended, for the figures (docs/metrics.md): its line and how long it waited
    assert answered.pop("waited_seconds") >= 0
    assert answered == {
        "from": "offered",
        "agent_id": str(mei),
        "offer_id": str(offer_id),
        "queue_id": str(await _queue_of(connection, interaction_id)),
        "channel": "voice",
    }
    assert logged[2]["payload"] == {"from": "available", "to": "busy", "reason": None}
    # What the desk publishes at once is what the hub of another replica reads from the log.
    answered["waited_seconds"] = events.written[1].payload["waited_seconds"]
    assert _as_logged(events.written) == logged
    # With the interaction as assigned, for the assignment frame, as the REST API shows it.
    shown = await client.get(f"/v1/interactions/{interaction_id}", headers=admin)
    assert events.written[1].attached == {"interaction": shown.json()}


async def test_an_agent_already_busy_accepts_without_a_change_of_state(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    await connection.execute("UPDATE agents SET state = 'busy' WHERE id = $1", mei)
    interaction_id, offer_id = await _offered(client, admin, connection, mei, channel="chat")
    before = await _last_event(connection)

    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")

    logged = await _logged(connection, before)
    assert [e["kind"] for e in logged] == ["offer.accepted", "interaction.assigned"]
    assert await _states(connection, interaction_id, offer_id) == ("assigned", "accepted", "busy")


async def test_a_refused_accept_says_why_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    tom = await _available_agent(client, admin, connection, "tom")
    # The interaction's arrival wakes a pass, which would time the expired offer out if it ran
    # after the offer is written: no pass runs from here on.
    passes = CountedPasses.installed(monkeypatch)
    await passes.hold()
    interaction_id, offer_id = await _offered(client, admin, connection, mei, deadline_in=-1)
    before = await _last_event(connection)

    async def refusal(offer: uuid.UUID, agent: uuid.UUID) -> AppError:
        with pytest.raises((NotFound, IllegalTransition)) as refused:
            await routing.accept_offer(connection, Events(), offer, agent_id=agent, actor="x")
        return refused.value

    late = await refusal(offer_id, mei)
    assert isinstance(late, IllegalTransition)
    assert late.detail == "the offer has timed out; it is back in the queue"
    someone_elses = await refusal(offer_id, tom)
    assert isinstance(someone_elses, routing.OfferNotFound)
    unknown = await refusal(uuid.uuid4(), mei)
    assert isinstance(unknown, routing.OfferNotFound)
    no_agent = await refusal(offer_id, uuid.uuid4())
    assert isinstance(no_agent, NotFound)
    assert no_agent.detail.startswith("no agent with id")

    assert await _states(connection, interaction_id, offer_id) == (
        "offered",
        "pending",
        "available",
    )
    assert await _logged(connection, before) == []


async def test_an_offer_accepted_once_cannot_be_accepted_again(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    _, offer_id = await _offered(client, admin, connection, mei)
    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")

    with pytest.raises(IllegalTransition, match="the offer is already accepted"):
        await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")


async def test_completing_ends_the_interaction_and_frees_the_agent(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    interaction_id, offer_id = await _offered(client, admin, connection, mei)
    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")
    before = await _last_event(connection)

    events = Events()
    state = await routing.complete(
        connection,
        events,
        interaction_id,
        disposition="resolved",
        notes="refunded",
        agent_id=mei,
        actor="mei",
    )

    assert state.value == "completed"
    row = await connection.fetchrow(
        "SELECT state, disposition, notes, ended_at FROM interactions WHERE id = $1",
        interaction_id,
    )
    assert row is not None
    assert (row["state"], row["disposition"], row["notes"]) == ("completed", "resolved", "refunded")
    assert row["ended_at"] is not None
    logged = await _logged(connection, before)
    assert [(e["kind"], e["payload"]) for e in logged] == [
        (
            "interaction.completed",
            {"from": "assigned", "agent_id": str(mei), "disposition": "resolved"},
        ),
        ("agent.state_changed", {"from": "busy", "to": "available", "reason": None}),
    ]
    assert _as_logged(events.written) == logged


async def test_a_call_completed_in_a_wrap_up_queue_puts_the_agent_in_wrap_up(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin, wrap_up_seconds=60)
    mei = await _available_agent(client, admin, connection, "mei")
    interaction_id, offer_id = await _offered(client, admin, connection, mei)
    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")

    events = Events()
    state = await routing.complete(
        connection, events, interaction_id, disposition="ok", notes="", agent_id=mei, actor="mei"
    )

    assert state.value == "wrap_up"
    assert [(e.kind, e.payload.get("to")) for e in events.written] == [
        ("interaction.wrap_up", None),
        ("agent.state_changed", "wrap_up"),
    ]
    ended = await routing.end_wrap_up(
        connection, Events(), interaction_id, agent_id=mei, actor="mei"
    )
    assert ended.value == "completed"
    assert await connection.fetchval("SELECT state FROM agents WHERE id = $1", mei) == "available"


async def test_a_refused_completion_says_why_and_writes_nothing(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    tom = await _available_agent(client, admin, connection, "tom")
    interaction_id, offer_id = await _offered(client, admin, connection, mei)

    async def refusal(interaction: uuid.UUID, agent: uuid.UUID) -> AppError:
        with pytest.raises((NotFound, IllegalTransition)) as refused:
            await routing.complete(
                connection,
                Events(),
                interaction,
                disposition="x",
                notes="",
                agent_id=agent,
                actor="x",
            )
        return refused.value

    not_yet = await refusal(interaction_id, mei)  # offered, not assigned
    assert isinstance(not_yet, InteractionNotFound)  # nobody holds it yet
    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")
    before = await _last_event(connection)
    not_toms = await refusal(interaction_id, tom)
    assert isinstance(not_toms, InteractionNotFound)
    assert not_toms.detail == f"interaction {interaction_id} is not assigned to you"
    unknown = await refusal(uuid.uuid4(), mei)
    assert isinstance(unknown, InteractionNotFound)
    assert await _logged(connection, before) == []

    await routing.complete(
        connection, Events(), interaction_id, disposition="x", notes="", agent_id=mei, actor="mei"
    )
    twice = await refusal(interaction_id, mei)
    assert isinstance(twice, IllegalTransition)
    assert twice.detail.startswith("cannot complete it: the interaction is completed")


async def test_an_accept_waiting_on_a_withdrawal_sees_it_once_the_lock_is_free(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, database_url: str
) -> None:
    """The customer hangs up while the agent accepts: the withdrawal holds the interaction's
    lock, the accept waits for it, then reads the interaction as it is now and refuses."""
    await create_billing_queue(client, admin)
    mei = await _available_agent(client, admin, connection, "mei")
    interaction_id, offer_id = await _offered(client, admin, connection, mei)
    before = await _last_event(connection)
    other = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        withdrawal = other.transaction()
        await withdrawal.start()
        await other.execute(
            "UPDATE interactions SET state = 'queued' WHERE id = $1", interaction_id
        )
        await other.execute("UPDATE offers SET state = 'withdrawn' WHERE id = $1", offer_id)
        accepting = asyncio.create_task(
            routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")
        )
        await until_waiting_for_a_lock(other, connection.get_server_pid())
        await withdrawal.commit()
        with pytest.raises(IllegalTransition, match="the offer is already withdrawn"):
            await accepting
    finally:
        await other.close()
    assert await _states(connection, interaction_id, offer_id) == (
        "queued",
        "withdrawn",
        "available",
    )
    assert await _logged(connection, before) == []


async def _queue_of(connection: asyncpg.Connection, interaction_id: uuid.UUID) -> uuid.UUID:
    queue_id: uuid.UUID = await connection.fetchval(
        "SELECT queue_id FROM interactions WHERE id = $1", interaction_id
    )
    return queue_id

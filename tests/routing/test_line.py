"""What the customer's line does to routing (app/routing/line.py): a caller who hangs up while
waiting or during the talk, one who takes a callback instead, an agent's phone that never
answers. Each from every state it applies to, and refused, writing nothing, from the others.

The matcher's tick is an hour here: offers are written by the test, as a pass writes them,
except where a test shows the matcher using the room a withdrawn offer freed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.errors import IllegalTransition
from app.core.events import Events
from app.core.hub import asyncpg_dsn
from app.core.settings import Settings
from app.interactions.service import InteractionNotFound
from app.routing import service as routing
from app.routing import waiting
from app.routing.figures import read_position
from tests.support import (
    create_billing_queue,
    present_desk,
    settings_with_passes_on_demand,
    until_waiting_for_a_lock,
)

Headers = dict[str, str]
Line = Callable[[asyncpg.Connection, Events, uuid.UUID], Awaitable[object]]


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


@pytest.fixture
async def connection(app: FastAPI) -> AsyncIterator[asyncpg.Connection]:
    async with app.state.pg.acquire() as borrowed:
        yield borrowed


async def _agent(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, name: str
) -> uuid.UUID:
    """An available agent who takes one call at a time."""
    body = {
        "username": name,
        "display_name": name.title(),
        "skills": [{"skill": "billing", "level": 3}],
        "capacity": {"voice": 1, "chat": 0, "email": 0},
    }
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    agent_id = uuid.UUID(response.json()["id"])
    await connection.execute("UPDATE agents SET state = 'available' WHERE id = $1", agent_id)
    return agent_id


async def _call(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    *,
    waited: float = 0.0,
    number: str = "8000",
) -> uuid.UUID:
    """A call waiting in the billing queue; with `waited`, it has waited that many seconds."""
    body = {
        "channel": "voice",
        "queue": "billing",
        "contact": {"kind": "phone", "value": f"+86 138 0013 {number}"},
    }
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    interaction_id = uuid.UUID(response.json()["id"])
    if waited:
        await connection.execute(
            "UPDATE interactions SET waiting_since = $2 WHERE id = $1",
            interaction_id,
            datetime.now(UTC) - timedelta(seconds=waited),
        )
    return interaction_id


async def _offer(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, agent_id: uuid.UUID
) -> uuid.UUID:
    """The waiting call offered to the agent, as a matcher pass writes it: the offer's id."""
    offer_id, moment = uuid.uuid4(), datetime.now(UTC)
    await connection.execute(
        "UPDATE interactions SET state = 'offered', offered_at = $2 WHERE id = $1",
        interaction_id,
        moment,
    )
    await connection.execute(
        "INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,"
        " reason, matched) VALUES ($1, $2, $3, 'voice', 'pending', $4, $5, 'test', '{}')",
        offer_id,
        interaction_id,
        agent_id,
        moment,
        moment + timedelta(seconds=30),
    )
    return offer_id


async def _assign(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, agent_id: uuid.UUID
) -> uuid.UUID:
    """The waiting call offered to the agent and accepted, as the desk accepts: the offer."""
    offer_id = await _offer(connection, interaction_id, agent_id)
    await routing.accept_offer(connection, Events(), offer_id, agent_id=agent_id, actor="agent")
    return offer_id


async def _in_a_transaction(
    connection: asyncpg.Connection, act: Callable[[Events], Awaitable[Any]]
) -> tuple[Any, Events]:
    """Run `act` as the call service does: in a transaction that writes its events."""
    events = Events()
    async with connection.transaction():
        result = await act(events)
        await events.write(connection)
    return result, events


async def _last_event(connection: asyncpg.Connection) -> int:
    last: int = await connection.fetchval("SELECT coalesce(max(id), 0) FROM events")
    return last


async def _logged(connection: asyncpg.Connection, after: int) -> list[tuple[str, dict[str, Any]]]:
    rows = await connection.fetch(
        "SELECT kind, payload::text FROM events WHERE id > $1 ORDER BY id", after
    )
    return [(row["kind"], json.loads(row["payload"])) for row in rows]


async def _interaction(connection: asyncpg.Connection, interaction_id: uuid.UUID) -> Any:
    row = await connection.fetchrow(
        "SELECT state, agent_id, waiting_since, assigned_at, ended_at FROM interactions"
        " WHERE id = $1",
        interaction_id,
    )
    assert row is not None
    return row


async def _offer_state(connection: asyncpg.Connection, offer_id: uuid.UUID) -> tuple[str, str]:
    row = await connection.fetchrow("SELECT state, reason FROM offers WHERE id = $1", offer_id)
    assert row is not None
    return row["state"], row["reason"]


async def _agent_state(connection: asyncpg.Connection, agent_id: uuid.UUID) -> tuple[str, Any]:
    row = await connection.fetchrow(
        "SELECT state, state_reason FROM agents WHERE id = $1", agent_id
    )
    assert row is not None
    return row["state"], row["state_reason"]


async def _refused(
    connection: asyncpg.Connection, act: Callable[[Events], Awaitable[Any]], said: str
) -> None:
    """`act` is refused with an IllegalTransition that says `said`, and writes nothing."""
    before = await _last_event(connection)
    with pytest.raises(IllegalTransition) as refused:
        await _in_a_transaction(connection, act)
    assert said in refused.value.detail, refused.value.detail
    assert await _logged(connection, before) == []


async def _until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not so within the time allowed")


# --- a caller who hangs up while waiting ---------------------------------------------------------


async def test_a_caller_who_hangs_up_while_queued_abandons_with_the_time_waited(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    call = await _call(client, admin, connection, waited=42)
    before = await _last_event(connection)

    await _in_a_transaction(
        connection,
        lambda events: routing.abandon_waiting(connection, events, call, actor="gateway"),
    )

    row = await _interaction(connection, call)
    assert row["state"] == "abandoned"
    assert row["ended_at"] is not None
    [(kind, payload)] = await _logged(connection, before)
    assert kind == "interaction.abandoned"
    assert payload.pop("waited_seconds") == pytest.approx(42, abs=2)
    # what the figures count it by: the line it left (docs/metrics.md)
    queue_id = await connection.fetchval("SELECT queue_id FROM interactions WHERE id = $1", call)
    assert payload == {
        "from": "queued",
        "agent_id": None,
        "queue_id": str(queue_id),
        "channel": "voice",
    }


async def test_a_caller_who_hangs_up_while_offered_frees_the_agent_for_the_next_call(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """Mei takes one call at a time: the first call's offer holds her room until the caller
    hangs up; then the next call is offered to her."""
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    await present_desk(connection, mei)

    async def offered_to_mei(call: uuid.UUID) -> bool:
        return bool(
            await connection.fetchval(
                "SELECT EXISTS (SELECT FROM offers WHERE interaction_id = $1 AND agent_id = $2"
                " AND state = 'pending')",
                call,
                mei,
            )
        )

    first = await _call(client, admin, connection, number="8001")
    await _until(lambda: offered_to_mei(first))
    offer_id = await connection.fetchval(
        "SELECT id FROM offers WHERE interaction_id = $1 AND state = 'pending'", first
    )
    before = await _last_event(connection)

    _, events = await _in_a_transaction(
        connection,
        lambda events: routing.abandon_waiting(connection, events, first, actor="gateway"),
    )
    app.state.hub.publish(events.written)  # as the call service does after its commit
    app.state.matcher.wake()

    assert await _offer_state(connection, offer_id) == ("withdrawn", "customer abandoned")
    logged = await _logged(connection, before)
    assert [kind for kind, _ in logged] == ["offer.withdrawn", "interaction.abandoned"]
    assert logged[0][1] == {
        "interaction_id": str(first),
        "agent_id": str(mei),  # her desk is told: an `offer_withdrawn` frame
        "reason": "customer abandoned",
    }
    assert logged[1][1]["from"] == "offered"
    second = await _call(client, admin, connection, number="8002")
    await _until(lambda: offered_to_mei(second))


async def test_abandoning_is_refused_once_the_call_is_answered_or_over(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin, wrap_up_seconds=60)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)
    await _assign(connection, call, mei)

    def abandon(events: Events) -> Awaitable[None]:
        return routing.abandon_waiting(connection, events, call, actor="gateway")

    await _refused(connection, abandon, "cannot abandon it: the interaction is assigned")
    await _in_a_transaction(
        connection, lambda events: routing.end_talk(connection, events, call, actor="gateway")
    )
    await _refused(connection, abandon, "the interaction is wrap_up")
    await routing.end_wrap_up(connection, Events(), call, agent_id=mei, actor="mei")
    await _refused(connection, abandon, "the interaction is completed")
    with pytest.raises(InteractionNotFound):
        await routing.abandon_waiting(connection, Events(), uuid.uuid4(), actor="gateway")


async def test_a_repeated_hang_up_is_refused_as_already_done(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    call = await _call(client, admin, connection)

    def abandon(events: Events) -> Awaitable[None]:
        return routing.abandon_waiting(connection, events, call, actor="gateway")

    await _in_a_transaction(connection, abandon)
    await _refused(connection, abandon, "the interaction is abandoned")


async def test_the_rest_abandon_is_the_same_rule_with_the_time_waited(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection, waited=30)
    offer_id = await _offer(connection, call, mei)

    response = await client.post(f"/v1/interactions/{call}/abandon", headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "abandoned"
    assert await _offer_state(connection, offer_id) == ("withdrawn", "customer abandoned")
    events = await client.get("/v1/events", params={"subject_id": str(call)}, headers=admin)
    abandoned = events.json()["items"][-1]
    assert abandoned["kind"] == "interaction.abandoned"
    assert abandoned["payload"]["waited_seconds"] == pytest.approx(30, abs=2)
    other = await _call(client, admin, connection, number="8003")
    await _assign(connection, other, mei)
    refused = await client.post(f"/v1/interactions/{other}/abandon", headers=admin)
    assert refused.status_code == 409
    assert "the interaction is assigned" in refused.json()["detail"]


# --- a callback instead --------------------------------------------------------------------------


async def test_a_waiting_call_converted_to_a_callback_ends_and_gives_its_place(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    call = await _call(client, admin, connection, waited=75)
    since = (await _interaction(connection, call))["waiting_since"]
    before = await _last_event(connection)

    kept, _ = await _in_a_transaction(
        connection,
        lambda events: routing.convert_to_callback(connection, events, call, actor="gateway"),
    )

    assert kept == since
    row = await _interaction(connection, call)
    assert (row["state"], row["waiting_since"]) == ("converted", since)
    assert row["ended_at"] is not None
    [(kind, payload)] = await _logged(connection, before)
    assert kind == "interaction.converted"
    assert payload["from"] == "queued"
    assert payload["waited_seconds"] == pytest.approx(75, abs=2)


async def test_a_call_converted_while_offered_withdraws_its_offer(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)
    offer_id = await _offer(connection, call, mei)
    before = await _last_event(connection)

    await _in_a_transaction(
        connection,
        lambda events: routing.convert_to_callback(connection, events, call, actor="gateway"),
    )

    assert (await _interaction(connection, call))["state"] == "converted"
    assert await _offer_state(connection, offer_id) == (
        "withdrawn",
        "customer asked for a callback",
    )
    assert [kind for kind, _ in await _logged(connection, before)] == [
        "offer.withdrawn",
        "interaction.converted",
    ]


async def test_converting_is_refused_unless_the_call_waits(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    answered, waiting_call = (
        await _call(client, admin, connection),
        await _call(client, admin, connection, number="8004"),
    )
    await _assign(connection, answered, mei)

    def convert(call: uuid.UUID) -> Callable[[Events], Awaitable[object]]:
        return lambda events: routing.convert_to_callback(connection, events, call, actor="g")

    await _refused(connection, convert(answered), "the interaction is assigned")
    await _in_a_transaction(connection, convert(waiting_call))
    await _refused(connection, convert(waiting_call), "the interaction is converted")


# --- the agent's phone never answered ------------------------------------------------------------


async def test_a_call_the_agents_phone_never_answered_keeps_its_place_ahead_of_later_calls(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin, away_on_missed_offer=False)
    mei = await _agent(client, admin, connection, "mei")
    first = await _call(client, admin, connection, waited=60, number="8001")
    offer_id = await _assign(connection, first, mei)
    since = (await _interaction(connection, first))["waiting_since"]
    later = await _call(client, admin, connection, waited=30, number="8002")
    before = await _last_event(connection)

    await _in_a_transaction(
        connection,
        lambda events: routing.return_unanswered(
            connection, events, first, agent_id=mei, actor="gateway", reason="no-answer"
        ),
    )

    row = await _interaction(connection, first)
    assert (row["state"], row["agent_id"], row["waiting_since"]) == ("queued", None, since)
    assert row["assigned_at"] is None  # never answered
    moment = datetime.now(UTC)
    assert await read_position(connection, first, moment) == 1
    assert await read_position(connection, later, moment) == 2
    # A missed offer: Mei is not offered this call again, and, as the queue keeps its agents
    # in routing after a miss, she is free for the next one.
    assert await _offer_state(connection, offer_id) == ("timed_out", "no-answer")
    refused = {row["id"]: row["refused"] for row in await waiting.page(connection, moment, None)}
    assert refused[first] == [mei]
    assert await _agent_state(connection, mei) == ("available", None)
    assert await _logged(connection, before) == [
        (
            "offer.timed_out",
            {"interaction_id": str(first), "agent_id": str(mei), "reason": "no-answer"},
        ),
        (
            "interaction.queued",
            {
                "from": "assigned",
                "agent_id": None,
                "from_agent_id": str(mei),
                "reason": "no-answer",
                "offer_id": str(offer_id),
            },
        ),
        ("agent.state_changed", {"from": "busy", "to": "available", "reason": None}),
    ]


async def test_an_agent_whose_phone_never_answered_goes_away_when_the_queue_says_so(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)  # away_on_missed_offer, as queues have it by default
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)
    await _assign(connection, call, mei)
    before = await _last_event(connection)

    await _in_a_transaction(
        connection,
        lambda events: routing.return_unanswered(
            connection, events, call, agent_id=mei, actor="gateway", reason="busy"
        ),
    )

    assert await _agent_state(connection, mei) == ("away", "missed an offer")
    assert [kind for kind, _ in await _logged(connection, before)][-1] == "agent.state_changed"
    assert (await _logged(connection, before))[-1][1] == {
        "from": "busy",
        "to": "away",
        "reason": "missed an offer",
    }


async def test_returning_an_unanswered_call_is_refused_unless_this_agent_holds_it(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin, wrap_up_seconds=60, away_on_missed_offer=False)
    mei = await _agent(client, admin, connection, "mei")
    tom = await _agent(client, admin, connection, "tom")
    call = await _call(client, admin, connection)

    def unanswered(agent: uuid.UUID) -> Callable[[Events], Awaitable[None]]:
        return lambda events: routing.return_unanswered(
            connection, events, call, agent_id=agent, actor="gateway", reason="failed"
        )

    await _refused(connection, unanswered(mei), "the interaction is queued")
    offer_id = await _offer(connection, call, mei)
    await _refused(connection, unanswered(mei), "the interaction is offered")
    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")
    await _refused(connection, unanswered(tom), "the interaction is assigned by another agent")
    await _in_a_transaction(connection, unanswered(mei))
    await _refused(connection, unanswered(mei), "the interaction is queued")  # a repeat
    await _assign(connection, call, tom)
    await _in_a_transaction(
        connection, lambda events: routing.end_talk(connection, events, call, actor="gateway")
    )
    await _refused(connection, unanswered(tom), "the interaction is wrap_up")


# --- the caller hangs up during the talk ---------------------------------------------------------


async def test_a_caller_who_hangs_up_during_the_talk_puts_the_agent_in_wrap_up(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin, wrap_up_seconds=60)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)
    await _assign(connection, call, mei)
    before = await _last_event(connection)

    _, events = await _in_a_transaction(
        connection, lambda events: routing.end_talk(connection, events, call, actor="gateway")
    )

    assert (await _interaction(connection, call))["state"] == "wrap_up"
    assert await _agent_state(connection, mei) == ("wrap_up", None)
    logged = await _logged(connection, before)
    assert logged == [
        (
            "interaction.wrap_up",
            {"from": "assigned", "agent_id": str(mei), "reason": "the caller hung up"},
        ),
        ("agent.state_changed", {"from": "busy", "to": "wrap_up", "reason": None}),
    ]
    assert [(e.kind, e.payload) for e in events.written] == logged


async def test_in_a_queue_without_wrap_up_the_talk_s_end_completes_it_and_frees_the_agent(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)
    await _assign(connection, call, mei)

    await _in_a_transaction(
        connection, lambda events: routing.end_talk(connection, events, call, actor="gateway")
    )

    assert (await _interaction(connection, call))["state"] == "completed"
    assert await _agent_state(connection, mei) == ("available", None)


async def test_ending_the_talk_is_refused_unless_the_call_is_in_talk(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)

    def hang_up(events: Events) -> Awaitable[None]:
        return routing.end_talk(connection, events, call, actor="gateway")

    await _refused(connection, hang_up, "cannot end its talk: the interaction is queued")
    offer_id = await _offer(connection, call, mei)
    await _refused(connection, hang_up, "the interaction is offered")
    await routing.accept_offer(connection, Events(), offer_id, agent_id=mei, actor="mei")
    await routing.complete(
        connection, Events(), call, disposition="ok", notes="", agent_id=mei, actor="mei"
    )
    await _refused(connection, hang_up, "the interaction is completed")  # the agent was first
    with pytest.raises(InteractionNotFound):
        await routing.end_talk(connection, Events(), uuid.uuid4(), actor="gateway")


async def test_a_hang_up_that_waited_on_the_agent_s_completion_says_it_came_too_late(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, database_url: str
) -> None:
    """The agent completes while the caller hangs up: the completion holds the agent's lock,
    the end of the talk waits for it, then finds the call completed and refuses, naming it."""
    await create_billing_queue(client, admin)
    mei = await _agent(client, admin, connection, "mei")
    call = await _call(client, admin, connection)
    await _assign(connection, call, mei)
    before = await _last_event(connection)
    other = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        completion = other.transaction()
        await completion.start()
        await other.execute("SELECT FROM agents WHERE id = $1 FOR NO KEY UPDATE", mei)
        hanging_up = asyncio.create_task(
            _in_a_transaction(
                connection,
                lambda events: routing.end_talk(connection, events, call, actor="gateway"),
            )
        )
        await until_waiting_for_a_lock(other, connection.get_server_pid())
        await routing.complete(
            other, Events(), call, disposition="ok", notes="", agent_id=mei, actor="mei"
        )
        await completion.commit()
        with pytest.raises(IllegalTransition, match="the interaction is completed"):
            await hanging_up
    finally:
        await other.close()
    logged = await _logged(connection, before)
    assert [kind for kind, _ in logged] == ["interaction.completed", "agent.state_changed"]

"""The SQL that carries out agent-state rules inside PostgreSQL, held to the pure functions of
app/agents/states.py on a real database: for every state an agent may be in and every kind of
holding, the state `routing_refresh_agent`, `routing_complete` and `routing_accept` write, and
for every pair of states, whether the trigger on `agents` moves `routing_version`.

Each case is set up and checked inside a transaction that is rolled back, so one database holds
them all; a test collects every case that disagrees and lists them.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.agents.models import AgentState
from app.agents.states import (
    CALLS,
    ROUTABLE,
    becomes_idle,
    matters_to_routing,
    state_after_accept,
    state_for_holdings,
    state_payload,
)
from app.core.channels import Channel
from app.core.settings import Settings
from app.interactions.models import InteractionState, OfferState
from tests.support import create_skills, settings_with_passes_on_demand

A = AgentState
S = InteractionState
Headers = dict[str, str]
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
# What an agent holds: interactions assigned to it or in their wrap-up, and pending offers.
HELD_INTERACTIONS = {S.assigned, S.wrap_up}


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


@dataclass(frozen=True)
class Held:
    """One interaction of the agent's: its own (`offer` None), or offered to it in `offer`'s
    state (the interaction then waits, or is offered while the offer is pending)."""

    channel: Channel
    state: InteractionState
    offer: OfferState | None = None

    def __str__(self) -> str:
        offer = "" if self.offer is None else f" offered {self.offer.value}"
        return f"{self.channel.value} {self.state.value}{offer}"


def _holds(held: Held) -> bool:
    if held.offer is not None:
        return held.offer is OfferState.pending
    return held.state in HELD_INTERACTIONS


def holds_work(holdings: Sequence[Held]) -> bool:
    return any(_holds(held) for held in holdings)


def wrapping_up_a_call(holdings: Sequence[Held]) -> bool:
    return any(h.offer is None and h.state is S.wrap_up and h.channel in CALLS for h in holdings)


def wanted(current: AgentState, holdings: Sequence[Held]) -> AgentState:
    return state_for_holdings(
        current,
        holds_work=holds_work(holdings),
        wrapping_up_a_call=wrapping_up_a_call(holdings),
    )


def _offered(channel: Channel, offer: OfferState) -> Held:
    return Held(channel, S.offered if offer is OfferState.pending else S.queued, offer)


# Every interaction state on every channel, every offer state, and holdings that mix a call's
# wrap-up with other work.
SINGLE = [
    *(Held(channel, state) for channel, state in itertools.product(Channel, S)),
    *(_offered(channel, offer) for channel, offer in itertools.product(Channel, OfferState)),
]
MIXED = [
    (Held(Channel.voice, S.wrap_up), Held(Channel.chat, S.assigned)),
    (Held(Channel.callback, S.wrap_up), _offered(Channel.email, OfferState.pending)),
    (Held(Channel.chat, S.wrap_up), Held(Channel.email, S.wrap_up)),
    (Held(Channel.voice, S.completed), _offered(Channel.chat, OfferState.timed_out)),
    (Held(Channel.chat, S.assigned), Held(Channel.chat, S.assigned)),
]
HOLDINGS: list[tuple[Held, ...]] = [(), *((h,) for h in SINGLE), *MIXED]


@dataclass(frozen=True)
class Desk:
    """The rows every case builds on: an agent, and a queue with and without wrap-up time."""

    agent_id: uuid.UUID
    customer_id: uuid.UUID
    wrap_up_queue: uuid.UUID
    no_wrap_up_queue: uuid.UUID


@pytest.fixture
async def connection(app: FastAPI) -> AsyncIterator[asyncpg.Connection]:
    async with app.state.pg.acquire() as borrowed:
        yield borrowed


async def _queue(client: httpx.AsyncClient, admin: Headers, name: str, wrap_up: int) -> uuid.UUID:
    body = {
        "name": name,
        "wrap_up_seconds": wrap_up,
        "required_skills": [{"skill": "billing", "level": 1}],
    }
    response = await client.post("/v1/queues", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


@pytest.fixture
async def desk(client: httpx.AsyncClient, admin: Headers) -> Desk:
    await create_skills(client, admin, "billing")
    agent = await client.post(
        "/v1/agents",
        json={
            "username": "mei",
            "display_name": "Mei",
            "skills": [{"skill": "billing", "level": 3}],
        },
        headers=admin,
    )
    assert agent.status_code == 201, agent.text
    customer = await client.post(
        "/v1/customers",
        json={"name": "Customer", "tier": "iron", "chat_ids": ["visitor-1"]},
        headers=admin,
    )
    assert customer.status_code == 201, customer.text
    return Desk(
        agent_id=uuid.UUID(agent.json()["id"]),
        customer_id=uuid.UUID(customer.json()["id"]),
        wrap_up_queue=await _queue(client, admin, "with-wrap-up", 600),
        no_wrap_up_queue=await _queue(client, admin, "without-wrap-up", 0),
    )


@asynccontextmanager
async def rolled_back(connection: asyncpg.Connection) -> AsyncIterator[None]:
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield
    finally:
        await transaction.rollback()


async def _agent_in(
    connection: asyncpg.Connection, desk: Desk, state: AgentState, reason: str | None
) -> None:
    await connection.execute(
        "UPDATE agents SET state = $2, state_reason = $3, idle_since = $4 WHERE id = $1",
        desk.agent_id,
        state.value,
        reason,
        LONG_AGO,
    )


async def _interaction(
    connection: asyncpg.Connection,
    desk: Desk,
    channel: Channel,
    state: InteractionState,
    *,
    agent_id: uuid.UUID | None,
    queue_id: uuid.UUID | None = None,
) -> uuid.UUID:
    interaction_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO interactions (id, channel, queue_id, customer_id, priority, needs, subject,"
        " summary, state, agent_id, waiting_since, wrap_up_at, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, 0, '[]', '', '', $5, $6, now(), $7, now(), now())",
        interaction_id,
        channel.value,
        queue_id or desk.wrap_up_queue,
        desk.customer_id,
        state.value,
        agent_id,
        datetime.now(UTC) if state is S.wrap_up else None,
    )
    return interaction_id


async def _offer(
    connection: asyncpg.Connection,
    desk: Desk,
    interaction_id: uuid.UUID,
    channel: Channel,
    state: OfferState,
) -> uuid.UUID:
    offer_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,"
        " reason, matched) VALUES ($1, $2, $3, $4, $5, now(), now() + interval '1 hour',"
        " 'test', '{}')",
        offer_id,
        interaction_id,
        desk.agent_id,
        channel.value,
        state.value,
    )
    return offer_id


async def _hold(connection: asyncpg.Connection, desk: Desk, holdings: Sequence[Held]) -> None:
    for held in holdings:
        own = desk.agent_id if held.offer is None else None
        interaction_id = await _interaction(
            connection, desk, held.channel, held.state, agent_id=own
        )
        if held.offer is not None:
            await _offer(connection, desk, interaction_id, held.channel, held.offer)


async def _agent_now(connection: asyncpg.Connection, desk: Desk) -> asyncpg.Record:
    row = await connection.fetchrow(
        "SELECT state, state_reason, idle_since, routing_version FROM agents WHERE id = $1",
        desk.agent_id,
    )
    assert row is not None
    return row


def _state_changes(rows: list[asyncpg.Record]) -> list[object]:
    return [
        json.loads(r["event_payload"]) for r in rows if r["event_kind"] == "agent.state_changed"
    ]


def _case(current: AgentState, reason: str | None, holdings: Sequence[Held]) -> str:
    held = ", ".join(str(h) for h in holdings) or "nothing"
    return f"{current.value} ({reason}) holding {held}"


# --- routing_refresh_agent ------------------------------------------------------------------


async def test_refreshing_writes_the_state_holdings_call_for(
    connection: asyncpg.Connection, desk: Desk
) -> None:
    """Its callers guard it to agents in routing (`refresh_agent_state`, `routing_complete`):
    for those, every holding; a routable state with a reason (asked for) loses the reason."""
    wrong = []
    for current, reason, holdings in itertools.product(ROUTABLE, (None, "back"), HOLDINGS):
        async with rolled_back(connection):
            await _agent_in(connection, desk, current, reason)
            await _hold(connection, desk, holdings)
            moment = datetime.now(UTC)
            returned = await connection.fetchval(
                "SELECT routing_refresh_agent($1, $2)", desk.agent_id, moment
            )
            after = await _agent_now(connection, desk)
        state = wanted(current, holdings)
        written = (state, None) != (current, reason)
        idle_since = moment if written and becomes_idle(current, state) else LONG_AGO
        expected = (state.value if written else None, state.value, None, idle_since)
        got = (returned, after["state"], after["state_reason"], after["idle_since"])
        if got != expected:
            wrong.append(f"{_case(current, reason, holdings)}: {got} != {expected}")
    assert wrong == []


# --- routing_complete -----------------------------------------------------------------------


async def test_completing_leaves_the_agent_in_the_state_its_holdings_call_for(
    connection: asyncpg.Connection, desk: Desk
) -> None:
    """Every state (away and offline stay), each channel, with and without wrap-up time: the
    state after is what the holdings after call for, and its event has `state_payload`'s
    shape."""
    others = [(), *((h,) for h in SINGLE if h.state in HELD_INTERACTIONS or h.offer), *MIXED]
    wrong = []
    for current, channel, wrap_up, holdings in itertools.product(A, Channel, (True, False), others):
        queue = desk.wrap_up_queue if wrap_up else desk.no_wrap_up_queue
        async with rolled_back(connection):
            await _agent_in(connection, desk, current, None)
            await _hold(connection, desk, holdings)
            done = await _interaction(
                connection, desk, channel, S.assigned, agent_id=desk.agent_id, queue_id=queue
            )
            rows = await connection.fetch(
                "SELECT event_kind, event_payload FROM routing_complete($1, $2, now(), 'test',"
                " 'resolved', '', '{}')",
                desk.agent_id,
                done,
            )
            after = await _agent_now(connection, desk)
        left = (*holdings, Held(channel, S.wrap_up if wrap_up else S.completed))
        state = wanted(current, left)
        changed = [state_payload(current, state, None)] if state is not current else []
        expected = (state.value, changed)
        got = (after["state"], _state_changes(rows))
        if got != expected:
            case = f"{_case(current, None, holdings)}, completing {channel.value} {wrap_up=}"
            wrong.append(f"{case}: {got} != {expected}")
    assert wrong == []


# --- routing_accept -------------------------------------------------------------------------


async def test_accepting_leaves_the_agent_in_the_state_after_accept(
    connection: asyncpg.Connection, desk: Desk
) -> None:
    """Every state, holding nothing else, a chat, or a call in wrap-up; the agent's event is
    written exactly when its state changes."""
    at_rest = [(), (Held(Channel.chat, S.assigned),), (Held(Channel.voice, S.wrap_up),)]
    wrong = []
    for current, holdings in itertools.product(A, at_rest):
        async with rolled_back(connection):
            await _agent_in(connection, desk, current, None)
            await _hold(connection, desk, holdings)
            taken = await _interaction(connection, desk, Channel.chat, S.offered, agent_id=None)
            offer = await _offer(connection, desk, taken, Channel.chat, OfferState.pending)
            rows = await connection.fetch(
                "SELECT event_kind FROM routing_accept($1, $2, now(), 'test', '{}', '{}',"
                " $3::text::jsonb)",
                desk.agent_id,
                offer,
                json.dumps(state_payload(A.available, A.busy, None)),
            )
            after = await _agent_now(connection, desk)
        state = state_after_accept(current)
        expected = (state.value, state is not current)
        got = (after["state"], "agent.state_changed" in [r["event_kind"] for r in rows])
        if got != expected:
            wrong.append(f"{_case(current, None, holdings)}: {got} != {expected}")
    assert wrong == []


# --- the trigger on agents ------------------------------------------------------------------


async def test_routing_version_moves_with_the_moves_that_matter_to_routing(
    connection: asyncpg.Connection, desk: Desk
) -> None:
    wrong = []
    for source, target in itertools.product(A, A):
        async with rolled_back(connection):
            await _agent_in(connection, desk, source, None)
            before = (await _agent_now(connection, desk))["routing_version"]
            await connection.execute(
                "UPDATE agents SET state = $2 WHERE id = $1", desk.agent_id, target.value
            )
            moved = (await _agent_now(connection, desk))["routing_version"] != before
        if moved is not matters_to_routing(source, target):
            wrong.append(f"{source.value} -> {target.value}: moved={moved}")
    assert wrong == []


def test_the_cases_cover_every_state_and_holding() -> None:
    """The holdings above call for each routable state at least once."""
    called_for = {wanted(A.available, holdings) for holdings in HOLDINGS}
    assert called_for == ROUTABLE

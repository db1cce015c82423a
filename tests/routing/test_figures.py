"""The queue figures (app/routing/figures.py): AHT, position, staffed agents, the estimated wait.

The pure definitions first, then each read from a real PostgreSQL, with interactions raised
through the API and moved by routing's own accept and complete (their timestamps then set by
hand where a test needs known durations), then the estimator on a simulated queue.
"""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from app.core import pg
from app.core.channels import Channel
from app.core.events import Events
from app.core.settings import Settings
from app.routing import figures, policy, waiting
from app.routing import service as routing
from app.routing.figures import HandleTime
from app.routing.waiting import QueueBook
from tests.routing import queue_simulation as sim
from tests.support import (
    create_skills,
    offered_as_a_pass_writes,
    present_desk,
    settings_with_passes_on_demand,
)

Headers = dict[str, str]
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
QUEUE = uuid.UUID(int=1)
RULES = {QUEUE: policy.QueueRules(QUEUE, {"platinum": 30, "lead": 0}, aging_factor=0.5)}


def item(
    n: int,
    *,
    waited: float,
    tier: str = "lead",
    channel: Channel = Channel.voice,
    queue: uuid.UUID = QUEUE,
) -> policy.WaitingInteraction:
    return policy.WaitingInteraction(
        id=uuid.UUID(int=1000 + n),
        channel=channel,
        queue_id=queue,
        priority=0,
        tier=tier,
        waiting_since=NOW - timedelta(seconds=waited),
        needs=(),
    )


# --- pure: position and what is announced -------------------------------------------------------


def test_position_is_the_rank_in_the_order_of_service() -> None:
    line = [item(1, waited=90), item(2, waited=60), item(3, waited=30)]
    assert [figures.position_in_line(i.id, line, RULES, NOW) for i in line] == [1, 2, 3]


def test_a_platinum_caller_goes_ahead_and_the_announcement_does_not_go_back() -> None:
    me = item(2, waited=60)
    line = [item(1, waited=90), me]
    told = figures.announced_position(None, figures.position_in_line(me.id, line, RULES, NOW) or 0)
    assert told == 2

    # A platinum caller arrives. Effective priorities: the first 0.5 * 90 = 45, me 0.5 * 60 =
    # 30, the platinum caller 30 + 0.5 * 5 = 32.5: served before me, though 55 s newer.
    platinum = item(3, waited=5, tier="platinum")
    now_at = figures.position_in_line(me.id, [*line, platinum], RULES, NOW)
    assert now_at == 3
    assert figures.announced_position(told, now_at) == 2
    # The line moves on: the first is served, and what is told catches up with the truth.
    assert figures.announced_position(2, 2) == 2
    assert figures.announced_position(2, 1) == 1


def test_a_call_waits_behind_calls_and_callbacks_only() -> None:
    me = item(9, waited=10)
    line = [
        item(1, waited=50, channel=Channel.email),
        item(2, waited=40, channel=Channel.chat),
        item(3, waited=30, channel=Channel.callback),
        item(4, waited=20, queue=uuid.UUID(int=2)),
        me,
    ]
    assert figures.position_in_line(me.id, line, RULES, NOW) == 2
    email = line[0]
    assert figures.position_in_line(email.id, line, RULES, NOW) == 1


def test_no_position_when_not_waiting_or_without_rules() -> None:
    line = [item(1, waited=10)]
    assert figures.position_in_line(uuid.UUID(int=5), line, RULES, NOW) is None
    assert figures.position_in_line(line[0].id, line, {}, NOW) is None


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_an_announced_position_never_rises(positions: list[int]) -> None:
    told: int | None = None
    for current in positions:
        announced = figures.announced_position(told, current)
        assert announced <= current
        if told is not None:
            assert announced <= told
            assert announced in (told, current)
        told = announced


def test_the_estimated_wait_is_position_times_aht_over_staffed_agents() -> None:
    aht = HandleTime(seconds=240.0, handled=37)
    assert figures.estimated_wait(3, aht, 4) == timedelta(seconds=180)
    assert figures.estimated_wait(1, aht, 1) == timedelta(seconds=240)
    assert figures.estimated_wait(3, None, 4) is None  # nothing handled in the window
    assert figures.estimated_wait(3, aht, 0) is None  # nobody staffed
    assert figures.estimated_wait(0, aht, 4) is None


def test_a_callback_waits_for_the_voice_capacity() -> None:
    assert figures.same_capacity(Channel.voice) == (Channel.voice, Channel.callback)
    assert figures.same_capacity(Channel.callback) == (Channel.voice, Channel.callback)
    assert figures.same_capacity(Channel.email) == (Channel.email,)


# --- from PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


@pytest.fixture
async def connection(app: FastAPI, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The app's matcher stopped, so that no pass offers the waiting work to the agents a test
    makes present: the figures are read over a line that stays as the test built it."""
    await app.state.matcher.stop()
    opened = await pg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _queue(
    client: httpx.AsyncClient, admin: Headers, name: str, **settings_: Any
) -> uuid.UUID:
    body = {"name": name, "required_skills": [{"skill": "billing", "level": 2}], **settings_}
    response = await client.post("/v1/queues", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _customer(client: httpx.AsyncClient, admin: Headers, tier: str) -> str:
    body = {"name": f"A {tier} customer", "tier": tier}
    response = await client.post("/v1/customers", json=body, headers=admin)
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["id"]
    return customer_id


async def _raised(
    client: httpx.AsyncClient,
    admin: Headers,
    *,
    queue: str,
    customer: str,
    channel: str = "voice",
    priority: int = 0,
) -> uuid.UUID:
    body = {"channel": channel, "queue": queue, "customer_id": customer, "priority": priority}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "queued"
    return uuid.UUID(response.json()["id"])


async def _agent(
    client: httpx.AsyncClient,
    admin: Headers,
    name: str,
    *,
    level: int = 3,
    capacity: dict[str, int] | None = None,
) -> uuid.UUID:
    body: dict[str, Any] = {
        "username": name,
        "display_name": name.title(),
        "skills": [{"skill": "billing", "level": level}],
    }
    if capacity is not None:
        body["capacity"] = capacity
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _handled(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, agent_id: uuid.UUID
) -> None:
    """Offered as a pass writes it, accepted, completed and its wrap-up ended, each by routing's
    own call, as the desk makes them."""
    offer_id = await offered_as_a_pass_writes(connection, interaction_id, agent_id)
    actor = f"agent:{agent_id}"
    await routing.accept_offer(connection, Events(), offer_id, agent_id=agent_id, actor=actor)
    state = await routing.complete(
        connection,
        Events(),
        interaction_id,
        disposition="resolved",
        notes="",
        agent_id=agent_id,
        actor=actor,
    )
    if state == "wrap_up":
        async with connection.transaction():
            await routing.end_wrap_up(
                connection, Events(), interaction_id, agent_id=agent_id, actor=actor
            )


async def _took(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, seconds: float, ended: datetime
) -> None:
    """Its handling took `seconds` and ended at `ended` (a history set by hand)."""
    await connection.execute(
        "UPDATE interactions SET assigned_at = $2::timestamptz - make_interval(secs => $3),"
        " ended_at = $2 WHERE id = $1",
        interaction_id,
        ended,
        seconds,
    )


async def test_aht_runs_from_assignment_to_the_end_of_wrap_up(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    queue_id = await _queue(client, admin, "billing", wrap_up_seconds=60)
    customer = await _customer(client, admin, "iron")
    lin = await _agent(client, admin, "lin")
    first = await _raised(client, admin, queue="billing", customer=customer)
    second = await _raised(client, admin, queue="billing", customer=customer)
    for interaction_id in (first, second):
        await _handled(connection, interaction_id, lin)

    rows = await connection.fetch(
        "SELECT state, assigned_at, wrap_up_at, ended_at FROM interactions ORDER BY created_at"
    )
    assert [row["state"] for row in rows] == ["completed", "completed"]
    assert all(r["assigned_at"] < r["wrap_up_at"] < r["ended_at"] for r in rows)
    moment = max(row["ended_at"] for row in rows)
    aht = await figures.read_aht(connection, queue_id, [Channel.voice], moment)
    expected = statistics.fmean((r["ended_at"] - r["assigned_at"]).total_seconds() for r in rows)
    assert aht is not None
    assert aht.handled == 2
    assert aht.seconds == pytest.approx(expected, abs=1e-6)

    # With known durations: 200 s and 100 s of talk and wrap-up.
    await _took(connection, first, 200, moment)
    await _took(connection, second, 100, moment)
    assert await figures.read_aht(connection, queue_id, [Channel.voice], moment) == HandleTime(
        150.0, 2
    )


async def test_aht_counts_the_queues_completed_work_on_the_channels_within_the_window(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    billing = await _queue(client, admin, "billing", wrap_up_seconds=0)
    await _queue(client, admin, "sales", wrap_up_seconds=0)
    customer = await _customer(client, admin, "iron")
    lin = await _agent(client, admin, "lin", capacity={"voice": 1, "chat": 3, "email": 2})
    moment = NOW

    async def handled(seconds: float, ago: float, queue: str, channel: str = "voice") -> uuid.UUID:
        interaction_id = await _raised(
            client, admin, queue=queue, customer=customer, channel=channel
        )
        await _handled(connection, interaction_id, lin)
        await _took(connection, interaction_id, seconds, moment - timedelta(seconds=ago))
        return interaction_id

    await handled(100, ago=0, queue="billing")  # counts: ended at the moment itself
    await handled(300, ago=3599, queue="billing")  # counts: within the hour
    await handled(5000, ago=3600, queue="billing")  # an hour ago exactly: out
    await handled(7000, ago=-1, queue="billing")  # after the moment: out
    await handled(400, ago=10, queue="billing", channel="callback")
    await handled(900, ago=10, queue="billing", channel="chat")
    await handled(8000, ago=10, queue="sales")  # another queue
    # Held, not ended: still in talk, and abandoned in talk.
    talking = await _raised(client, admin, queue="billing", customer=customer)
    gone = await _raised(client, admin, queue="billing", customer=customer)
    for interaction_id, state in ((talking, "assigned"), (gone, "abandoned")):
        await connection.execute(
            "UPDATE interactions SET state = $2, assigned_at = $3, ended_at = $4 WHERE id = $1",
            interaction_id,
            state,
            moment - timedelta(seconds=9000),
            moment if state == "abandoned" else None,
        )

    voice = await figures.read_aht(connection, billing, [Channel.voice], moment)
    calls = await figures.read_aht(
        connection, billing, figures.same_capacity(Channel.voice), moment
    )
    chats = await figures.read_aht(connection, billing, [Channel.chat], moment)
    emails = await figures.read_aht(connection, billing, [Channel.email], moment)
    shorter = await figures.read_aht(
        connection, billing, [Channel.voice], moment, window=timedelta(minutes=5)
    )

    assert voice == HandleTime(200.0, 2)
    assert calls == HandleTime(800 / 3, 3)
    assert chats == HandleTime(900.0, 1)
    assert emails is None
    assert shorter == HandleTime(100.0, 1)


async def test_the_position_read_is_the_policys_for_every_waiting_interaction(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    """Tiers, priorities and waits at random over two queues and every channel: each waiting
    interaction's position read in one statement is the one `position_in_line` gives over the
    waiting work as a matcher pass reads it."""
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing", aging_factor=0.37)
    await _queue(
        client,
        admin,
        "sales",
        aging_factor=1.9,
        tier_weights={"platinum": 12.5, "gold": 7.25, "iron": 3, "lead": 0.1},
    )
    rng = random.Random(14)
    customers = [await _customer(client, admin, t) for t in ("platinum", "gold", "iron", "lead")]
    raised = []
    for _ in range(24):
        interaction_id = await _raised(
            client,
            admin,
            queue=rng.choice(("billing", "sales")),
            customer=rng.choice(customers),
            channel=rng.choice(("voice", "voice", "callback", "chat", "email")),
            priority=rng.choice((0, 0, 3, 10)),
        )
        waited = timedelta(seconds=rng.choice((0.0, 1.5, 7.25, 30.0, 30.0)))
        await connection.execute(
            "UPDATE interactions SET waiting_since = waiting_since - $2::interval WHERE id = $1",
            interaction_id,
            waited,
        )
        raised.append(interaction_id)
    moment = datetime.now(UTC)

    everything = await connection.fetch(waiting.WAITING, 1000, moment, None, None, None, 1000)
    needed = {row["queue_id"] for row in everything}
    queues = await QueueBook().settings(connection, everything[0]["queues_version"], needed)
    items = await waiting.waiting_items(connection, queues, everything)
    rules = {queue_id: queue.rules for queue_id, queue in queues.items()}

    read = [await figures.read_position(connection, i, moment) for i in raised]
    expected = [figures.position_in_line(i, items, rules, moment) for i in raised]
    assert read == expected
    assert max(p or 0 for p in read) >= 3  # a line, not everyone first


async def test_an_interaction_that_does_not_wait_has_no_position(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing")
    customer = await _customer(client, admin, "iron")
    lin = await _agent(client, admin, "lin")
    handled = await _raised(client, admin, queue="billing", customer=customer)
    await _handled(connection, handled, lin)
    assert await figures.read_position(connection, handled, datetime.now(UTC)) is None
    assert await figures.read_position(connection, uuid.uuid4(), datetime.now(UTC)) is None
    assert await figures.read_caller_wait(connection, handled, datetime.now(UTC)) is None


async def test_the_staffed_agents_hold_the_queues_skills_and_are_in_routing(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    billing = await _queue(client, admin, "billing")
    anyone = await _queue(client, admin, "anyone", required_skills=[])
    voice_only = {"voice": 1, "chat": 0, "email": 0}
    ready = await _agent(client, admin, "ready")  # available
    busy = await _agent(client, admin, "busy")
    wrapping = await _agent(client, admin, "wrapping")
    novice = await _agent(client, admin, "novice", level=1)  # below the queue's level 2
    away = await _agent(client, admin, "away")
    never_connected = await _agent(client, admin, "never")
    lapsed = await _agent(client, admin, "lapsed")
    mute = await _agent(client, admin, "mute", capacity={"voice": 0, "chat": 3, "email": 2})
    caller = await _agent(client, admin, "caller", capacity=voice_only)
    for agent_id in (ready, busy, wrapping, novice, away, lapsed, mute, caller):
        await present_desk(connection, agent_id)
    for agent_id, state in ((busy, "busy"), (wrapping, "wrap_up"), (away, "away")):
        await connection.execute("UPDATE agents SET state = $2 WHERE id = $1", agent_id, state)
    await present_desk(connection, lapsed, lease=uuid.uuid4())
    await connection.execute(
        "UPDATE replicas SET lease_until = now() - interval '1 second'"
        " WHERE id = (SELECT replica_id FROM agent_presence WHERE agent_id = $1)",
        lapsed,
    )
    deactivated = await _agent(client, admin, "deactivated")
    await present_desk(connection, deactivated)
    await connection.execute(
        "UPDATE users SET is_active = false WHERE id = (SELECT user_id FROM agents WHERE id = $1)",
        deactivated,
    )
    assert never_connected  # made, never present: offline

    staffed = figures.read_staffed_agents
    assert await staffed(connection, billing, Channel.voice) == 4  # ready, busy, wrapping, caller
    assert await staffed(connection, billing, Channel.callback) == 4
    assert await staffed(connection, billing, Channel.chat) == 4  # ready, busy, wrapping, mute
    assert await staffed(connection, anyone, Channel.voice) == 5  # and the novice
    assert await staffed(connection, uuid.uuid4(), Channel.voice) == 5  # no queue: no skills


async def test_a_callers_wait_is_read_with_its_figures(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    queue_id = await _queue(client, admin, "billing", wrap_up_seconds=0)
    customer = await _customer(client, admin, "iron")
    lin = await _agent(client, admin, "lin")
    for seconds in (200, 400):
        done = await _raised(client, admin, queue="billing", customer=customer)
        await _handled(connection, done, lin)
        await _took(connection, done, seconds, datetime.now(UTC))
    waiting_ = [await _raised(client, admin, queue="billing", customer=customer) for _ in range(3)]
    await _raised(client, admin, queue="billing", customer=customer, channel="email")
    for name in ("mei", "ana"):
        await present_desk(connection, await _agent(client, admin, name))
    await present_desk(connection, lin)

    told = await figures.read_caller_wait(connection, waiting_[2], datetime.now(UTC))

    assert told is not None
    assert (told.queue_id, told.channel, told.position) == (queue_id, Channel.voice, 3)
    assert told.aht == HandleTime(300.0, 2)
    assert told.staffed == 3
    assert told.estimated == timedelta(seconds=300)  # 3 * 300 s / 3 agents


async def test_each_figure_is_read_from_an_index(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    """On a table this small PostgreSQL would scan it whole; with scans discouraged, each read
    shows the index that serves it on a large one."""
    await create_skills(client, admin, "billing")
    queue_id = await _queue(client, admin, "billing")
    async with connection.transaction():
        await connection.execute("SET LOCAL enable_seqscan = off")
        aht_plan = await _plan(
            connection, figures.AHT, queue_id, ["voice"], NOW, timedelta(hours=1)
        )
        position_plan = await _plan(connection, figures.POSITION, uuid.uuid4(), NOW)
    assert "ix_interactions_handled" in aht_plan
    assert "ix_interactions_waiting" in position_plan
    assert "Seq Scan on interactions" not in aht_plan + position_plan


async def _plan(connection: asyncpg.Connection, statement: str, *arguments: Any) -> str:
    rows = await connection.fetch(f"EXPLAIN {statement}", *arguments)
    return "\n".join(row[0] for row in rows)


# --- the estimator on a simulated queue ---------------------------------------------------------

# AHT 240 s at 85% occupancy; 30,000 arrivals a run (some 100 hours of one agent's traffic, 7
# hours of 20 agents') after four hours of warm-up, three seeds per figure: a tenth of a second
# a run.
AHT_SECONDS = 240.0
ARRIVALS = 30_000
SEEDS = (1, 2, 3)
TARGET = 0.25


def _measured(handle_time: sim.HandleTimes, agents: int) -> list[sim.Waited]:
    callers: list[sim.Waited] = []
    for seed in SEEDS:
        callers += sim.simulate(
            agents=agents,
            occupancy=0.85,
            handle_time=handle_time,
            mean_handle=AHT_SECONDS,
            arrivals=ARRIVALS,
            seed=seed,
        )
    return callers


def test_the_simulation_runs_at_85_percent_occupancy_and_callers_wait() -> None:
    """The simulated queue is the one meant: callers who wait are a real share, and the AHT
    the estimator is given is close to the handle-time mean."""
    callers = _measured(sim.lognormal(AHT_SECONDS, 1.0), agents=20)
    assert len(callers) > 0.2 * ARRIVALS * len(SEEDS)  # Erlang C at 85%, 20 agents: ~0.35
    positions = [c.position for c in callers]
    assert 4 < statistics.fmean(positions) < 10  # geometric, mean 1 / (1 - 0.85) = 6.7
    implied_aht = statistics.fmean(c.estimate * 20 / c.position for c in callers)
    assert implied_aht == pytest.approx(AHT_SECONDS, rel=0.05)


def test_the_estimate_is_right_on_average_at_each_position() -> None:
    """Per position told: the mean wait of the callers who stood there against the estimate
    they were told. Log-normal handle times (coefficient of variation 1; call centres' handle
    times are close to log-normal: Brown et al. 2005), 20 agents: the target holds, far
    inside it (measured: median over positions 3%, none above 10%)."""
    errors = sim.calibration_errors(_measured(sim.lognormal(AHT_SECONDS, 1.0), agents=20))
    assert len(errors) >= 10
    assert statistics.median(errors.values()) <= TARGET
    assert max(errors.values()) <= TARGET


@pytest.mark.parametrize(
    ("name", "handle_time", "agents"),
    [
        ("exponential", sim.exponential(AHT_SECONDS), 20),
        ("log-normal, cv 1", sim.lognormal(AHT_SECONDS, 1.0), 20),
        ("log-normal, cv 0.6", sim.lognormal(AHT_SECONDS, 0.6), 5),
    ],
)
def test_a_single_callers_wait_misses_the_target_as_erlangs_model_says_it_must(
    name: str, handle_time: sim.HandleTimes, agents: int
) -> None:
    """Per caller: |estimate - actual wait| / actual wait, over the callers who waited, told
    on arrival. The target does NOT hold here: the median is 28-34% (docs/metrics.md has the
    table). It cannot, with exponential handle times: the wait of the k-th in line is then a
    sum of k exponential gaps between agents freeing up (a Gamma(k) wait) whatever else is
    known, k is geometric with mean 6.7 at 85% occupancy, and no multiple of the estimate
    gets the median below 30% (`_erlang_floor`). This test pins the measured figure, so that
    a better estimator, or a broken one, shows."""
    error = sim.median_error(_measured(handle_time, agents))
    assert TARGET < error < 0.36, f"{name}: {error:.3f}"


def test_a_single_callers_wait_is_within_the_target_when_handle_times_vary_little() -> None:
    """Per caller, as above, with handle times that vary little (gamma, cv 0.25: a scripted
    call) and a team of one: the agents free up nearly on a clock, and the target holds
    (measured 21%). With 20 such agents it does not (34%): their ends interleave at random."""
    few = sim.median_error(_measured(sim.gamma(AHT_SECONDS, 0.25), agents=1))
    many = sim.median_error(_measured(sim.gamma(AHT_SECONDS, 0.25), agents=20))
    assert few <= TARGET
    assert many > TARGET


def test_the_simulated_per_caller_error_is_erlangs_floor() -> None:
    """With exponential handle times the simulation agrees with the theory of the last test:
    the per-caller median error is that of Gamma(k) waits with k geometric, computed apart,
    with the true AHT (the simulation's is measured over an hour, a little noisier)."""
    simulated = sim.median_error(_measured(sim.exponential(AHT_SECONDS), agents=20))
    assert simulated == pytest.approx(_erlang_floor(), abs=0.04)


def _erlang_floor(callers: int = 100_000) -> float:
    """The median |k - G| / G, G ~ Gamma(k, 1), k ~ geometric with P(k) = 0.15 * 0.85^(k-1):
    a waiting caller's position and wait (in units of AHT / agents) in Erlang's model at 85%."""
    rng = random.Random(7)
    errors = []
    for _ in range(callers):
        k = 1
        while rng.random() < 0.85:
            k += 1
        wait = rng.gammavariate(k, 1.0)
        errors.append(abs(k - wait) / wait)
    return statistics.median(errors)


async def test_work_held_back_until_later_stands_ahead_of_no_caller(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    await _queue(client, admin, "billing")
    customer = await _customer(client, admin, "platinum")
    voicemail = await _raised(client, admin, queue="billing", customer=customer)
    caller = await _raised(client, admin, queue="billing", customer=customer)
    now = datetime.now(UTC)
    # The platinum voicemail's callback waits until tomorrow's opening, as a voicemail does.
    await connection.execute(
        "UPDATE interactions SET not_before = $2 WHERE id = $1", voicemail, now + timedelta(days=1)
    )

    assert await figures.read_position(connection, caller, now) == 1
    assert await figures.read_position(connection, voicemail, now + timedelta(days=2)) == 1
    assert await figures.read_position(connection, caller, now + timedelta(days=2)) == 2

"""The queues' report: the roll-up's fold on hand-built histories, the roll-up on a real
database (one replica a round, each event once), and the report's intervals in a queue's zone
across a daylight-saving change, over HTTP as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from app.core import pg
from app.core.events import Events
from app.core.hub import record_of
from app.core.settings import Settings
from app.queues.models import AbandonPolicy
from app.routing import service as routing
from app.routing.figures import ServiceRules
from app.supervisor import agent_rollup, rollups
from app.supervisor.ledger import Ledger, QueueSettings
from tests.supervisor.conftest import raised_on_billing
from tests.support import create_skills, offered_as_a_pass_writes, settings_with_passes_on_demand

Headers = dict[str, str]
QUEUE = uuid.UUID(int=1)
RULES = ServiceRules(
    target_seconds=20, abandon_policy=AbandonPolicy.against, short_abandon_seconds=5
)
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def row(n: int, kind: str, at: datetime, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An EVENTS row as the roll-up reads it."""
    return {
        "id": n,
        "occurred_at": at,
        "kind": kind,
        "subject_type": kind.split(".")[0],
        "subject_id": str(uuid.UUID(int=500 + n)),
        "actor": "test",
        "payload": json.dumps(payload),
        "tier": extra.get("tier", "gold"),
        "ended_in": extra.get("ended_in"),
        "row_channel": extra.get("row_channel", "voice"),
        "handle_seconds": extra.get("handle_seconds"),
    }


def test_the_fold_counts_each_wait_in_the_quarter_it_ended_by_channel_and_tier() -> None:
    ledger = Ledger({QUEUE: QueueSettings(ZoneInfo("UTC"), RULES)})
    q = str(QUEUE)
    history = [
        row(1, "interaction.queued", T0, {"channel": "voice", "queue_id": q}),
        row(2, "interaction.queued", T0, {"channel": "chat", "queue_id": q}, tier="platinum"),
        row(3, "interaction.assigned", T0 + timedelta(minutes=14, seconds=50),
            {"from": "offered", "queue_id": q, "channel": "voice", "waited_seconds": 890}),
        row(4, "interaction.abandoned", T0 + timedelta(minutes=16),
            {"from": "queued", "queue_id": q, "channel": "chat", "waited_seconds": 12},
            tier="platinum"),
        row(5, "interaction.completed", T0 + timedelta(minutes=20),
            {"from": "wrap_up", "agent_id": None}, ended_in=QUEUE, handle_seconds=300.0),
    ]  # fmt: skip
    sums = rollups.fold(ledger, agent_rollup.read(history))
    first, second = T0, T0 + timedelta(minutes=15)
    voice = sums[(first, QUEUE, "voice", "gold")]
    assert (voice.tally.offered, voice.tally.answered, voice.tally.answered_in_target) == (1, 1, 0)
    assert voice.longest_wait_seconds == 890
    chat_joined = sums[(first, QUEUE, "chat", "platinum")]
    assert chat_joined.tally.offered == 1
    chat_left = sums[(second, QUEUE, "chat", "platinum")]
    assert (chat_left.tally.abandoned, chat_left.tally.abandoned_in_target) == (1, 1)
    handled = sums[(second, QUEUE, "voice", "gold")]
    assert (handled.handled, handled.handle_seconds) == (1, 300.0)


# --- on PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


@pytest.fixture
async def connection(
    app: FastAPI, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[asyncpg.Connection]:
    """The matcher and the app's own roll-up stopped: the test answers the work by routing's
    calls and runs the roll-up's rounds itself, each reading the log to its end (no lag)."""
    monkeypatch.setattr(rollups, "LAG", timedelta(0))
    await app.state.matcher.stop()
    await app.state.rollups.stop()
    opened = await pg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _center(client: httpx.AsyncClient, admin: Headers) -> tuple[uuid.UUID, str, uuid.UUID]:
    await create_skills(client, admin, "billing")
    body = {"name": "billing", "short_abandon_seconds": 3}
    queue_id = uuid.UUID((await client.post("/v1/queues", json=body, headers=admin)).json()["id"])
    customer = await client.post(
        "/v1/customers", json={"name": "Ann", "tier": "platinum"}, headers=admin
    )
    agent = {"username": "lin", "display_name": "Lin", "skills": [{"skill": "billing", "level": 3}]}
    lin = uuid.UUID((await client.post("/v1/agents", json=agent, headers=admin)).json()["id"])
    return queue_id, customer.json()["id"], lin


async def test_the_report_tells_what_routing_did_and_each_event_is_rolled_up_once(
    connection: asyncpg.Connection,
    client: httpx.AsyncClient,
    admin: Headers,
) -> None:
    queue_id, customer, lin = await _center(client, admin)
    answered = await raised_on_billing(client, admin, customer)
    gone = await raised_on_billing(client, admin, customer)
    offer = await offered_as_a_pass_writes(connection, answered, lin)
    await routing.accept_offer(connection, Events(), offer, agent_id=lin, actor="agent:lin")
    await routing.complete(
        connection, Events(), answered, disposition="done", notes="", agent_id=lin, actor="lin"
    )
    await connection.execute(
        "UPDATE interactions SET waiting_since = now() - interval '40 seconds' WHERE id = $1", gone
    )
    assert (await client.post(f"/v1/interactions/{gone}/abandon", headers=admin)).is_success

    assert await rollups.roll_up(connection) > 0
    assert await rollups.roll_up(connection) == 0  # the mark moved past them: nothing twice

    params = {
        "interval": "15",
        "by": "tier",
        "from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    }
    response = await client.get("/v1/reports/queues", params=params, headers=admin)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    totals = {
        name: sum(r[name] for r in rows if r["queue_id"] == str(queue_id))
        for name in ("offered", "answered", "abandoned", "short_abandoned")
    }
    assert totals == {"offered": 2, "answered": 1, "abandoned": 1, "short_abandoned": 0}
    assert {r["tier"] for r in rows} == {"platinum"}
    assert max(r["longest_wait_s"] for r in rows) == pytest.approx(40, abs=2)

    csv_response = await client.get(
        "/v1/reports/queues", params={**params, "format": "csv"}, headers=admin
    )
    assert csv_response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(csv_response.text)))
    assert sum(int(r["offered"]) for r in table) == 2
    assert table[0]["tier"] == "platinum"


async def test_a_round_skips_while_another_replica_holds_the_mark(
    connection: asyncpg.Connection,
    database_url: str,
    client: httpx.AsyncClient,
    admin: Headers,
) -> None:
    _, customer, _ = await _center(client, admin)
    await raised_on_billing(client, admin, customer)
    other = await pg.connect(database_url)
    try:
        await other.execute(rollups.ENSURE_MARK, rollups.NAME)
        async with other.transaction():
            assert await other.fetchval(rollups.LOCK_MARK, rollups.NAME) == 0
            assert await rollups.roll_up(connection) == 0  # the other holds it: skipped
        assert await rollups.roll_up(connection) > 0
    finally:
        await other.close()


async def test_intervals_are_the_queues_clock_and_the_repeated_hour_stays_two(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    hours = {"timezone": "Europe/Paris", "weekly": {}}
    body = {"name": "paris", "business_hours": hours}
    queue_id = uuid.UUID((await client.post("/v1/queues", json=body, headers=admin)).json()["id"])
    # 25 October 2026: 03:00 CEST becomes 02:00 CET, at 01:00 UTC. A call answered in each
    # quarter from 00:00 to 01:45 UTC: 02:00-02:45 local twice, an hour apart.
    for n in range(8):
        await connection.execute(
            "INSERT INTO queue_quarters (quarter, queue_id, channel, tier, offered, answered,"
            " answered_in_target) VALUES ($1, $2, 'voice', 'gold', 1, 1, 1)",
            datetime(2026, 10, 25, 0, 0, tzinfo=UTC) + timedelta(minutes=15 * n),
            queue_id,
        )
    params = {"from": "2026-10-24T22:00:00+00:00", "to": "2026-10-25T23:00:00+00:00"}
    hourly = await client.get(
        "/v1/reports/queues", params={**params, "interval": "60"}, headers=admin
    )
    assert hourly.status_code == 200, hourly.text
    starts = [(r["starts"], r["offered"]) for r in hourly.json()["rows"]]
    assert starts == [("2026-10-25T00:00:00+00:00", 4), ("2026-10-25T01:00:00+00:00", 4)]
    daily = await client.get(
        "/v1/reports/queues", params={**params, "interval": "day"}, headers=admin
    )
    [day] = daily.json()["rows"]
    assert (day["starts"], day["offered"], day["service_level"]) == (
        "2026-10-24T22:00:00+00:00",
        8,
        1.0,
    )
    assert day["time_zone"] == "Europe/Paris"


async def test_too_many_intervals_are_refused_naming_the_interval(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    params = {"from": "2025-01-01", "to": "2026-12-01", "interval": "15"}
    response = await client.get("/v1/reports/queues", params=params, headers=admin)
    assert response.status_code == 422
    assert "interval" in response.text


# --- the agents' part -----------------------------------------------------------------------------

LIN = uuid.UUID(int=7)


def test_an_agents_time_goes_to_its_states_and_its_held_time_to_handling() -> None:
    lin = str(LIN)
    history = [
        row(1, "agent.state_changed", T0, {"from": "offline", "to": "available"}),
        row(2, "interaction.assigned", T0 + timedelta(minutes=5),
            {"from": "offered", "agent_id": lin}),
        row(3, "interaction.completed", T0 + timedelta(minutes=20),
            {"from": "wrap_up", "agent_id": lin}, handle_seconds=900.0),
        row(4, "agent.state_changed", T0 + timedelta(minutes=25),
            {"from": "available", "to": "away"}),
    ]  # fmt: skip
    for r in history:
        if r["kind"] == "agent.state_changed":
            r["subject_id"] = lin
    marks: dict[uuid.UUID, agent_rollup.Standing] = {}
    sums = agent_rollup.fold_agents(marks, agent_rollup.read(history), T0 + timedelta(minutes=30))
    first, second = sums[(T0, LIN)], sums[(T0 + timedelta(minutes=15), LIN)]
    assert (first.seconds["available"], first.handling) == (900, 600)
    assert (second.seconds["available"], second.seconds["away"], second.handling) == (600, 300, 300)
    assert (second.handled, second.handle_seconds) == (1, 900.0)
    assert marks[LIN] == agent_rollup.Standing("away", 0, T0 + timedelta(minutes=30))
    # the next round goes on from the mark: the away time after the cut-off
    later = agent_rollup.fold_agents(marks, [], T0 + timedelta(minutes=40))
    assert later[(T0 + timedelta(minutes=30), LIN)].seconds["away"] == 600


async def test_the_agents_report_tells_the_work_and_the_time_of_each_agent(
    connection: asyncpg.Connection,
    client: httpx.AsyncClient,
    admin: Headers,
) -> None:
    _, customer, lin = await _center(client, admin)
    await connection.execute("UPDATE agents SET state = 'available' WHERE id = $1", lin)
    call = await raised_on_billing(client, admin, customer)
    offer = await offered_as_a_pass_writes(connection, call, lin)
    await routing.accept_offer(connection, Events(), offer, agent_id=lin, actor="agent:lin")
    await routing.complete(
        connection, Events(), call, disposition="done", notes="", agent_id=lin, actor="lin"
    )
    ended = Events()
    async with connection.transaction():
        await routing.end_wrap_up(connection, ended, call, agent_id=lin, actor="lin")
        await ended.write(connection)
    assert await rollups.roll_up(connection) > 0

    params = {"interval": "day", "agent_id": str(lin)}
    response = await client.get("/v1/reports/agents", params=params, headers=admin)
    assert response.status_code == 200, response.text
    [day] = response.json()["rows"]
    assert (day["agent"], day["handled"]) == ("Lin", 1)
    assert day["aht_s"] is not None
    assert day["busy_s"] + day["wrap_up_s"] > 0  # busy from the accept, then its wrap-up
    assert day["occupancy"] is not None
    assert 0 < day["occupancy"] <= 1
    table = await client.get(
        "/v1/reports/agents", params={**params, "format": "csv"}, headers=admin
    )
    assert next(csv.DictReader(io.StringIO(table.text)))["handled"] == "1"


# --- a queue's occupancy: that of the agents who qualify for it ----------------------------------


async def _agent(client: httpx.AsyncClient, admin: Headers, name: str, skill: str) -> str:
    body = {"username": name, "display_name": name, "skills": [{"skill": skill, "level": 2}]}
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_queues_occupancy_is_that_of_the_agents_holding_its_skills(
    connection: asyncpg.Connection,
    client: httpx.AsyncClient,
    admin: Headers,
) -> None:
    await create_skills(client, admin, "billing", "sales")
    queues = {}
    for name in ("billing", "sales"):
        body = {"name": name, "required_skills": [{"skill": name, "level": 1}]}
        response = await client.post("/v1/queues", json=body, headers=admin)
        queues[name] = response.json()["id"]
    lin = await _agent(client, admin, "lin", "billing")
    max_ = await _agent(client, admin, "max", "sales")
    # on the hour: the half hour is one interval of the report
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    at = [start + timedelta(minutes=m) for m in range(31)]
    call = str(uuid.uuid4())
    history = [  # Lin (billing) holds a call from 09:05 to 09:20 and goes away at 09:25;
        # Max (sales) is available for the half hour and holds nothing
        (at[0], "agent.state_changed", "agent", lin, {"from": "offline", "to": "available"}),
        (at[0], "agent.state_changed", "agent", max_, {"from": "offline", "to": "available"}),
        (at[5], "interaction.assigned", "interaction", call,
         {"from": "offered", "agent_id": lin, "queue_id": queues["billing"], "channel": "voice",
          "waited_seconds": 4.0}),
        (at[10], "interaction.abandoned", "interaction", str(uuid.uuid4()),
         {"from": "queued", "queue_id": queues["sales"], "channel": "voice",
          "waited_seconds": 30.0}),
        (at[20], "interaction.completed", "interaction", call,
         {"from": "wrap_up", "agent_id": lin}),
        (at[25], "agent.state_changed", "agent", lin, {"from": "available", "to": "away"}),
        (at[30], "agent.state_changed", "agent", max_, {"from": "available", "to": "offline"}),
    ]  # fmt: skip
    await connection.executemany(
        "INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)"
        " VALUES ($1, $2, $3, $4, 'test', $5)",
        history,
    )
    assert await rollups.roll_up(connection) > 0

    params = {
        "interval": "30",
        "from": start.isoformat(),
        "to": (start + timedelta(minutes=30)).isoformat(),
    }
    response = await client.get("/v1/reports/queues", params=params, headers=admin)
    assert response.status_code == 200, response.text
    rows = {r["queue"]: r for r in response.json()["rows"]}
    # Billing: Lin's 25 staffed minutes, 15 of them holding the call. Sales: Max's 30, idle.
    assert (rows["billing"]["staffed_s"], rows["billing"]["occupancy"]) == (1500, 0.6)
    assert (rows["sales"]["staffed_s"], rows["sales"]["occupancy"]) == (1800, 0)
    table = await client.get(
        "/v1/reports/queues", params={**params, "format": "csv"}, headers=admin
    )
    by_queue = {r["queue"]: r for r in csv.DictReader(io.StringIO(table.text))}
    assert by_queue["billing"]["occupancy"] == "0.6"


# --- a report and the live view count alike ------------------------------------------------------

WAYS = ["answered", "abandoned", "expired", "converted"]


@examples(max_examples=40, deadline=None)
@given(
    waits=st.lists(
        st.tuples(st.integers(0, 6 * 60), st.integers(0, 600), st.sampled_from(WAYS)),
        max_size=30,
    )
)
def test_the_roll_up_sums_to_the_live_ledgers_tally(waits: list[tuple[int, int, str]]) -> None:
    """Over random histories, the quarters the roll-up writes add up, quarter by quarter, to
    what the live ledger tells for the same quarter: one fold, two keepers."""
    ledger = Ledger({QUEUE: QueueSettings(ZoneInfo("UTC"), RULES)})
    live = Ledger({QUEUE: QueueSettings(ZoneInfo("UTC"), RULES)})
    q, history = str(QUEUE), []
    for n, (joined, waited, how) in enumerate(waits):
        at = T0 + timedelta(minutes=joined)
        history.append(row(2 * n, "interaction.queued", at, {"channel": "voice", "queue_id": q}))
        kind = "interaction.assigned" if how == "answered" else f"interaction.{how}"
        payload = {"from": "queued" if how != "answered" else "offered", "queue_id": q,
                   "channel": "voice", "waited_seconds": waited}  # fmt: skip
        history.append(row(2 * n + 1, kind, at + timedelta(seconds=waited), payload))
    history.sort(key=lambda r: (r["occurred_at"], r["id"]))
    sums = rollups.fold(ledger, agent_rollup.read(history))
    for r in history:
        live.apply(record_of(r))
    for (quarter, _, _, _), added in sums.items():
        end = quarter + timedelta(minutes=14)
        assert added.tally == live.tally(QUEUE, quarter, end)

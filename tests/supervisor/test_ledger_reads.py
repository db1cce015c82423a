"""The live ledger on a real PostgreSQL: the events routing writes say what the figures need
(the queue a wait left, how long it waited), and a ledger seeded from the log tells the
figures of what really happened, with the queue's settings and zone as the API set them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core import pg
from app.core.events import Events
from app.core.hub import record_of
from app.core.settings import Settings
from app.queues.models import AbandonPolicy
from app.routing import service as routing
from app.supervisor.ledger import Ledger
from app.supervisor.ledger_reads import read_queue_periods, read_queue_settings, seed_ledger, take
from tests.supervisor.conftest import raised_on_billing
from tests.support import create_skills, offered_as_a_pass_writes, settings_with_passes_on_demand

Headers = dict[str, str]
PARIS_HOURS = {"timezone": "Europe/Paris", "weekly": {}}


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


@pytest.fixture
async def connection(app: FastAPI, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The matcher stopped: the test offers and answers the work itself, by routing's calls."""
    await app.state.matcher.stop()
    opened = await pg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _answered(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, agent_id: uuid.UUID
) -> None:
    """Offered as a pass writes it, then accepted by routing's own call, as the desk makes it."""
    offer_id = await offered_as_a_pass_writes(connection, interaction_id, agent_id)
    actor = f"agent:{agent_id}"
    await routing.accept_offer(connection, Events(), offer_id, agent_id=agent_id, actor=actor)


async def _waited(connection: asyncpg.Connection, interaction_id: uuid.UUID, s: float) -> None:
    await connection.execute(
        "UPDATE interactions SET waiting_since = now() - make_interval(secs => $2) WHERE id = $1",
        interaction_id,
        s,
    )


async def test_a_ledger_seeded_from_the_log_tells_what_routing_did(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers, app: FastAPI
) -> None:
    await create_skills(client, admin, "billing")
    queue = {
        "name": "billing",
        "service_level": {"percent": 80, "seconds": 20},
        "abandon_policy": "against",
        "short_abandon_seconds": 8,
        "business_hours": PARIS_HOURS,
    }
    response = await client.post("/v1/queues", json=queue, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["short_abandon_seconds"] == 8
    queue_id = uuid.UUID(response.json()["id"])
    customer = (
        await client.post("/v1/customers", json={"name": "Ann", "tier": "gold"}, headers=admin)
    ).json()["id"]
    body = {"username": "lin", "display_name": "Lin", "skills": [{"skill": "billing", "level": 3}]}
    lin = uuid.UUID((await client.post("/v1/agents", json=body, headers=admin)).json()["id"])

    await connection.execute("UPDATE agents SET state = 'available' WHERE id = $1", lin)
    calls = [await raised_on_billing(client, admin, customer) for _ in range(5)]
    quick, slow, gone, brief, waiting = calls
    await _waited(connection, quick, 10)
    await _answered(connection, quick, lin)
    await _waited(connection, slow, 45)
    await routing.complete(  # into its wrap-up: lin still holds it
        connection, Events(), quick, disposition="done", notes="", agent_id=lin, actor="agent:lin"
    )
    await _answered(connection, slow, lin)
    await _waited(connection, gone, 30)
    await _waited(connection, brief, 3)
    for hung_up in (gone, brief):
        response = await client.post(f"/v1/interactions/{hung_up}/abandon", headers=admin)
        assert response.status_code == 200, response.text

    assigned = await connection.fetchrow(
        "SELECT payload FROM events WHERE kind = 'interaction.assigned' AND subject_id = $1",
        str(slow),
    )
    said = assigned["payload"]
    assert said["queue_id"] == str(queue_id)
    assert said["channel"] == "voice"
    assert said["waited_seconds"] == pytest.approx(45, abs=2)

    moment = datetime.now(UTC)
    book = Ledger()
    last = await connection.fetchval("SELECT max(id) FROM events")
    await seed_ledger(connection, book, moment, last)
    assert book.settings(queue_id).zone == ZoneInfo("Europe/Paris")
    assert book.settings(queue_id).rules.short_abandon_seconds == 8
    periods = await read_queue_periods(connection, book, queue_id, moment)
    tally = periods.today.tally
    assert tally.offered == 5
    assert (tally.answered, tally.answered_in_target, tally.abandoned) == (2, 1, 1)
    assert tally.short_abandoned == 1  # 3 s, under the queue's 8
    assert periods.today.service_level == pytest.approx(1 / 3)  # abandons against
    assert periods.today.asa_s == pytest.approx(27.5, abs=2)
    assert periods.today.aht_s is None  # nothing handled to its end yet
    assert periods.last_30_min.tally == tally
    assert waiting  # still in line: joined, not left
    # staffed the whole half hour (available before its first change), holding for seconds
    occupied = book.occupancy(lin, moment)
    assert occupied is not None
    assert 0 < occupied < 0.1


async def test_a_live_event_of_a_new_queue_is_counted_with_that_queues_settings(
    connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    book = Ledger()
    await seed_ledger(connection, book, datetime.now(UTC), 0)
    await create_skills(client, admin, "billing")
    body = {"name": "billing", "abandon_policy": "ignore", "short_abandon_seconds": 0}
    queue_id = uuid.UUID((await client.post("/v1/queues", json=body, headers=admin)).json()["id"])
    customer = (await client.post("/v1/customers", json={"name": "Bo"}, headers=admin)).json()["id"]
    interaction = await raised_on_billing(client, admin, customer)
    response = await client.post(f"/v1/interactions/{interaction}/abandon", headers=admin)
    assert response.status_code == 200, response.text
    rows = await connection.fetch(
        "SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload::text AS payload"
        " FROM events ORDER BY id"
    )
    for row in rows:
        await take(book, record_of(row), connection)
    assert book.settings(queue_id).abandon_policy is AbandonPolicy.ignore
    today = book.periods(queue_id, datetime.now(UTC) + timedelta(seconds=1)).today
    assert (today.tally.offered, today.tally.abandoned, today.tally.short_abandoned) == (1, 1, 0)
    assert (await read_queue_settings(connection))[queue_id].rules.short_abandon_seconds == 0

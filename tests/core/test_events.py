"""One way to write events: an ORM unit of work writes its session's outbox in its transaction
and hands it to the replica's hub after the commit, on a real PostgreSQL and a real hub."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.events import UnwrittenEvents, events_of
from app.core.hub import (
    HUB_APPLICATION,
    NOTIFY_CHANNEL,
    EventHub,
    EventRecord,
    Subscription,
    asyncpg_dsn,
)
from app.core.settings import Settings
from app.skills import service as skills
from app.skills.schemas import SkillCreate, SkillUpdate

Sessions = async_sessionmaker[AsyncSession]


class Refused(Exception):
    """The work of a unit of work failed after its change and its event."""


@pytest.fixture
async def sessions(settings: Settings, database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(settings, database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def log(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to read the event log as another session would."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


@pytest.fixture
async def hub(database_url: str) -> AsyncIterator[EventHub]:
    hub = EventHub(database_url, poll_interval=30)  # a delivery within seconds is not a poll's
    await hub.start()
    yield hub
    await hub.stop()


def _skills(hub: EventHub) -> Subscription:
    return hub.subscribe(lambda event: event.subject_type == "skill")


async def _logged(log: asyncpg.Connection, subject_type: str = "skill") -> list[dict[str, Any]]:
    rows = await log.fetch(
        "SELECT id, kind, subject_id, actor, payload::text FROM events"
        " WHERE subject_type = $1 ORDER BY id",
        subject_type,
    )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


def _as_logged(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "subject_id": e.subject_id,
            "actor": e.actor,
            "payload": e.payload,
        }
        for e in events
    ]


async def _create_skill(sessions: Sessions, hub: EventHub, name: str) -> str:
    async with unit_of_work(sessions, hub=hub) as session:
        skill = await skills.create_skill(session, SkillCreate(name=name), actor="t")
    return str(skill.id)


async def _create_then_refuse(sessions: Sessions, hub: EventHub) -> None:
    async with unit_of_work(sessions, hub=hub) as session:
        await skills.create_skill(session, SkillCreate(name="billing"), actor="t")
        raise Refused


async def _create_with_a_commit_that_fails(sessions: Sessions, hub: EventHub) -> None:
    async with unit_of_work(sessions, hub=hub) as session:
        # Checked only at the commit, after the unit of work has written its events.
        await session.execute(
            text(
                "CREATE TEMP TABLE once (n int UNIQUE DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"
            )
        )
        await session.execute(text("INSERT INTO once VALUES (1), (1)"))
        await skills.create_skill(session, SkillCreate(name="billing"), actor="t")


async def test_an_orm_change_s_event_is_rolled_back_with_it(
    sessions: Sessions, hub: EventHub, log: asyncpg.Connection
) -> None:
    desk = _skills(hub)
    with pytest.raises(Refused):
        await _create_then_refuse(sessions, hub)

    sales = await _create_skill(sessions, hub, "sales")

    # The next unit of work's event is the first the hub hands over: the failed one's never was.
    assert desk.queue.get_nowait().subject_id == sales
    assert [(e["kind"], e["subject_id"]) for e in await _logged(log)] == [("skill.created", sales)]
    assert await log.fetchval("SELECT count(*) FROM skills WHERE name = 'billing'") == 0


async def test_a_commit_that_fails_after_the_events_are_written_keeps_and_publishes_none(
    sessions: Sessions, hub: EventHub, log: asyncpg.Connection
) -> None:
    """The events are written before the commit; a commit refused by a deferred constraint
    takes them back, and the hub hears of them only once a commit has succeeded."""
    desk = _skills(hub)
    with pytest.raises(IntegrityError):
        await _create_with_a_commit_that_fails(sessions, hub)

    sales = await _create_skill(sessions, hub, "sales")

    assert desk.queue.get_nowait().subject_id == sales
    assert [(e["kind"], e["subject_id"]) for e in await _logged(log)] == [("skill.created", sales)]


async def test_events_are_written_in_the_order_they_were_added(
    sessions: Sessions, hub: EventHub, log: asyncpg.Connection
) -> None:
    desk = _skills(hub)
    async with unit_of_work(sessions, hub=hub) as session:
        billing = await skills.create_skill(session, SkillCreate(name="billing"), actor="ada")
        await skills.update_skill(session, billing, SkillUpdate(description="refunds"), actor="bo")
        sales = await skills.create_skill(session, SkillCreate(name="sales"), actor="ada")
        await skills.delete_skill(session, sales, actor="cy")
        written = events_of(session).written

    logged = await _logged(log)
    assert [(e["kind"], e["subject_id"], e["actor"], e["payload"]) for e in logged] == [
        ("skill.created", str(billing.id), "ada", {"name": "billing"}),
        ("skill.updated", str(billing.id), "bo", {"description": "refunds"}),
        ("skill.created", str(sales.id), "ada", {"name": "sales"}),
        ("skill.deleted", str(sales.id), "cy", {"name": "sales"}),
    ]
    assert _as_logged(written) == logged
    assert _as_logged([desk.queue.get_nowait() for _ in logged]) == logged


async def test_after_the_commit_the_replicas_hub_hands_the_events_over_at_once(
    sessions: Sessions, hub: EventHub, log: asyncpg.Connection
) -> None:
    """No NOTIFY from this transaction and no poll due: only the unit of work's hand-over can
    have brought the event by the time it returns."""
    desk = _skills(hub)
    async with unit_of_work(sessions, hub=hub) as session:
        await session.execute(text("SET LOCAL cc.notify TO 'off'"))
        await skills.create_skill(session, SkillCreate(name="billing"), actor="t")

    delivered = desk.queue.get_nowait()
    assert [delivered.kind, delivered.payload] == ["skill.created", {"name": "billing"}]
    assert _as_logged([delivered]) == await _logged(log)


async def _notified_by_its_writer(
    heard: asyncio.Queue[tuple[int, str]], event_id: int, hub_pids: set[int]
) -> None:
    """Returns once the trigger's NOTIFY of `event_id` came (not only a hub's announcement)."""
    async with asyncio.timeout(5):
        while True:
            pid, notified = await heard.get()
            if notified == str(event_id) and pid not in hub_pids:
                return


async def test_the_event_reaches_a_subscriber_once_though_its_notify_comes_too(
    sessions: Sessions, hub: EventHub, log: asyncpg.Connection
) -> None:
    """These connections are not the hub's own, so the trigger's NOTIFY still fires; the hub's
    read it wakes skips what the unit of work already handed over."""
    desk = _skills(hub)
    heard: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    await log.add_listener(NOTIFY_CHANNEL, lambda _c, pid, _ch, id_: heard.put_nowait((pid, id_)))
    billing = await _create_skill(sessions, hub, "billing")
    first = desk.queue.get_nowait()
    assert first.subject_id == billing
    hubs = await log.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1", HUB_APPLICATION
    )
    await _notified_by_its_writer(heard, first.id, {row["pid"] for row in hubs})

    # Committed elsewhere and never handed over: only the hub's read brings it, and that read
    # covers every id up to it, so a second copy of the first would come before it.
    marker = await log.fetchval(
        "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
        " VALUES ('skill.marked', 'skill', 'marker', 't', '{}') RETURNING id"
    )
    following = await asyncio.wait_for(desk.queue.get(), timeout=5)
    assert (following.id, following.kind) == (marker, "skill.marked")
    assert desk.queue.empty()


async def test_a_session_committed_without_its_unit_of_work_refuses_to_lose_its_events(
    sessions: Sessions, log: asyncpg.Connection
) -> None:
    with pytest.raises(UnwrittenEvents):
        async with sessions() as session, session.begin():
            await skills.create_skill(session, SkillCreate(name="billing"), actor="t")

    assert await _logged(log) == []
    assert await log.fetchval("SELECT count(*) FROM skills") == 0


async def test_a_request_s_events_go_to_its_replica_s_hub_after_its_commit(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    log: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub: EventHub = app.state.hub
    handed: list[EventRecord] = []
    publish = hub.publish

    def noting(events: Sequence[EventRecord]) -> None:
        handed.extend(events)
        publish(events)

    monkeypatch.setattr(hub, "publish", noting)
    desk = _skills(hub)

    created = await client.post("/v1/skills", json={"name": "billing"}, headers=admin)

    assert created.status_code == 201, created.text
    logged = await _logged(log)
    assert [(e["kind"], e["subject_id"]) for e in logged] == [
        ("skill.created", created.json()["id"])
    ]
    assert _as_logged(handed) == logged
    assert _as_logged([desk.queue.get_nowait()]) == logged

"""The event hub on a real PostgreSQL: events committed elsewhere reach the right subscribers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable

import asyncpg
from fastapi import FastAPI

from app.core.hub import EventHub, EventRecord, Subscription, asyncpg_dsn
from app.core.pg import Events
from app.routing.matcher import MATCHER_LOCK_KEY

AGENT_A = "0b9e2a52-6d0c-4a52-9c55-3c1f1f1f0001"
AGENT_B = "0b9e2a52-6d0c-4a52-9c55-3c1f1f1f0002"


async def _write(dsn: str, *events: tuple[str, str, str, dict[str, str]]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.executemany(
            "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
            " VALUES ($1, $2, $3, 'test', $4::jsonb)",
            [
                (kind, kind_of, subject, json.dumps(payload))
                for kind, kind_of, subject, payload in events
            ],
        )
    finally:
        await connection.close()


async def _drain(subscription: Subscription, count: int) -> list[EventRecord]:
    return [await asyncio.wait_for(subscription.queue.get(), timeout=5) for _ in range(count)]


async def test_an_agent_subscription_gets_its_own_events_and_a_predicate_gets_what_it_asks(
    database_url: str,
) -> None:
    hub = EventHub(database_url, poll_interval=0.2)
    await hub.start()
    try:
        desk_a = hub.subscribe_agent(AGENT_A)
        desk_b = hub.subscribe_agent(AGENT_B)
        queued = hub.subscribe(lambda event: event.kind == "interaction.queued")
        await _write(
            asyncpg_dsn(database_url),
            ("agent.state_changed", "agent", AGENT_A, {"to": "available"}),
            ("interaction.queued", "interaction", "i-1", {}),
            ("interaction.offered", "interaction", "i-1", {"agent_id": AGENT_B}),
            ("offer.accepted", "offer", "o-1", {"agent_id": AGENT_B}),
        )
        seen_by_a = await _drain(desk_a, 1)
        seen_by_b = await _drain(desk_b, 2)
        seen_queued = await _drain(queued, 1)
        await asyncio.sleep(0.5)  # nothing else arrives late
        assert [e.kind for e in seen_by_a] == ["agent.state_changed"]
        assert [e.kind for e in seen_by_b] == ["interaction.offered", "offer.accepted"]
        assert [e.kind for e in seen_queued] == ["interaction.queued"]
        assert desk_a.queue.empty()
        assert desk_b.queue.empty()
        assert queued.queue.empty()

        hub.unsubscribe(desk_b)
        await _write(
            asyncpg_dsn(database_url),
            ("offer.rejected", "offer", "o-1", {"agent_id": AGENT_B}),
            ("agent.state_changed", "agent", AGENT_A, {"to": "away"}),
        )
        assert [e.kind for e in await _drain(desk_a, 1)] == ["agent.state_changed"]
        await asyncio.sleep(0.5)
        assert desk_b.queue.empty()
    finally:
        await hub.stop()


async def test_events_published_by_their_writer_reach_a_desk_once_in_order(
    database_url: str,
) -> None:
    """The writer hands its committed events to the hub at once; the hub's own read of the
    same rows (woken by their NOTIFY) must not deliver them a second time."""
    hub = EventHub(database_url, poll_interval=0.2)
    await hub.start()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        desk = hub.subscribe_agent(AGENT_A)
        events = Events()
        events.add("agent.state_changed", subject_type="agent", subject_id=AGENT_A, actor="t")
        events.add(
            "interaction.offered",
            subject_type="interaction",
            subject_id="i-9",
            actor="t",
            payload={"agent_id": AGENT_A, "n": 1},
        )
        async with connection.transaction():
            await events.write(connection)
        hub.publish(events.written)
        first = [desk.queue.get_nowait() for _ in range(2)]  # delivered without waiting
        assert [e.kind for e in first] == ["agent.state_changed", "interaction.offered"]
        assert first[1].payload == {"agent_id": AGENT_A, "n": 1}
        stored = await connection.fetch(
            "SELECT id, kind FROM events WHERE id = ANY($1::bigint[])", [e.id for e in first]
        )
        assert sorted((r["id"], r["kind"]) for r in stored) == [(e.id, e.kind) for e in first]

        await _write(
            asyncpg_dsn(database_url), ("offer.rejected", "offer", "o-9", {"agent_id": AGENT_A})
        )
        later = await _drain(desk, 1)
        assert [e.kind for e in later] == ["offer.rejected"]
        await asyncio.sleep(0.5)  # the hub has read all three rows by now
        assert desk.queue.empty()
    finally:
        await connection.close()
        await hub.stop()


class CountsReads(EventHub):
    reads = 0  # reads of the log finished so far

    async def _fetch(self) -> None:
        await super()._fetch()
        self.reads += 1


async def test_the_notify_of_an_event_already_published_costs_no_read(database_url: str) -> None:
    hub = CountsReads(database_url, poll_interval=60)  # no polling: only a NOTIFY wakes a read
    await hub.start()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        desk = hub.subscribe_agent(AGENT_A)
        events = Events()
        events.add("agent.state_changed", subject_type="agent", subject_id=AGENT_A, actor="t")
        async with connection.transaction():
            await events.write(connection)
            # Handed over before the commit sends its NOTIFY: after it, the NOTIFY may come
            # first, and then a read is right (the event is not known here yet).
            hub.publish(events.written)
        await asyncio.sleep(0.5)  # its NOTIFY has come by now
        assert hub.reads == 0
        assert [e.kind for e in await _drain(desk, 1)] == ["agent.state_changed"]

        await _write(  # committed elsewhere: only a read brings it
            asyncpg_dsn(database_url), ("offer.rejected", "offer", "o-9", {"agent_id": AGENT_A})
        )
        assert [e.kind for e in await _drain(desk, 1)] == ["offer.rejected"]
        assert hub.reads >= 1
    finally:
        await connection.close()
        await hub.stop()


async def _commit_agent_event(connection: asyncpg.Connection, **payload: object) -> Events:
    events = Events()
    events.add(
        "agent.state_changed",
        subject_type="agent",
        subject_id=AGENT_A,
        actor="t",
        payload=dict(payload),
    )
    async with connection.transaction():
        await events.write(connection)
    return events


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_an_owned_connection_s_notify_costs_no_read_even_when_it_beats_the_publish(
    database_url: str,
) -> None:
    """The NOTIFY arrives before the writer publishes (as it often does under load): the hub
    leaves the event to the writer, so it goes out once, with what only the writer had."""
    hub = CountsReads(database_url, poll_interval=60)  # no polling: only a NOTIFY wakes a read
    await hub.start()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        hub.own(connection)
        desk = hub.subscribe_agent(AGENT_A)
        events = await _commit_agent_event(connection, to="available")
        await asyncio.sleep(0.5)  # its NOTIFY has come by now
        assert hub.reads == 0
        assert desk.queue.empty()
        hub.publish([dataclasses.replace(events.written[0], attached={"screen_pop": {"x": 1}})])
        delivered = desk.queue.get_nowait()
        assert delivered.id == events.written[0].id
        assert delivered.attached == {"screen_pop": {"x": 1}}
        await asyncio.sleep(0.3)
        assert hub.reads == 0
        assert desk.queue.empty()
    finally:
        await connection.close()
        await hub.stop()


async def test_an_event_an_owned_writer_commits_but_never_publishes_comes_by_the_poll(
    database_url: str,
) -> None:
    hub = CountsReads(database_url, poll_interval=1.0)
    await hub.start()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        hub.own(connection)
        desk = hub.subscribe_agent(AGENT_A)
        reads = hub.reads
        await _until(lambda: hub.reads > reads)  # a poll has just read: the next is 1 s away
        committed = time.monotonic()
        events = await _commit_agent_event(connection, to="away")
        await asyncio.sleep(0.3)
        assert desk.queue.empty(), "its NOTIFY woke a read"
        delivered = await asyncio.wait_for(desk.queue.get(), timeout=1.5)
        assert delivered == events.written[0]
        assert time.monotonic() - committed < 1.5
    finally:
        await connection.close()
        await hub.stop()


async def test_a_closed_owned_connection_s_pid_is_forgotten_and_its_successor_is_read(
    database_url: str,
) -> None:
    """PostgreSQL may give a gone session's PID to a new one: the hub must read its events."""
    dsn = asyncpg_dsn(database_url)
    hub = EventHub(database_url, poll_interval=30)  # a delivery within seconds is a NOTIFY's
    await hub.start()
    closed, killed, admin = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        for connection in (closed, killed):
            hub.own(connection)
            assert hub.owns(connection.get_server_pid())
        gone = [closed.get_server_pid(), killed.get_server_pid()]
        await closed.close()
        await admin.execute("SELECT pg_terminate_backend($1)", gone[1])  # ended by the server
        await _until(lambda: not any(hub.owns(pid) for pid in gone))
        assert not hub.owns(admin.get_server_pid())

        desk = hub.subscribe_agent(AGENT_A)
        successor = await asyncpg.connect(dsn)
        try:
            events = await _commit_agent_event(successor, to="busy")
        finally:
            await successor.close()
        delivered = await asyncio.wait_for(desk.queue.get(), timeout=2)
        assert delivered == events.written[0]
    finally:
        for connection in (closed, killed, admin):
            connection.terminate()
        await hub.stop()


async def test_the_app_s_hub_owns_the_hot_pool_and_the_matcher_s_connection(app: FastAPI) -> None:
    hub: EventHub = app.state.hub
    pool: asyncpg.Pool = app.state.pg
    async with pool.acquire() as first, pool.acquire() as second:
        assert hub.owns(first.get_server_pid())
        assert hub.owns(second.get_server_pid())
        async with asyncio.timeout(5):  # the matcher bids for its lock on its first turn
            while True:
                leader = await first.fetchval(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid = 0 AND objid = $1 AND objsubid = 1",
                    MATCHER_LOCK_KEY,
                )
                if leader is not None:
                    break
                await asyncio.sleep(0.05)
        assert hub.owns(leader)

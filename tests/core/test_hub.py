"""The event hub on a real PostgreSQL: events committed elsewhere reach the right subscribers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Callable

import asyncpg
import pytest
from fastapi import FastAPI

from app.core import hub as hub_module
from app.core.events import Events
from app.core.hub import (
    HUB_APPLICATION,
    NOTIFY_CHANNEL,
    EventHub,
    EventRecord,
    Subscription,
    asyncpg_dsn,
)
from tests.support import (
    HearsNotifies,
    until_the_hub_heard_a_marker,
    until_the_hub_is_past_a_marker,
)

AGENT_A = "0b9e2a52-6d0c-4a52-9c55-3c1f1f1f0001"
AGENT_B = "0b9e2a52-6d0c-4a52-9c55-3c1f1f1f0002"
_markers = itertools.count(1)


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
        await until_the_hub_is_past_a_marker(hub, asyncpg_dsn(database_url))  # none came late
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
        await until_the_hub_is_past_a_marker(hub, asyncpg_dsn(database_url))
        assert desk_b.queue.empty()
    finally:
        await hub.stop()


async def test_a_subject_subscription_gets_the_events_of_the_subject_it_follows_now(
    database_url: str,
) -> None:
    hub = EventHub(database_url, poll_interval=0.2)
    await hub.start()
    dsn = asyncpg_dsn(database_url)
    try:
        chat = hub.subscribe_subject()
        await _write(dsn, ("interaction.queued", "interaction", "chat-1", {}))
        await until_the_hub_is_past_a_marker(hub, dsn)
        assert chat.queue.empty()  # it follows nothing yet

        hub.follow(chat, "chat-1")
        await _write(
            dsn,
            ("interaction.message", "interaction", "chat-1", {}),
            ("interaction.message", "interaction", "chat-2", {}),
        )
        assert [e.subject_id for e in await _drain(chat, 1)] == ["chat-1"]
        hub.follow(chat, "chat-2")
        await _write(
            dsn,
            ("interaction.assigned", "interaction", "chat-1", {}),
            ("interaction.assigned", "interaction", "chat-2", {}),
        )
        assert [e.subject_id for e in await _drain(chat, 1)] == ["chat-2"]
        hub.unsubscribe(chat)
        await _write(dsn, ("interaction.completed", "interaction", "chat-2", {}))
        await until_the_hub_is_past_a_marker(hub, dsn)
        assert chat.queue.empty()
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
        # The hub has read all three rows (and all their NOTIFYs asked for) by then.
        await until_the_hub_is_past_a_marker(hub, asyncpg_dsn(database_url))
        assert desk.queue.empty()
    finally:
        await connection.close()
        await hub.stop()


async def test_the_notify_of_an_event_already_published_costs_no_read(database_url: str) -> None:
    hub = HearsNotifies(database_url, poll_interval=60)  # no polling: only a NOTIFY wakes a read
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
        await hub.until_heard(str(events.written[0].id))  # its NOTIFY has come
        assert [e.kind for e in await _drain(desk, 1)] == ["agent.state_changed"]

        # Committed elsewhere: only a read brings it, a read after any that NOTIFY asked for.
        await _write(
            asyncpg_dsn(database_url), ("offer.rejected", "offer", "o-9", {"agent_id": AGENT_A})
        )
        assert [e.kind for e in await _drain(desk, 1)] == ["offer.rejected"]
        assert hub.reads == 1, "the NOTIFY of the published event cost a read"
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


async def _heard_until_now(
    listener: asyncpg.Connection, heard: list[tuple[int, str]]
) -> list[tuple[int, str]]:
    """The NOTIFYs `listener` has heard (into `heard`), once it has heard every one committed
    before this call: its own marker, a NOTIFY sent now, comes after them (PostgreSQL delivers
    them in commit order). The markers, negative ids that ask no hub for a read, are left out."""
    marker = (listener.get_server_pid(), str(-next(_markers)))
    await listener.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, marker[1])
    await _until(lambda: marker in heard)
    return [n for n in heard if not n[1].startswith("-")]


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_an_owned_connection_s_events_cost_no_read_and_go_out_as_published(
    database_url: str,
) -> None:
    """An owned connection's commit sends no NOTIFY: however late the writer publishes, the hub
    reads nothing, so the event goes out once, with what only the writer had."""
    hub = HearsNotifies(database_url, poll_interval=60)  # no polling: only a NOTIFY wakes one
    await hub.start()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await hub.own(connection)
        desk = hub.subscribe_agent(AGENT_A)
        events = await _commit_agent_event(connection, to="available")
        marker = await until_the_hub_heard_a_marker(hub, connection)
        assert hub.heard == (marker,), "the owned connection's commit sent a NOTIFY"
        assert hub.reads == 0
        assert desk.queue.empty()
        hub.publish([dataclasses.replace(events.written[0], attached={"screen_pop": {"x": 1}})])
        delivered = desk.queue.get_nowait()
        assert delivered.id == events.written[0].id
        assert delivered.attached == {"screen_pop": {"x": 1}}
        # The hub announces it, hears its own announcement, and then reads a later event.
        await hub.until_heard(str(delivered.id))
        await until_the_hub_is_past_a_marker(hub, asyncpg_dsn(database_url))
        assert hub.reads == 1, "the hub read for its own announcement"  # the marker's read
        assert desk.queue.empty()
    finally:
        await connection.close()
        await hub.stop()


async def test_an_event_an_owned_writer_commits_but_never_publishes_comes_by_the_poll(
    database_url: str,
) -> None:
    hub = HearsNotifies(database_url, poll_interval=3.0)
    await hub.start()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await hub.own(connection)
        desk = hub.subscribe_agent(AGENT_A)
        reads = hub.reads
        await _until(lambda: hub.reads > reads)  # a poll has just read: the next is ~3 s away
        polled = hub.reads
        events = await _commit_agent_event(connection, to="away")
        marker = await until_the_hub_heard_a_marker(hub, connection)
        assert hub.heard == (marker,), "the owned connection's commit sent a NOTIFY"
        assert desk.queue.empty(), "something other than the poll woke a read"
        # Generous: a loaded machine delays the poll; that it was the poll is what is checked.
        delivered = await asyncio.wait_for(desk.queue.get(), timeout=15)
        assert delivered == events.written[0]
        assert hub.reads == polled + 1  # the next poll's read brought it, nothing before it
    finally:
        await connection.close()
        await hub.stop()


async def test_events_published_on_one_replica_reach_another_by_one_announcement(
    database_url: str,
) -> None:
    """Owned connections send no NOTIFY per event; the hub that publishes announces them with
    one, from its own session, and another replica's hub reads them at once."""
    dsn = asyncpg_dsn(database_url)
    here = EventHub(database_url, poll_interval=30)  # a delivery within seconds is a NOTIFY's
    there = EventHub(database_url, poll_interval=30)
    await here.start()
    await there.start()
    heard: list[tuple[int, str]] = []
    writer, listener = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await listener.add_listener(
            NOTIFY_CHANNEL, lambda _c, pid, _ch, id_: heard.append((pid, id_))
        )
        await here.own(writer)
        desk_there = there.subscribe_agent(AGENT_A)
        first = await _commit_agent_event(writer, to="available")
        second = await _commit_agent_event(writer, to="busy")
        assert await _heard_until_now(listener, heard) == [], (
            "an owned connection's insert sent a NOTIFY"
        )
        here.publish(first.written + second.written)

        delivered = [await asyncio.wait_for(desk_there.queue.get(), timeout=2) for _ in range(2)]
        assert delivered == first.written + second.written
        await _until(lambda: len(heard) > 0)
        # No second announcement follows: `here` reads a later event (its loop has gone round
        # once more), and every NOTIFY sent before our own marker has been heard.
        marker = await until_the_hub_is_past_a_marker(here, dsn)
        heard[:] = [n for n in await _heard_until_now(listener, heard) if n[1] != str(marker.id)]
        hubs = await listener.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", HUB_APPLICATION
        )
        batch = f"{first.written[0].id},{second.written[0].id}"
        assert [id_ for _, id_ in heard] == [batch]  # one for the batch, naming each event
        assert heard[0][0] in {row["pid"] for row in hubs}
    finally:
        for connection in (writer, listener):
            await connection.close()
        await here.stop()
        await there.stop()


async def test_an_event_committed_after_a_later_one_another_hub_read_is_not_left_to_the_poll(
    database_url: str,
) -> None:
    """Ids are drawn at insert and become visible at commit: another replica's hub may read a
    batch's newer event while an older one is not committed yet. The announcement names every
    event published, so that hub reads again for the older one rather than wait for its poll
    (it had read the newest one: an announcement of the newest id alone asked for nothing)."""
    dsn = asyncpg_dsn(database_url)
    here = EventHub(database_url, poll_interval=3600)
    there = EventHub(database_url, poll_interval=3600)  # a delivery at all is not a poll's
    await here.start()
    await there.start()
    slow, quick = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        for writer in (slow, quick):
            await here.own(writer)
        desk_there = there.subscribe_agent(AGENT_A)
        older = Events()
        older.add("agent.state_changed", subject_type="agent", subject_id=AGENT_A, actor="t")
        pending = slow.transaction()
        await pending.start()
        await older.write(slow)  # its id is drawn; it commits after the newer one
        newer = await _commit_agent_event(quick, to="busy")
        assert older.written[0].id < newer.written[0].id
        # Someone else's NOTIFY wakes a read there now: it finds the newer event alone.
        await until_the_hub_is_past_a_marker(there, dsn)
        assert desk_there.queue.get_nowait() == newer.written[0]
        await pending.commit()
        # Both writers publish before `here` turns round: one announcement for the two.
        here.publish(newer.written)
        here.publish(older.written)

        delivered = await asyncio.wait_for(desk_there.queue.get(), timeout=5)
        assert delivered == older.written[0]
    finally:
        for connection in (slow, quick):
            await connection.close()
        await here.stop()
        await there.stop()


async def test_the_app_s_hot_pool_sends_no_notify_per_event(app: FastAPI) -> None:
    pool: asyncpg.Pool = app.state.pg
    async with pool.acquire() as first, pool.acquire() as second:
        assert await first.fetchval("SHOW cc.notify") == "off"
        assert await second.fetchval("SHOW cc.notify") == "off"


async def test_a_read_that_fills_a_page_reads_the_next_at_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog larger than one read (a burst, another replica's flood) is read page after
    page, not a page per poll."""
    monkeypatch.setattr(hub_module, "FETCH_LIMIT", 2)
    dsn = asyncpg_dsn(database_url)
    hub = EventHub(database_url, poll_interval=30)  # a delivery within seconds is not a poll's
    await hub.start()
    writer, other = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        await hub.own(writer)  # no NOTIFY per event: one foreign NOTIFY wakes the only read
        desk = hub.subscribe_agent(AGENT_A)
        written = [await _commit_agent_event(writer, n=n) for n in range(5)]
        await other.execute(
            "SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(written[-1].written[0].id)
        )
        delivered = [await asyncio.wait_for(desk.queue.get(), timeout=2) for _ in range(5)]
        assert delivered == [events.written[0] for events in written]
    finally:
        for connection in (writer, other):
            await connection.close()
        await hub.stop()

"""Helpers the tests share."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.agents import service as agents
from app.agents.schemas import AgentCreate
from app.auth import service as users
from app.auth.models import Role
from app.auth.schemas import UserCreate
from app.core.db import unit_of_work
from app.core.events import SYSTEM_ACTOR, Events
from app.core.hub import NOTIFY_CHANNEL, EventHub, EventRecord
from app.core.settings import Settings
from app.main import create_app
from app.routing import matcher as matcher_module
from app.routing import passes as passes_module
from app.routing import service as routing
from app.routing import sweeper as sweeper_module
from app.routing.matcher import Matcher
from app.routing.passes import PassResult


async def create_user_directly(app: FastAPI, username: str, role: Role, password: str) -> None:
    async with unit_of_work(app.state.sessions) as session:
        if role is Role.agent:
            body = AgentCreate(username=username, display_name=username, password=password)
            await agents.create_agent(session, body, actor=SYSTEM_ACTOR)
        else:
            user = UserCreate(
                username=username, display_name=username, role=role, password=password
            )
            await users.create_user(session, user, actor=SYSTEM_ACTOR)


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def served_in_thread(app: Any, what: str, **options: Any) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a loopback port, until the block ends: its base
    URL. `options` go to `uvicorn.Config`."""
    port = free_port()
    # A socket a test left open must not keep the server past the test: uvicorn waits for its
    # connections before the app's shutdown, and a server still up after its database was
    # dropped fails every loop of its matcher and sweeps, logging, and starves the next test's
    # server of the time to renew its lease.
    options.setdefault("timeout_graceful_shutdown", 2)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{what} did not stop"


@contextlib.asynccontextmanager
async def served_in_loop(app: FastAPI) -> AsyncIterator[str]:
    """`app` (its lifespan run already, by the `app` fixture) served by uvicorn in the test's
    own event loop on a loopback port, until the block ends: its base URL. One replica, so its
    matcher is the one that leads, and a test can see what it read."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        assert not serving.done(), "the test server stopped"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def until_the_directory_holds(
    app: FastAPI,
    connection: asyncpg.Connection,
    agent: str,
    *,
    silence: timedelta = timedelta(seconds=15),
) -> None:
    """Until the leading matcher's directory (of `app`, served by `served_in_loop`) holds the
    agent's row as it is now: what an arrival is weighed against, to be offered at once
    (app/routing/arrivals.py; passes run every tick here; a wake asks for one at once)."""
    matcher, agent_id = app.state.matcher, uuid.UUID(agent)
    deadline = time.monotonic() + 10
    while True:
        matcher.wake()
        version = await connection.fetchval(
            "SELECT routing_version FROM agents WHERE id = $1", agent_id
        )
        view = matcher.arrival_view(
            await connection.fetchval("SELECT version FROM queues_settings_version")
        )
        if (
            view is not None
            and agent_id in {kept.id for kept in view.directory.kept(silence)}
            and view.directory.version_read(agent_id) == version  # read, and not since moved
        ):
            return
        assert time.monotonic() < deadline, "the matcher never read the agent"
        await asyncio.sleep(0.02)


@dataclass
class LiveServer:
    base_url: str

    @classmethod
    @contextlib.contextmanager
    def running(cls, settings: Settings, database_url: str) -> Iterator[LiveServer]:
        app = create_app(settings, database_url)
        with served_in_thread(app, "the test server") as base_url:
            yield cls(base_url=base_url)


Headers = dict[str, str]


def field_problems(response: httpx.Response) -> dict[str, str]:
    """A 422 body's fields, as {field: problem}."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["detail"]
    return {item["field"]: item["problem"] for item in body["fields"]}


async def create_skills(client: httpx.AsyncClient, admin: Headers, *names: str) -> None:
    for name in names:
        response = await client.post("/v1/skills", json={"name": name}, headers=admin)
        assert response.status_code == 201, response.text


class CountsReads(EventHub):
    """The real event hub, counting its reads of the log (finished ones)."""

    reads = 0

    async def _fetch(self) -> None:
        await super()._fetch()
        self.reads += 1


async def until_waiting_for_a_lock(observer: asyncpg.Connection, pid: int) -> None:
    """Returns once the session `pid` waits for a lock another session holds."""
    waiting = "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted"
    for _ in range(250):
        if await observer.fetchval(waiting, pid):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"session {pid} never waited for a lock")


def settings_with_passes_on_demand() -> Settings:
    """Test settings whose matcher's tick is an hour: a pass runs only when something wakes it,
    so no pass makes or times out an offer behind a test's back."""
    return Settings(
        environment="test",
        load_demo=False,
        default_phone_region="CN",
        password_hashing="fast",
        matcher_tick_seconds=3600,
    )


# What proves the system moved on, for tests that check that something did NOT happen: a fixed
# sleep passes with or without the bug on a slow machine; a marker that comes after the thing
# (in the log's order, the NOTIFYs' order, or the matcher's passes) does not.

MARKER_KIND = "test.marker"
_notify_markers = itertools.count(1)


async def until_the_hub_is_past_a_marker(hub: EventHub, dsn: str) -> EventRecord:
    """Commit a marker event on a connection of its own (its NOTIFY wakes a read) and return it
    once `hub` has handed it out. The hub hands events out in the log's order, so by then it has
    handed out every event committed before the marker and finished every read asked for
    before its NOTIFY. A `CountsReads` hub counts one read more for it."""
    subscription = hub.subscribe(lambda event: event.kind == MARKER_KIND)
    try:
        connection = await asyncpg.connect(dsn)
        try:
            marker_id = await connection.fetchval(
                "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
                " VALUES ($1, 'test', 'marker', 'test', '{}') RETURNING id",
                MARKER_KIND,
            )
        finally:
            await connection.close()
        async with asyncio.timeout(10):
            while True:
                marker = await subscription.queue.get()
                if marker.id == marker_id:
                    return marker
    finally:
        hub.unsubscribe(subscription)


class HearsNotifies(CountsReads):
    """A `CountsReads` hub that also keeps the payload of every NOTIFY it has handled."""

    heard: tuple[str, ...] = ()
    _news: asyncio.Event | None = None

    def _on_notify(self, connection: object, pid: int, channel: object, payload: str) -> None:
        super()._on_notify(connection, pid, channel, payload)
        self.heard += (payload,)
        if self._news is not None:
            self._news.set()

    async def until_heard(self, payload: str) -> None:
        self._news = self._news or asyncio.Event()
        async with asyncio.timeout(10):
            while payload not in self.heard:
                self._news.clear()
                await self._news.wait()


async def until_the_hub_heard_a_marker(hub: HearsNotifies, connection: asyncpg.Connection) -> str:
    """Send a NOTIFY on the events' channel and return its payload once `hub` has handled it.
    PostgreSQL delivers NOTIFYs in the order of their commits, so the hub has handled every one
    committed before it. The payload, a negative id, is below every event: it asks for no read."""
    payload = str(-next(_notify_markers))
    await connection.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
    await hub.until_heard(payload)
    return payload


class CountedPasses:
    """Stands in for `app.routing.passes.run_pass`, which the matcher's loop calls for each
    pass: counts the passes and, while held, keeps new ones from starting, and the upkeep that
    comes before each (offer timeouts, sweeps) too. With passes on demand
    (`settings_with_passes_on_demand`) a test then says when the matcher reads and writes: the
    matcher's own wakes (an arrival's, an event's) wait until it lets go."""

    def __init__(self, run_pass: Callable[..., Awaitable[PassResult]]) -> None:
        self._run_pass = run_pass
        self._free = asyncio.Event()
        self._free.set()
        self._ended = asyncio.Condition()
        self.started = 0
        self.finished = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> PassResult:
        await self.until_free()
        self.started += 1
        try:
            return await self._run_pass(*args, **kwargs)
        finally:
            self.finished += 1
            async with self._ended:
                self._ended.notify_all()

    @classmethod
    def installed(cls, monkeypatch: pytest.MonkeyPatch) -> CountedPasses:
        counted = cls(passes_module.run_pass)
        monkeypatch.setattr(passes_module, "run_pass", counted)
        run_upkeep = sweeper_module.run_upkeep

        async def upkeep_when_free(*args: Any, **kwargs: Any) -> None:
            await counted.until_free()
            await run_upkeep(*args, **kwargs)

        monkeypatch.setattr(matcher_module, "run_upkeep", upkeep_when_free)
        return counted

    async def until_free(self) -> None:
        """Return once the matcher may go on (at once unless held)."""
        while not self._free.is_set():  # again after waking: it may be held again since
            await self._free.wait()

    async def hold(self) -> None:
        """Keep new passes from starting, and return once none is under way."""
        self._free.clear()
        await self._until(lambda: self.finished == self.started)

    def let_go(self) -> None:
        self._free.set()

    async def one_more(self, matcher: Matcher) -> None:
        """Wake the matcher and return once a pass begun after this call has ended (passes
        run one at a time, so the one under way now, if any, ends first)."""
        after = self.started
        matcher.wake()
        await self._until(lambda: self.finished > after)

    async def _until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10), self._ended:
            await self._ended.wait_for(done)


# A lease that outlives any test, for agents made present straight in the database (a desk
# counts only under a live lease: app/core/lease.py).
TEST_LEASE = uuid.UUID("00000000-0000-4000-8000-00000000fea5")


async def present_desk(
    connection: asyncpg.Connection, agent_id: uuid.UUID | str, *, lease: uuid.UUID = TEST_LEASE
) -> None:
    """The agent is available with a desk heard now, on a replica whose lease (`lease`, live
    for a day unless the test ends it) is live, as if it had connected: without any socket, for
    tests of routing below the desk."""
    await connection.execute(
        "INSERT INTO replicas (id, host, pid, started_at, lease_until)"
        " VALUES ($1, 'tests', 0, now(), now() + interval '1 day')"
        " ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
        lease,
    )
    await connection.execute(
        "UPDATE agents SET state = 'available' WHERE id = $1::text::uuid", str(agent_id)
    )
    await connection.execute(
        "INSERT INTO agent_presence (agent_id, last_seen_at, replica_id)"
        " VALUES ($1::text::uuid, now(), $2)"
        " ON CONFLICT (agent_id) DO UPDATE SET last_seen_at = now(), replica_id = $2",
        str(agent_id),
        lease,
    )


async def held_by(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    agent: Headers,
    customer_id: str,
    *,
    channel: str = "chat",
) -> str:
    """An interaction of the customer, raised by the admin in the queue `served` (made on first
    use), offered to the agent of `agent` as a pass writes an offer and accepted by routing's
    own accept, as the desk does: the agent holds it. Its id."""
    queue = await client.post("/v1/queues", json={"name": "served"}, headers=admin)
    assert queue.status_code in (201, 409), queue.text
    body = {"channel": channel, "queue": "served", "customer_id": customer_id}
    raised = await client.post("/v1/interactions", json=body, headers=admin)
    assert raised.status_code == 201, raised.text
    interaction_id = uuid.UUID(raised.json()["id"])
    me = await client.get("/v1/agents/me", headers=agent)
    assert me.status_code == 200, me.text
    agent_id = uuid.UUID(me.json()["id"])
    offer_id, moment = uuid.uuid4(), datetime.now(UTC)
    async with app.state.pg.acquire() as connection:
        await connection.execute(
            "UPDATE interactions SET state = 'offered', offered_at = $2 WHERE id = $1",
            interaction_id,
            moment,
        )
        await connection.execute(
            "INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at,"
            " deadline, reason, matched) VALUES ($1, $2, $3, $6, 'pending', $4, $5, 'test',"
            " '{}')",
            offer_id,
            interaction_id,
            agent_id,
            moment,
            moment + timedelta(minutes=1),
            channel,
        )
        await routing.accept_offer(
            connection, Events(), offer_id, agent_id=agent_id, actor=f"agent:{agent_id}"
        )
    return str(interaction_id)


async def create_billing_queue(client: httpx.AsyncClient, admin: Headers, **settings: Any) -> None:
    """The `billing` queue the routing tests route through (skill `billing` at level 1 or
    more), with the queue `settings` given (wrap_up_seconds, away_on_missed_offer, ...)."""
    await create_skills(client, admin, "billing")
    queue = {
        "name": "billing",
        "wrap_up_seconds": 0,
        "required_skills": [{"skill": "billing", "level": 1}],
        **settings,
    }
    response = await client.post("/v1/queues", json=queue, headers=admin)
    assert response.status_code == 201, response.text


async def offered_as_a_pass_writes(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, agent_id: uuid.UUID
) -> uuid.UUID:
    """The waiting interaction offered to the agent as a matcher pass writes it (for a minute),
    for a test that then drives routing's own accept: the offer's id."""
    offer_id, moment = uuid.uuid4(), datetime.now(UTC)
    await connection.execute(
        "UPDATE interactions SET state = 'offered', offered_at = $2 WHERE id = $1",
        interaction_id,
        moment,
    )
    await connection.execute(
        "INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,"
        " reason, matched) SELECT $1, $2, $3, channel, 'pending', $4::timestamptz,"
        " $4 + interval '1 minute', 'test', '{}' FROM interactions WHERE id = $2",
        offer_id,
        interaction_id,
        agent_id,
        moment,
    )
    return offer_id

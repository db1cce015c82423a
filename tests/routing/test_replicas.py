"""Routing with several real `contactcenter serve` processes on one PostgreSQL (DESIGN.md §3).

Every replica runs its own matcher and event hub; agents' desks are spread over the replicas.
The rules are then checked from what the database recorded: the event log replayed in id order
(an event that another transaction acted on always has the smaller id: ids are handed out
before commit, and a matcher pass reads only committed work before it writes its own events)
and the offer rows themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import pytest
import websockets

from app.auth import service as users
from app.auth.models import Role
from app.auth.schemas import UserCreate
from app.core import security
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.events import SYSTEM_ACTOR
from app.core.settings import Settings
from tests.support import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
TERMINAL_KINDS = frozenset(
    {
        "interaction.completed",
        "interaction.abandoned",
        "interaction.expired",
        "interaction.transferred_out",
        "interaction.converted",
    }
)
OFFER_ENDINGS = frozenset({"offer.rejected", "offer.timed_out", "offer.withdrawn"})
ENDED = frozenset({"timed_out", "withdrawn"})  # how an offer nobody answered ends


# --- server processes ------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, sockets and transactions just vanish."""
        self.process.kill()
        self.process.wait(timeout=10)


def _start_replica(name: str, database_url: str, folder: Path, env: dict[str, str]) -> Replica:
    port = free_port()
    log_path = folder / f"replica-{name}.log"
    log_file = log_path.open("wb")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CC_ENVIRONMENT": "test",
        "CC_PASSWORD_HASHING": "fast",
        "CC_LOAD_DEMO": "false",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--no-demo", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
    )
    return Replica(name, port, process, log_path, log_file)


def _stop_replica(replica: Replica) -> None:
    if replica.process.poll() is None:
        replica.process.terminate()
        try:
            replica.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=10)
    replica.log_file.close()


def _show_logs(replicas: Sequence[Replica]) -> None:
    for replica in replicas:
        replica.log_file.flush()
        text = replica.log_path.read_text(errors="replace")
        print(f"===== replica {replica.name} (port {replica.port}) log, last 150 lines =====")
        print("\n".join(text.splitlines()[-150:]))


async def _wait_healthy(replicas: Sequence[Replica], within: float = 45.0) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as http:
        for replica in replicas:
            while True:
                if replica.process.poll() is not None:
                    raise AssertionError(f"replica {replica.name} exited at start")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{replica.base_url}/health")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"replica {replica.name} not healthy in {within} s")
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def replicas_running(
    database_url: str, folder: Path, names: Sequence[str], **env: str
) -> AsyncIterator[dict[str, Replica]]:
    """Start one server process per name on `database_url`; their logs are shown on failure."""
    started: dict[str, Replica] = {}
    try:
        for name in names:
            started[name] = _start_replica(name, database_url, folder, env)
            # One at a time, so the first leads the matching (its matcher bids on its first
            # tick) and killing it exercises the others taking over.
            await _wait_healthy([started[name]])
            await asyncio.sleep(0.5)
        yield started
    except BaseException:
        _show_logs(list(started.values()))
        raise
    finally:
        for replica in started.values():
            _stop_replica(replica)


async def _create_admin(database_url: str, username: str) -> None:
    """Straight into the database, without an in-process app (it would be a third matcher)."""
    security.use_hashing_profile("fast")
    engine = create_engine(Settings(environment="test", password_hashing="fast"), database_url)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            body = UserCreate(
                username=username, display_name=username, role=Role.admin, password=PASSWORD
            )
            await users.create_user(session, body, actor=SYSTEM_ACTOR)
    finally:
        await engine.dispose()


# --- the agents' desks -----------------------------------------------------------------------


@dataclass(eq=False)
class Desk:
    """One agent's websocket: accepts every offer (if `accepts`) and completes after a while."""

    username: str
    agent_id: str
    server: str
    socket: websockets.ClientConnection
    accepts: bool
    rng: random.Random
    offers: dict[str, dict[str, Any]] = field(default_factory=dict)
    received_at: dict[str, float] = field(default_factory=dict)  # offer id -> time.time()
    assigned: set[str] = field(default_factory=set)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    heartbeat_seconds: float = 1.0  # as the server's "ready" frame says
    _send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _state_ack: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    async def open(
        cls,
        replica: Replica,
        username: str,
        agent_id: str,
        headers: dict[str, str],
        *,
        accepts: bool,
        rng: random.Random,
    ) -> Desk:
        token = headers["Authorization"].removeprefix("Bearer ")
        socket = await websockets.connect(f"{replica.ws_url}/v1/desk/ws?token={token}")
        desk = cls(username, agent_id, replica.name, socket, accepts, rng)
        await desk.send(type="hello", last_event_id=None)
        async with asyncio.timeout(20):
            while True:
                frame = json.loads(await socket.recv())
                if frame["type"] == "ready":
                    desk.heartbeat_seconds = float(frame["heartbeat_seconds"])
                    break
                await desk._handle(frame)
        desk._spawn(desk._read())
        desk._spawn(desk._heartbeat())
        return desk

    async def send(self, **message: Any) -> None:
        async with self._send_lock:
            await self.socket.send(json.dumps(message))

    async def set_available(self) -> None:
        self._state_ack.clear()
        await self.send(type="set_state", state="available")
        await asyncio.wait_for(self._state_ack.wait(), timeout=20)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(), timeout=5)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.failures.append(repr(task.exception()))

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.socket:
                await self._handle(json.loads(raw))

    async def _heartbeat(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_seconds)
                await self.send(type="heartbeat")

    async def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "offer":
            offer_id = str(frame["offer_id"])
            if offer_id in self.offers:
                return  # replayed
            self.offers[offer_id] = frame
            self.received_at[offer_id] = time.time()
            if self.accepts:
                await self.send(type="accept", offer_id=offer_id)
        elif kind == "assignment":
            interaction_id = str(frame["interaction"]["id"])
            if interaction_id not in self.assigned:
                self.assigned.add(interaction_id)
                self._spawn(self._complete_later(interaction_id))
        elif kind == "ack" and frame["of"] == "set_state":
            self._state_ack.set()
        elif kind == "error":
            self.errors.append(frame)

    async def _complete_later(self, interaction_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, 0.2))
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.send(type="complete", interaction_id=interaction_id, disposition="done")


async def _close_all(desks: Sequence[Desk]) -> None:
    await asyncio.gather(*(desk.close() for desk in desks), return_exceptions=True)


# --- setting up a center over HTTP ------------------------------------------------------------


@dataclass(frozen=True)
class AgentSpec:
    username: str
    voice: int
    chat: int
    level: int


# The API commits a request's transaction only after its response has gone out (FastAPI's
# default "request" scope for the session dependency), so a client that acts on a response at
# once may not find what it just created yet. These helpers wait for the write to be visible.


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not visible after {within} s")
        await asyncio.sleep(0.05)


async def _login(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    """Log in (the user may not be committed yet), and wait until the token is honoured."""
    headers: dict[str, str] = {}

    async def logged_in() -> bool:
        response = await http.post(
            "/v1/auth/login", json={"username": username, "password": PASSWORD}
        )
        if response.status_code != 200:
            return False
        headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        return True

    async def honoured() -> bool:
        return (await http.get("/v1/auth/me", headers=headers)).status_code == 200

    await _eventually(logged_in, f"{username} logging in")
    await _eventually(honoured, f"{username}'s token")
    return headers


async def _setup_center(
    http: httpx.AsyncClient, connection: Any, admin: dict[str, str], queue: dict[str, Any]
) -> None:
    response = await http.post("/v1/skills", json={"name": "billing"}, headers=admin)
    assert response.status_code == 201, response.text

    async def skill_there() -> bool:
        found = await connection.fetchval("SELECT count(*) FROM skills WHERE name = 'billing'")
        return bool(found)

    await _eventually(skill_there, "the skill")
    response = await http.post("/v1/queues", json=queue, headers=admin)
    assert response.status_code == 201, response.text

    async def queue_there() -> bool:
        found = await connection.fetchval(
            "SELECT count(*) FROM queues WHERE name = $1", queue["name"]
        )
        return bool(found)

    await _eventually(queue_there, "the queue")


async def _create_agent(
    http: httpx.AsyncClient, admin: dict[str, str], spec: AgentSpec
) -> tuple[str, dict[str, str]]:
    body = {
        "username": spec.username,
        "display_name": spec.username.title(),
        "password": PASSWORD,
        "capacity": {"voice": spec.voice, "chat": spec.chat, "email": 0},
        "skills": [{"skill": "billing", "level": spec.level}],
    }
    response = await http.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), await _login(http, spec.username)


async def _post_interaction(
    http: httpx.AsyncClient, admin: dict[str, str], queue: str, number: int, channel: str
) -> str:
    contact = (
        {"kind": "phone", "value": f"+86 138 0013 {8000 + number}"}
        if channel == "voice"
        else {"kind": "chat", "value": f"visitor-{number}"}
    )
    body = {"channel": channel, "queue": queue, "contact": contact, "external_ref": f"ext-{number}"}
    response = await http.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- what the database recorded ---------------------------------------------------------------


def _dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass(frozen=True)
class EventRow:
    id: int
    kind: str
    subject_id: str
    payload: dict[str, Any]


async def _events(connection: Any) -> list[EventRow]:
    rows = await connection.fetch(
        "SELECT id, kind, subject_id, payload::text AS payload FROM events ORDER BY id"
    )
    return [EventRow(r["id"], r["kind"], r["subject_id"], json.loads(r["payload"])) for r in rows]


async def _capacities(connection: Any) -> dict[str, dict[str, int]]:
    rows = await connection.fetch(
        "SELECT id::text AS id, capacity_voice, capacity_chat, capacity_email FROM agents"
    )
    return {
        r["id"]: {
            "voice": r["capacity_voice"],
            "chat": r["capacity_chat"],
            "email": r["capacity_email"],
        }
        for r in rows
    }


def _kind(channel: str) -> str:
    return "voice" if channel in ("voice", "callback") else channel


def replay_violations(
    events: Sequence[EventRow], capacities: dict[str, dict[str, int]]
) -> list[str]:
    """Rules 1 and 2, replayed over the event log in id order; returns what broke them.

    An interaction has at most one pending offer, and is offered only while no one holds it; an
    agent's pending offers plus assigned/wrap-up work never exceed its capacity per channel kind
    (callback is voice), and a call never sits with chats.
    """
    problems: list[str] = []
    pending: dict[str, str] = {}  # interaction -> its pending offer
    holder: dict[str, tuple[str, str]] = {}  # interaction -> (agent, kind), offered or held
    load: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        payload = event.payload
        if event.kind == "interaction.offered":
            interaction, agent = event.subject_id, str(payload["agent_id"])
            kind = _kind(str(payload["channel"]))
            if interaction in pending:
                problems.append(
                    f"event {event.id}: {interaction} offered to {agent} while offer "
                    f"{pending[interaction]} was still pending"
                )
            if interaction in holder:
                problems.append(
                    f"event {event.id}: {interaction} offered to {agent} while "
                    f"{holder[interaction][0]} held it"
                )
            pending[interaction] = str(payload["offer_id"])
            holder[interaction] = (agent, kind)
            load[agent][kind] += 1
            capacity = capacities[agent]
            if load[agent][kind] > capacity[kind]:
                problems.append(
                    f"event {event.id}: agent {agent} holds {load[agent][kind]} {kind} "
                    f"(capacity {capacity[kind]})"
                )
            if load[agent]["voice"] > 0 and load[agent]["chat"] > 0:
                problems.append(
                    f"event {event.id}: agent {agent} holds a call and "
                    f"{load[agent]['chat']} chats together"
                )
        elif event.kind == "offer.accepted" or event.kind in OFFER_ENDINGS:
            interaction = str(payload["interaction_id"])
            if pending.pop(interaction, None) != event.subject_id:
                problems.append(f"event {event.id}: {event.kind} of an offer not pending")
                continue
            if event.kind in OFFER_ENDINGS:
                agent, kind = holder.pop(interaction)
                load[agent][kind] -= 1
        elif event.kind == "interaction.assigned":
            held = holder.get(event.subject_id)
            if held is None or held[0] != payload.get("agent_id"):
                problems.append(
                    f"event {event.id}: assigned to {payload.get('agent_id')}, held by {held}"
                )
        elif event.kind in TERMINAL_KINDS or (
            event.kind == "interaction.queued" and payload.get("from") == "assigned"
        ):
            released = holder.pop(event.subject_id, None)
            if released is not None:
                load[released[0]][released[1]] -= 1
    return problems


def offer_row_violations(offers: Sequence[Any]) -> list[str]:
    """Rule 1 from the offer rows: per interaction, each offer ended before the next began."""
    problems: list[str] = []
    by_interaction: dict[str, list[Any]] = defaultdict(list)
    for offer in offers:
        by_interaction[offer["interaction_id"]].append(offer)
    for interaction, rows in by_interaction.items():
        rows.sort(key=lambda r: r["created_at"])
        if sum(1 for r in rows if r["state"] == "pending") > 1:
            problems.append(f"{interaction} has several pending offers")
        if sum(1 for r in rows if r["state"] == "accepted") > 1:
            problems.append(f"{interaction} was accepted by several agents")
        for earlier, later in itertools.pairwise(rows):
            if earlier["decided_at"] is None or earlier["decided_at"] > later["created_at"]:
                problems.append(
                    f"{interaction}: offer {earlier['id']} ({earlier['state']}, decided "
                    f"{earlier['decided_at']}) overlaps offer {later['id']} made "
                    f"{later['created_at']}"
                )
    return problems


def log_and_rows_disagree(events: Sequence[EventRow], offers: Sequence[Any]) -> list[str]:
    """Each offer row has one `interaction.offered` event and, once decided, one ending event
    of the same outcome, both naming the same interaction and agent."""
    made: dict[str, list[tuple[str, str]]] = defaultdict(list)
    ended: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for event in events:
        if event.kind == "interaction.offered":
            made[str(event.payload["offer_id"])].append(
                (event.subject_id, str(event.payload["agent_id"]))
            )
        elif event.kind == "offer.accepted" or event.kind in OFFER_ENDINGS:
            ended[event.subject_id].append(
                (
                    event.kind.removeprefix("offer."),
                    str(event.payload["interaction_id"]),
                    str(event.payload["agent_id"]),
                )
            )
    problems: list[str] = []
    for offer in offers:
        who = (offer["interaction_id"], offer["agent_id"])
        if made.pop(offer["id"], []) != [who]:
            problems.append(f"offer {offer['id']}: not exactly one offered event for {who}")
        outcome = [] if offer["state"] == "pending" else [(offer["state"], *who)]
        if ended.pop(offer["id"], []) != outcome:
            problems.append(f"offer {offer['id']} ({offer['state']}): ending events disagree")
    problems.extend(f"offered event for a missing offer row {o}" for o in made)
    problems.extend(f"ending event for a missing offer row {o}" for o in ended)
    return problems


async def _offers(connection: Any) -> list[Any]:
    return list(
        await connection.fetch(
            "SELECT id::text AS id, interaction_id::text AS interaction_id, "
            "agent_id::text AS agent_id, state, created_at, deadline, decided_at, reason, "
            "replica_id FROM offers ORDER BY created_at"
        )
    )


async def _states(connection: Any, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    rows = await connection.fetch(
        "SELECT id::text AS id, state, agent_id::text AS agent_id FROM interactions "
        "WHERE id = ANY($1::uuid[])",
        list(ids),
    )
    return {r["id"]: (r["state"], r["agent_id"]) for r in rows}


async def _wait_until_completed(connection: Any, ids: Sequence[str], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        states = await _states(connection, ids)
        if len(states) == len(ids) and all(s == "completed" for s, _ in states.values()):
            return
        if time.monotonic() > deadline:
            tally = Counter(s for s, _ in states.values())
            raise AssertionError(f"not all completed after {within} s: {dict(tally)}")
        await asyncio.sleep(0.25)


def _assert_none(problems: Sequence[str], what: str) -> None:
    assert not problems, f"{len(problems)} {what}:\n" + "\n".join(problems[:20])


def _assert_one_terminal_each(events: Sequence[EventRow], ids: Sequence[str]) -> None:
    terminal = Counter(e.subject_id for e in events if e.kind in TERMINAL_KINDS)
    completed = Counter(e.subject_id for e in events if e.kind == "interaction.completed")
    wrong = {i: terminal[i] for i in ids if terminal[i] != 1 or completed[i] != 1}
    assert not wrong, f"interactions without exactly one terminal event (completed): {wrong}"


def _save_evidence(folder: Path, events: Sequence[EventRow], offers: Sequence[Any]) -> Path:
    """The event log and the offer rows as JSON, to read after a failure (the database is gone)."""
    path = folder / "evidence.json"
    evidence = {
        "events": [e.__dict__ for e in events],
        "offers": [{k: str(v) for k, v in dict(o).items()} for o in offers],
    }
    path.write_text(json.dumps(evidence, indent=1))
    return path


def _unexpected_errors(desk: Desk) -> list[dict[str, Any]]:
    """Error frames other than accepting an offer that had just ended (timed out under load)."""
    return [
        e
        for e in desk.errors
        if not (e.get("of") == "accept" and e.get("error") == "illegal_transition")
    ]


async def _wait_delivered(desks: Sequence[Desk], offers: Sequence[Any], within: float) -> None:
    """Every offer made reaches its own agent's desk (a late frame may still be on its way)."""
    made = {(o["agent_id"], o["id"]) for o in offers}
    deadline = time.monotonic() + within
    while True:
        delivered = {(d.agent_id, o) for d in desks for o in d.offers}
        if delivered == made:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"offers never delivered: {made - delivered}; delivered but not made (or to "
                f"another agent): {delivered - made}"
            )
        await asyncio.sleep(0.1)


# --- the tests --------------------------------------------------------------------------------


def test_the_checks_catch_what_they_look_for() -> None:
    """The replay is not vacuous: a double offer, a call beside a chat, a fourth chat."""

    def offered(n: int, interaction: str, agent: str, channel: str, offer: str) -> EventRow:
        payload = {"agent_id": agent, "channel": channel, "offer_id": offer}
        return EventRow(n, "interaction.offered", interaction, payload)

    def ended(n: int, kind: str, offer: str, interaction: str, agent: str) -> EventRow:
        return EventRow(n, kind, offer, {"interaction_id": interaction, "agent_id": agent})

    capacities = {"mei": {"voice": 1, "chat": 3, "email": 0}, "tom": {"voice": 1, "chat": 3}}
    fine = [
        offered(1, "i1", "mei", "chat", "o1"),
        ended(2, "offer.timed_out", "o1", "i1", "mei"),
        offered(3, "i1", "tom", "chat", "o2"),
        ended(4, "offer.accepted", "o2", "i1", "tom"),
        EventRow(5, "interaction.assigned", "i1", {"agent_id": "tom"}),
        EventRow(6, "interaction.completed", "i1", {"agent_id": "tom"}),
        offered(7, "i2", "tom", "voice", "o3"),
    ]
    assert replay_violations(fine, capacities) == []
    double = [offered(1, "i1", "mei", "chat", "o1"), offered(2, "i1", "tom", "chat", "o2")]
    assert "still pending" in replay_violations(double, capacities)[0]
    call_and_chat = [offered(1, "i1", "mei", "voice", "o1"), offered(2, "i2", "mei", "chat", "o2")]
    assert "a call and 1 chats" in replay_violations(call_and_chat, capacities)[0]
    four = [offered(n, f"i{n}", "mei", "chat", f"o{n}") for n in range(1, 5)]
    assert "holds 4 chat (capacity 3)" in replay_violations(four, capacities)[0]


PROFILES = ((1, 3), (1, 0), (0, 3), (1, 1))  # (voice, chat): generalist, voice, chat, light both
INTERACTIONS = 100
IN_FLIGHT_PER_REPLICA = 8


@pytest.mark.timeout(180)
async def test_two_replicas_never_double_offer_or_overfill(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261128)
    await _create_admin(database_url, "boss")
    queue = {
        "name": "billing",
        "offer_timeout_seconds": 30,
        "wrap_up_seconds": 0,
        "away_on_missed_offer": False,
        "required_skills": [{"skill": "billing", "level": 2}],
    }
    specs = [
        AgentSpec(f"agent{i:02d}", *PROFILES[(i // 2) % 4], level=2 + i % 4) for i in range(12)
    ]
    channels = ["voice" if rng.random() < 0.4 else "chat" for _ in range(INTERACTIONS)]
    desks: list[Desk] = []
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        async with (
            replicas_running(database_url, tmp_path, ["A", "B"]) as replicas,
            httpx.AsyncClient(base_url=replicas["A"].base_url, timeout=60) as http_a,
            httpx.AsyncClient(base_url=replicas["B"].base_url, timeout=60) as http_b,
        ):
            admin = await _login(http_a, "boss")
            await _setup_center(http_a, connection, admin, queue)

            async def desk_for(i: int, spec: AgentSpec) -> Desk:
                agent_id, headers = await _create_agent(http_a, admin, spec)
                side = replicas["A" if i % 2 == 0 else "B"]
                desk = await Desk.open(
                    side, spec.username, agent_id, headers, accepts=True, rng=rng
                )
                desks.append(desk)
                await desk.set_available()
                return desk

            await asyncio.gather(*(desk_for(i, spec) for i, spec in enumerate(specs)))

            # The burst: both replicas take intake at once, a few requests in flight on each.
            gates = {
                id(http_a): asyncio.Semaphore(IN_FLIGHT_PER_REPLICA),
                id(http_b): asyncio.Semaphore(IN_FLIGHT_PER_REPLICA),
            }

            async def post(n: int, channel: str) -> str:
                http = (http_a, http_b)[n % 2]
                async with gates[id(http)]:
                    return await _post_interaction(http, admin, "billing", n, channel)

            started = time.monotonic()
            ids = list(await asyncio.gather(*(post(n, c) for n, c in enumerate(channels))))
            posted = time.monotonic() - started
            assert len(set(ids)) == INTERACTIONS
            await _wait_until_completed(connection, ids, within=75)
            elapsed = time.monotonic() - started

            events = await _events(connection)
            offers = await _offers(connection)
            evidence = _save_evidence(tmp_path, events, offers)
            capacities = await _capacities(connection)
            # (a) one offer at a time per interaction, (b) no agent over capacity, ever.
            _assert_none(
                replay_violations(events, capacities), f"rule 1/2 violations (see {evidence})"
            )
            _assert_none(offer_row_violations(offers), f"overlapping offers (see {evidence})")
            _assert_none(log_and_rows_disagree(events, offers), f"log vs rows (see {evidence})")
            index = await connection.fetchval(
                "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                "uq_offers_one_pending_per_interaction",
            )
            assert index is not None
            assert "UNIQUE" in index, index
            assert "pending" in index, index
            # (c) nothing lost: each one completed, exactly once, by the one agent who accepted.
            assert await connection.fetchval("SELECT count(*) FROM interactions") == INTERACTIONS
            _assert_one_terminal_each(events, ids)
            states = await _states(connection, ids)
            for interaction_id in ids:
                accepted = [
                    o["agent_id"]
                    for o in offers
                    if o["interaction_id"] == interaction_id and o["state"] == "accepted"
                ]
                assert accepted == [states[interaction_id][1]], (interaction_id, accepted)
            # (d) both replicas delivered offers, each offer to its own agent's desk.
            await _wait_delivered(desks, offers, within=15)
            per_replica = Counter(d.server for d in desks for _ in d.offers)
            assert per_replica["A"] > 0, per_replica
            assert per_replica["B"] > 0, per_replica
            for desk in desks:
                assert not _unexpected_errors(desk), (desk.username, desk.errors)
                assert not desk.failures, (desk.username, desk.failures)
            created = {o["id"]: o["created_at"].timestamp() for o in offers}
            latency = sorted(d.received_at[o] - created[o] for d in desks for o in d.offers)
            late = sum(len(d.errors) for d in desks)
            print(
                f"\n{INTERACTIONS} interactions posted in {posted:.1f} s, all completed in "
                f"{elapsed:.1f} s; {len(offers)} offers ({late} accepted too late), delivered "
                f"per replica {dict(per_replica)}; offer-to-desk p50 "
                f"{latency[len(latency) // 2]:.2f} s, max {latency[-1]:.2f} s"
            )
            await _close_all(desks)
    finally:
        await _close_all(desks)
        await connection.close()


async def test_a_killed_replica_s_desks_leave_routing_at_once_and_its_offers_route_elsewhere(
    database_url: str, tmp_path: Path
) -> None:
    """A's desks hold every offer when A is killed. Within A's lease (2.5 s) and a tick, not
    the offer timeout (20 s) or the silence (15 s), the survivor takes A's desks out of
    routing: their offers are withdrawn and go to B's agents, and nobody is sent away."""
    rng = random.Random(7)
    await _create_admin(database_url, "boss")
    queue = {
        "name": "billing",
        "offer_timeout_seconds": 20,
        "wrap_up_seconds": 0,
        "away_on_missed_offer": True,  # an offer A never delivered must not send anyone away
        "required_skills": [{"skill": "billing", "level": 2}],
    }
    env = {"CC_SILENCE_SECONDS": "15", "CC_HEARTBEAT_SECONDS": "1", "CC_LEASE_SECONDS": "2.5"}
    desks: list[Desk] = []
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        async with (
            replicas_running(database_url, tmp_path, ["A", "B"], **env) as replicas,
            httpx.AsyncClient(base_url=replicas["B"].base_url, timeout=60) as http_b,
        ):
            admin = await _login(http_b, "boss")
            await _setup_center(http_b, connection, admin, queue)

            async def desk_for(i: int) -> Desk:
                spec = AgentSpec(f"agent{i}", voice=1, chat=3, level=3)
                agent_id, headers = await _create_agent(http_b, admin, spec)
                on_a = i < 2  # A's agents never accept; B's take over once A is gone
                side = replicas["A" if on_a else "B"]
                desk = await Desk.open(
                    side, spec.username, agent_id, headers, accepts=not on_a, rng=rng
                )
                desks.append(desk)
                return desk

            doomed = list(await asyncio.gather(*(desk_for(i) for i in range(2))))
            rescuers = list(await asyncio.gather(*(desk_for(i) for i in range(2, 4))))
            # The work waits first, so one pass offers all of it to A's agents at once.
            ids = [await _post_interaction(http_b, admin, "billing", n, "chat") for n in range(4)]
            await asyncio.gather(*(desk.set_available() for desk in doomed))
            async with asyncio.timeout(30):
                while True:
                    held = await connection.fetch(
                        "SELECT id::text AS id FROM offers WHERE state = 'pending' "
                        "AND agent_id = ANY($1::uuid[])",
                        [desk.agent_id for desk in doomed],
                    )
                    if len(held) == len(ids):
                        break
                    await asyncio.sleep(0.05)
            first_offers = {row["id"] for row in held}
            lease_of_a = await connection.fetchval(
                "SELECT DISTINCT replica_id FROM agent_presence WHERE agent_id = ANY($1::uuid[])",
                [desk.agent_id for desk in doomed],
            )
            replicas["A"].kill()
            await asyncio.gather(*(desk.set_available() for desk in rescuers))

            await _wait_until_completed(connection, ids, within=30)

            offer_rows = await _offers(connection)
            events = await _events(connection)
            evidence = _save_evidence(tmp_path, events, offer_rows)
            # From the database: no offer was written for a desk under a lease that had ended,
            # and every offer names the lease it went through.
            lease = await connection.fetchrow(
                "SELECT lease_until, desks_released_at FROM replicas WHERE id = $1", lease_of_a
            )
            assert lease["desks_released_at"] is not None
            late = await connection.fetch(
                "SELECT o.id, o.created_at, r.lease_until FROM offers o"
                " JOIN replicas r ON r.id = o.replica_id WHERE o.created_at >= r.lease_until"
            )
            assert late == []
            assert all(o["replica_id"] is not None for o in offer_rows)
            # A's offers were withdrawn once its lease ended (the database's timestamps, one
            # clock), long before their deadline; so was any offer made to A's agents before.
            grace = timedelta(seconds=1.5)  # the sweeps run every tick (0.25 s)
            doomed_ids = {desk.agent_id for desk in doomed}
            to_the_dead = [o for o in offer_rows if o["agent_id"] in doomed_ids]
            assert first_offers <= {o["id"] for o in to_the_dead}
            for offer in to_the_dead:
                assert offer["state"] == "withdrawn", dict(offer)
                assert offer["reason"] == "its desk's server stopped", dict(offer)
                assert offer["decided_at"] >= lease["lease_until"], dict(offer)
                assert offer["decided_at"] <= lease["lease_until"] + grace, dict(offer)
                assert offer["decided_at"] < offer["deadline"], dict(offer)
            # A's agents went offline as a closed socket leaves them; nobody was sent away.
            sent_away = [
                e
                for e in events
                if e.kind == "agent.state_changed" and e.payload.get("to") == "away"
            ]
            assert sent_away == []
            agents_of_a = await connection.fetch(
                "SELECT state, state_reason FROM agents WHERE id = ANY($1::uuid[])",
                list(doomed_ids),
            )
            assert {(a["state"], a["state_reason"]) for a in agents_of_a} == {
                ("offline", "its desk's server stopped")
            }
            # Then each went to an agent on B, who accepted and completed it.
            rescuer_ids = {desk.agent_id for desk in rescuers}
            states = await _states(connection, ids)
            for interaction_id in ids:
                state, agent = states[interaction_id]
                assert state == "completed", (interaction_id, state)
                assert agent in rescuer_ids, (interaction_id, agent)
                accepted = [
                    o["agent_id"]
                    for o in offer_rows
                    if o["interaction_id"] == interaction_id and o["state"] == "accepted"
                ]
                assert accepted == [agent], (interaction_id, accepted)
            # (A frame still on its way when A died never arrives; none other may.)
            assert {o for desk in doomed for o in desk.offers} <= first_offers
            _assert_none(
                replay_violations(events, await _capacities(connection)),
                f"rule 1/2 violations (see {evidence})",
            )
            _assert_none(offer_row_violations(offer_rows), f"overlapping offers (see {evidence})")
            _assert_none(log_and_rows_disagree(events, offer_rows), f"log vs rows (see {evidence})")
            _assert_one_terminal_each(events, ids)
            for desk in rescuers:
                assert not _unexpected_errors(desk), (desk.username, desk.errors)
                assert not desk.failures, (desk.username, desk.failures)
            after_lease = sorted(
                round((o["decided_at"] - lease["lease_until"]).total_seconds(), 2)
                for o in to_the_dead
            )
            print(f"\n{len(to_the_dead)} offers to A's desks withdrawn {after_lease} s after")
            await _close_all(desks)
    finally:
        await _close_all(desks)
        await connection.close()

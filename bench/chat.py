"""The chat phase: customers at a website's chat widget, each a real socket, talking with agents.

The benchmark plays both sides of every chat:

- `Widgets`, the customers' browsers. Each chat is a task that opens `/v1/chat/ws?site=` from
  the site's page (`Origin` set, as a browser sets it), says `hello` as a first-time visitor,
  sends a first line (which opens the chat in the site's queue), waits for `agent_joined`, then
  exchanges `lines` lines with the agent: it sends a line, waits for the agent's answer to it
  (a `message` frame), marks the answer read (`read`), and at the end waits for `closed`.
- `ChatAgents`, the agents' side, on the fleet's desks (bench/agents.py): a desk accepts a chat's
  offer as any other; on each customer line (`interaction_update`, state `message`) it answers
  at once with `reply`, and once the customer has read all `lines` of its answers (`receipt`
  frames) it completes the chat.

Every moment is taken in this process (`perf_counter`), so the figures join the two sides by
message id: the customer learns its line's id from `stored`, the desk from the line's update,
and an agent's answer names the line it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from bench import load
from bench.agents import Desk
from bench.load import poisson
from bench.setup import Center, call
from bench.stats import summary_ms

# The site's own queue, which every agent may take chats from (as the voice phase's calls
# queue): its name in a screen pop is how a desk knows a live chat from a posted one.
CHAT_QUEUE = "webchat"
SITE_NAME = "bench-shop"
ORIGIN = "https://shop.bench.example"  # the page the widget is embedded in
# The customer's lines after the first start so; the agent answers each naming its id.
LINE = "line"
ANSWER = "answer to "
# A chat that makes no progress for this long is given up (the customer leaves): lost.
STEP_TIMEOUT = 30.0
# An interaction still going: a chat in one of these at the end was left open.
OPEN = frozenset({"queued", "offered", "assigned", "wrap_up"})
T = TypeVar("T")


async def open_site(client: httpx.AsyncClient, center: Center) -> str:
    """The chat queue (no skills asked: every agent serves it, on its chat capacity) and a
    site on it whose page origin is the widgets' (`POST /v1/chat/sites`), its limits far
    above what one visitor sends."""
    admin = center.admin_headers
    queue = {
        "name": CHAT_QUEUE,
        "offer_timeout_seconds": 30,
        "wrap_up_seconds": 0,
        "required_skills": [],
    }
    made = await call(client, "POST", "/v1/queues", 201, json=queue, headers=admin)
    site = {
        "name": SITE_NAME,
        "queue_id": made["id"],
        "allowed_origins": [ORIGIN],
        "messages_per_minute": 600,
        "chats_per_minute": 60,
    }
    opened = await call(client, "POST", "/v1/chat/sites", 201, json=site, headers=admin)
    return str(opened["id"])


# The customers.


@dataclass(slots=True)
class Line:
    """One line the customer sent, and what became of it."""

    client_id: str
    sent: float  # perf_counter when sent
    stored: float | None = None  # the `stored` frame came
    message_id: str | None = None  # as `stored` said


@dataclass
class Visit:
    """One customer's chat, from opening the socket to `closed`."""

    number: int
    phase: str
    due: float  # perf_counter when the chat was due (its socket opened then)
    welcomed: float | None = None  # `welcome` came
    lines: list[Line] = field(default_factory=list)  # the first one opens the chat
    chat_id: str | None = None
    joined: float | None = None  # `agent_joined` came
    # The agent's answers, by the customer line they answer: (the answer's id, when it came).
    answers: dict[str, tuple[str, float]] = field(default_factory=dict)
    closed: float | None = None  # `closed` came
    outcome: str = "under way"  # "finished", or "lost: <why>"


@dataclass
class Widgets:
    """Every customer's widget: opens chats at a Poisson rate and drives each to its end."""

    ws_url: str
    site_id: str
    lines: int  # lines each customer exchanges with the agent after the first
    seed: int = 7
    visits: list[Visit] = field(default_factory=list)
    frames: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)  # `error` frames
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def poisson(self, rate: float, seconds: float, phase: str) -> int:
        return await poisson(self.rng, rate, seconds, lambda: self.open(phase))

    def open(self, phase: str) -> Visit:
        visit = Visit(len(self.visits), phase, time.perf_counter())
        self.visits.append(visit)
        task = asyncio.get_running_loop().create_task(self._life(visit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return visit

    @property
    def under_way(self) -> int:
        return len(self._tasks)

    async def settle(self, within: float) -> int:
        """Wait for the chats under way to end; returns how many were cut off."""
        return await load.settle(self._tasks, within)

    async def _life(self, visit: Visit) -> None:
        try:
            socket = await connect(
                f"{self.ws_url}/v1/chat/ws?site={self.site_id}",
                origin=Origin(ORIGIN),
                compression=None,
                ping_interval=None,  # a chat lasts seconds: the protocol's heartbeat is not due
                proxy=None,
                open_timeout=STEP_TIMEOUT,
            )
        except (OSError, TimeoutError, InvalidStatus) as error:
            visit.outcome = f"lost: socket not opened ({type(error).__name__})"
            return
        talk = Talk(socket, visit, self)
        try:
            await talk.chat(self.lines)
            visit.outcome = "finished"
        except asyncio.CancelledError:
            visit.outcome = "lost: cut off after the phase"
            raise
        except Lost as lost:
            visit.outcome = f"lost: {lost}"
            await talk.leave()
        finally:
            await talk.close()


class Lost(Exception):
    """The chat could not go on: why."""


class Talk:
    """One customer's socket: a reader noting every frame, and the chat's steps waiting on it."""

    def __init__(self, socket: ClientConnection, visit: Visit, widgets: Widgets) -> None:
        self.socket = socket
        self.visit = visit
        self.widgets = widgets
        self.changed = asyncio.Event()
        self.gone = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def chat(self, lines: int) -> None:
        visit = self.visit
        await self._send({"type": "hello", "visitor_token": None, "identity": None})
        await self._until(lambda: visit.welcomed is not None, "no welcome")
        first = await self._say("c0", f"Hello, chat {visit.number} here")
        await self._until(lambda: first.stored is not None, "first line not stored")
        await self._until(lambda: visit.joined is not None, "no agent joined")
        for number in range(1, lines + 1):
            line = await self._say(f"c{number}", f"{LINE} {number} of chat {visit.number}")
            await self._answer_to(line, f"line {number} unanswered")
        await self._until(lambda: visit.closed is not None, "not closed by the agent")

    async def _answer_to(self, line: Line, failing: str) -> None:
        await self._until(lambda: line.message_id in self.visit.answers, failing)

    async def _say(self, client_id: str, text: str) -> Line:
        line = Line(client_id, time.perf_counter())
        self.visit.lines.append(line)
        await self._send({"type": "message", "client_id": client_id, "text": text})
        return line

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.socket.send(json.dumps(message))
        except ConnectionClosed:
            raise Lost(f"socket closed ({self.socket.close_code})") from None

    async def _until(self, condition: Callable[[], bool], failing: str) -> None:
        """Wait until `condition` holds, re-checked on every frame; Lost with `failing` when it
        does not within STEP_TIMEOUT or the socket closes first."""
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                while not condition():
                    if self.gone:
                        raise Lost(f"{failing}: socket closed ({self.socket.close_code})")
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise Lost(f"{failing} within {STEP_TIMEOUT:g} s") from None

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                await self._on_frame(json.loads(raw), time.perf_counter())
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.gone = True
            self.changed.set()

    async def _on_frame(self, frame: dict[str, Any], now: float) -> None:
        visit = self.visit
        kind = str(frame.get("type"))
        self.widgets.frames[kind] += 1
        if kind == "welcome":
            visit.welcomed = visit.welcomed or now
        elif kind == "stored":
            visit.chat_id = str(frame["chat_id"])
            for line in visit.lines:
                if line.client_id == frame["client_id"] and line.stored is None:
                    line.stored, line.message_id = now, str(frame["message_id"])
        elif kind == "agent_joined":
            visit.joined = visit.joined or now
        elif kind == "message" and str(frame.get("text", "")).startswith(ANSWER):
            answered = str(frame["text"]).removeprefix(ANSWER)
            visit.answers.setdefault(answered, (str(frame["message_id"]), now))
            # Shown on the screen: read at once.
            await self.socket.send(json.dumps({"type": "read", "message_id": frame["message_id"]}))
        elif kind == "closed":
            visit.closed = now
        elif kind == "error":
            self.widgets.errors.append({"chat": visit.number, **frame})

    async def leave(self) -> None:
        """The customer gives up: ends the chat (abandoned, or the agent's wrap-up)."""
        if not self.gone:
            try:
                await self.socket.send(json.dumps({"type": "leave"}))
            except ConnectionClosed:
                return
            await asyncio.wait({self.reader}, timeout=5)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError, ConnectionClosed, OSError):
            await asyncio.wait_for(self.socket.close(), timeout=5)
        self.reader.cancel()


# The agents.


@dataclass
class ChatAgents:
    """The desks' side of the live chats (the fleet's `chat_desk`): what each desk heard and
    sent, by message id, and when."""

    lines: int  # answers the customer reads before the agent completes the chat
    offered: dict[str, float] = field(default_factory=dict)  # chat id -> its first offer
    reached: dict[str, float] = field(default_factory=dict)  # customer line id -> at the desk
    replied: dict[str, float] = field(default_factory=dict)  # customer line id -> answer sent
    read: dict[str, float] = field(default_factory=dict)  # answer id -> its read receipt
    delivered: dict[str, float] = field(default_factory=dict)  # answer id -> delivered receipt
    read_count: Counter[str] = field(default_factory=Counter)  # by chat id
    completed: set[str] = field(default_factory=set)  # chats the desks completed
    unsent: int = 0  # answers not sent: the desk's socket was down

    def taken(self, desk: Desk, interaction_id: str, received: float) -> None:
        self.offered.setdefault(interaction_id, received)

    async def heard(self, desk: Desk, frame: dict[str, Any]) -> None:
        """A line (answered at once) or a receipt (the chat completed once all are read)."""
        now = time.perf_counter()
        chat_id = str(frame["interaction_id"])
        if frame["type"] == "interaction_update":
            detail = frame.get("detail") or {}
            text = str(detail.get("text", ""))
            if detail.get("direction") != "inbound" or not text.startswith(LINE):
                return
            line_id = str(detail["message_id"])
            if line_id in self.replied:
                return  # heard again (replayed after a reconnect): answered already
            self.reached.setdefault(line_id, now)
            self.replied[line_id] = time.perf_counter()
            answer = {"type": "reply", "interaction_id": chat_id, "text": ANSWER + line_id}
            if not await desk.act(answer):
                del self.replied[line_id]
                self.unsent += 1
        elif frame["type"] == "receipt":
            ids = [str(m) for m in frame.get("message_ids", [])]
            seen = self.read if frame.get("read") else self.delivered
            fresh = [m for m in ids if m not in seen]
            for message_id in fresh:
                seen[message_id] = now
            if frame.get("read"):
                self.read_count[chat_id] += len(fresh)
                if self.read_count[chat_id] >= self.lines and chat_id not in self.completed:
                    self.completed.add(chat_id)
                    desk.finish(chat_id)


# The figures.


def figures(visits: Iterable[Visit], agents: ChatAgents, fired: int) -> dict[str, Any]:
    """The measured chats' latencies, joined by message id, and what became of each chat.

    first line to offer: the customer sent the first line -> the offer at a desk; line to
    desk: a later line sent -> its `interaction_update` at the desk; reply to customer: the
    desk sent its answer -> the customer's `message` frame; receipt: that frame -> the desk's
    read receipt (the customer marks it read at once). Whatever never came ranks above all.
    """
    measured = list(visits)
    firsts = [v.lines[0] for v in measured if v.lines]
    later = [line for v in measured for line in v.lines[1:]]
    answers = [(line_id, *answer) for v in measured for line_id, answer in v.answers.items()]
    answered = {line_id for line_id, _, _ in answers}
    unanswered = [line for line in later if line.message_id in agents.replied.keys() - answered]
    outcomes = Counter(v.outcome for v in measured)
    return {
        "chats": fired,
        "welcome_ms": _waited(measured, lambda v: v.due, lambda v: v.welcomed),
        "first_line_to_offer_ms": _waited(
            [v for v in measured if v.lines],
            lambda v: v.lines[0].sent,
            lambda v: agents.offered.get(v.chat_id or ""),
        ),
        "line_stored_ms": summary_ms(
            [line.stored - line.sent for line in firsts + later if line.stored is not None]
        ),
        "line_to_desk_ms": _waited(
            later, lambda line: line.sent, lambda line: agents.reached.get(line.message_id or "")
        ),
        "reply_to_customer_ms": summary_ms(
            [
                at - agents.replied[line_id]
                for line_id, _, at in answers
                if line_id in agents.replied
            ],
            never=len(unanswered),
        ),
        "receipt_ms": _waited(
            answers, lambda answer: answer[2], lambda answer: agents.read.get(answer[1])
        ),
        "opened": sum(1 for v in measured if v.chat_id is not None),
        "finished": outcomes["finished"],
        "lost": sum(n for outcome, n in outcomes.items() if outcome.startswith("lost")),
        "outcomes": dict(outcomes),
        "lost_sample": [_timeline(v, agents) for v in measured if v.outcome != "finished"][:5],
    }


def _timeline(visit: Visit, agents: ChatAgents) -> dict[str, Any]:
    """What a chat that did not finish got, in ms from its first line (null: never)."""
    first = visit.lines[0].sent if visit.lines else visit.due

    def after(moment: float | None) -> float | None:
        return None if moment is None else round((moment - first) * 1000, 1)

    return {
        "outcome": visit.outcome,
        "stored": after(visit.lines[0].stored if visit.lines else None),
        "offered": after(agents.offered.get(visit.chat_id or "")),
        "joined": after(visit.joined),
        "lines_sent": len(visit.lines),
        "answers": len(visit.answers),
    }


def _waited(
    items: Sequence[T], start: Callable[[T], float], end: Callable[[T], float | None]
) -> dict[str, float | int | None]:
    """From `start` to `end` of each item; an item whose end never came ranks above all."""
    spans = [end_at - start(item) for item in items if (end_at := end(item)) is not None]
    return summary_ms(spans, never=len(items) - len(spans))


async def server_side(
    dsn: str, site_id: str, visits: Iterable[Visit], agents: ChatAgents
) -> dict[str, Any]:
    """What the server kept of every chat (warm-up included): each customer line it said it
    stored, in that chat's messages; the agents' lines; the chats by state at the end."""
    every = list(visits)
    stored = {
        line.message_id: v.chat_id for v in every for line in v.lines if line.message_id is not None
    }
    connection = await asyncpg.connect(dsn)
    try:
        kept = await connection.fetch(
            "SELECT id::text AS id, interaction_id::text AS chat FROM interaction_messages "
            "WHERE id = ANY($1::uuid[])",
            list(stored),
        )
        states = await connection.fetch(
            "SELECT i.state, count(*) AS n FROM chats c JOIN interactions i "
            "ON i.id = c.interaction_id WHERE c.site_id = $1 GROUP BY 1 ORDER BY 2 DESC",
            uuid.UUID(site_id),
        )
        agent_lines = await connection.fetchval(
            "SELECT count(*) FROM interaction_messages m JOIN chats c "
            "ON c.interaction_id = m.interaction_id "
            "WHERE c.site_id = $1 AND m.direction = 'outbound' AND m.kind <> 'system'",
            uuid.UUID(site_id),
        )
    finally:
        await connection.close()
    in_its_chat = sum(1 for row in kept if stored.get(row["id"]) == row["chat"])
    received = {line_id for v in every for line_id in v.answers}
    by_state = {row["state"]: row["n"] for row in states}
    return {
        "lines_stored": len(stored),
        "lines_not_kept": len(stored) - in_its_chat,
        "answers_sent": len(agents.replied),
        "answers_not_received": len(agents.replied.keys() - received),
        "answers_unsent": agents.unsent,
        "agent_lines_kept": int(agent_lines),
        "chats_by_state": by_state,
        "left_open": sum(n for state, n in by_state.items() if state in OPEN),
    }

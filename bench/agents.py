"""Agent desks: one real websocket per agent, taking offers the way a person at a desk would.

Each desk says hello, waits for `ready`, goes available and beats every few seconds. On an
offer it notes the time, accepts at once and completes after an exponential handle time. A desk
whose socket drops reconnects with the last event id it saw, as the protocol asks, and finishes
whatever it still holds; every drop is counted.

A live call (one the voice phase placed through the Twilio webhook, bench/voice.py) is not the
desk's to complete: its talk ends when the phone line says so, which puts the agent in wrap-up;
the desk then ends the wrap-up at once.

A live chat (one a customer's socket opened in the chat phase, bench/chat.py: an offer from the
fleet's `chat_queue`) is accepted the same way, then left to the fleet's `chat_desk`, which
answers the customer's lines and ends the chat; a chat the customer left goes to wrap-up, which
the desk ends at once, as a call's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.setup import AgentLogin

HEARTBEAT_SECONDS = 5.0
RECONNECT_DELAY = 0.5
REJOIN_DELAY = 1.0
STATE_TIMEOUT = 20.0
# An interaction in these states is still the agent's; any other is over for the desk.
HELD_STATES = frozenset({"offered", "assigned", "wrap_up"})


class ChatDesk(Protocol):
    """What a desk leaves to the chat phase: the chats it took, and their frames after."""

    def taken(self, desk: Desk, interaction_id: str, received: float) -> None: ...

    async def heard(self, desk: Desk, frame: dict[str, Any]) -> None: ...


# The frames of a live chat the chat phase hears (a state change other than a new line is the
# desk's own, as a call's).
CHAT_FRAMES = frozenset({"interaction_update", "receipt", "typing"})


@dataclass(slots=True)
class OfferSeen:
    external_ref: str
    agent: str
    offer_id: str
    interaction_id: str
    received: float  # perf_counter
    received_wall: float  # time.time(), to compare with the server's timestamps


@dataclass
class Fleet:
    """Every desk, sharing what they saw and the current mean handle time."""

    ws_url: str
    handle_mean: float
    compression: bool = False
    seed: int = 7
    offers: dict[str, OfferSeen] = field(default_factory=dict)  # first offer, by external_ref
    offer_times: list[float] = field(default_factory=list)  # perf_counter of every new offer
    offer_ids: set[str] = field(default_factory=set)  # every offer_id received
    reoffers: int = 0  # an interaction offered again (after a timeout or a withdrawal)
    frames: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    close_codes: Counter[str] = field(default_factory=Counter)
    sent_away: Counter[str] = field(default_factory=Counter)  # by the server, by reason
    disconnects: int = 0
    completions: int = 0
    desks: list[Desk] = field(default_factory=list)
    # The external refs (CallSids) of live calls, whose talk the phone line ends; and when a
    # desk sent the accept of each (perf_counter), for the time to the gateway's bridge.
    live_calls: set[str] = field(default_factory=set)
    call_accepts: dict[str, float] = field(default_factory=dict)
    # The queue of live chats, and who answers them (the chat phase sets both).
    chat_queue: str | None = None
    chat_desk: ChatDesk | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def owed(self) -> int:
        """Interactions accepted but not yet completed by any desk."""
        return sum(len(desk.holding) for desk in self.desks)

    def handle_time(self) -> float:
        return self.rng.expovariate(1.0 / self.handle_mean) if self.handle_mean > 0 else 0.0

    async def connect_all(self, logins: tuple[AgentLogin, ...], parallel: int = 50) -> None:
        gate = asyncio.Semaphore(parallel)

        async def one(login: AgentLogin) -> Desk:
            async with gate:
                desk = Desk(self, login)
                await desk.start()
                return desk

        self.desks = list(await asyncio.gather(*(one(login) for login in logins)))

    async def set_state(self, state: str, parallel: int = 1000) -> int:
        """Every desk asks for `state`; returns how many could not (socket down, refused)."""
        gate = asyncio.Semaphore(parallel)

        async def one(desk: Desk) -> bool:
            async with gate:
                return await desk.set_state(state)

        done = await asyncio.gather(*(one(desk) for desk in self.desks))
        return sum(1 for ok in done if not ok)

    async def close(self) -> None:
        await asyncio.gather(*(desk.close() for desk in self.desks), return_exceptions=True)


class Desk:
    def __init__(self, fleet: Fleet, login: AgentLogin) -> None:
        self.fleet = fleet
        self.login = login
        self.wanted_state = "available"
        # Interactions accepted and not yet completed, with the offer that brought each (an
        # interaction may come back to the same desk under a new offer after a withdrawal).
        self.holding: dict[str, str] = {}
        self.calls: set[str] = set()  # interactions held that are live calls
        self.chats: set[str] = set()  # interactions held that are live chats
        self.last_event_id: int | None = None
        self._socket: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._rejoining = False

    async def start(self) -> None:
        await self._open()
        self._spawn(self._life())
        self._spawn(self._beat())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self) -> None:
        url = f"{self.fleet.ws_url}/v1/desk/ws?token={self.login.token}"
        socket = await connect(
            url,
            compression="deflate" if self.fleet.compression else None,
            ping_interval=None,  # the protocol's own heartbeat is the liveness signal
            proxy=None,
            open_timeout=60,
            max_queue=None,
        )
        await socket.send(json.dumps({"type": "hello", "last_event_id": self.last_event_id}))
        replayed: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while True:
                frame = json.loads(await socket.recv())
                self.fleet.frames[frame["type"]] += 1
                if frame["type"] == "ready":
                    self.last_event_id = frame.get("last_event_id", self.last_event_id)
                    break
                replayed.append(frame)
        self._socket = socket
        self._connected.set()
        for frame in replayed:
            await self._on_frame(frame, replayed=True)

    async def _life(self) -> None:
        """Read until the socket drops; then reconnect, unless the benchmark is closing."""
        while not self._closing:
            socket = self._socket
            assert socket is not None
            try:
                async for raw in socket:
                    await self._on_frame(json.loads(raw))
            except ConnectionClosed:
                pass
            if self._closing:
                return
            self._connected.clear()
            self.fleet.disconnects += 1
            self.fleet.close_codes[f"{socket.close_code} {socket.close_reason}"] += 1
            while not self._closing:
                await asyncio.sleep(RECONNECT_DELAY)
                try:
                    await self._open()
                    if self.wanted_state == "available":
                        await self._send({"type": "set_state", "state": "available"})
                    for interaction_id, offer_id in list(self.holding.items()):
                        if interaction_id not in self.calls:  # the line ends those
                            self._spawn(self._complete_later(interaction_id, offer_id, 0.0))
                    break
                except (OSError, TimeoutError, ConnectionClosed, InvalidStatus):
                    continue

    async def _send(self, message: dict[str, Any]) -> None:
        await self._connected.wait()
        assert self._socket is not None
        await self._socket.send(json.dumps(message))

    async def set_state(self, state: str) -> bool:
        self.wanted_state = state
        while not self._acks.empty():  # a late answer to an earlier request
            self._acks.get_nowait()
        try:
            async with asyncio.timeout(STATE_TIMEOUT):
                await self._send({"type": "set_state", "state": state})
                while True:
                    ack = await self._acks.get()
                    if ack.get("of") == "set_state":
                        return "error" not in ack
        except (TimeoutError, ConnectionClosed):
            return False

    async def _beat(self) -> None:
        await asyncio.sleep(self.fleet.rng.uniform(0, HEARTBEAT_SECONDS))
        while not self._closing:
            with contextlib.suppress(ConnectionClosed):
                await self._send({"type": "heartbeat"})
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _on_frame(self, frame: dict[str, Any], *, replayed: bool = False) -> None:
        kind = frame["type"]
        self.fleet.frames[kind] += 1
        event_id = frame.get("event_id")
        if isinstance(event_id, int):
            self.last_event_id = max(self.last_event_id or 0, event_id)
        if kind == "offer":
            await self._on_offer(frame)
        elif kind == "assignment" and replayed:
            interaction_id = str(frame["interaction"]["id"])
            if frame["interaction"].get("external_ref") in self.fleet.live_calls:
                await self._still_on_call(interaction_id, str(frame["interaction"]["state"]))
            elif interaction_id not in self.holding:  # still ours after the drop: finish it
                self.holding[interaction_id] = "replayed"
                self._spawn(
                    self._complete_later(interaction_id, "replayed", self.fleet.handle_time())
                )
        elif kind == "interaction_update" and str(frame["interaction_id"]) in self.calls:
            await self._call_moved(str(frame["interaction_id"]), str(frame["state"]))
        elif kind in CHAT_FRAMES and str(frame.get("interaction_id")) in self.chats:
            await self._chat_moved(frame)
        elif kind == "offer_withdrawn":
            # The offer ended unaccepted (timed out, withdrawn): an accept sent for it failed.
            interaction_id = str(frame["interaction_id"])
            if self.holding.get(interaction_id) == str(frame["offer_id"]):
                del self.holding[interaction_id]
        elif kind == "state" and frame.get("state") in ("away", "offline") and not replayed:
            if self.wanted_state == "available" and not self._rejoining:
                # Routing sent this agent away (a missed offer, a silent socket): a person who
                # wants work comes back; how often that happens is counted.
                self.fleet.sent_away[str(frame.get("reason"))] += 1
                self._rejoining = True
                self._spawn(self._rejoin())
        elif kind == "ack" and frame.get("of") == "set_state":
            self._acks.put_nowait(frame)
        elif kind == "error":
            self.fleet.errors.append({"agent": self.login.username, **frame})
            if frame.get("of") == "set_state":
                self._acks.put_nowait({"of": "set_state", "error": frame})

    async def _rejoin(self) -> None:
        try:
            await asyncio.sleep(REJOIN_DELAY)
            if self.wanted_state == "available":
                with contextlib.suppress(ConnectionClosed):
                    await self._send({"type": "set_state", "state": "available"})
        finally:
            self._rejoining = False

    async def _on_offer(self, frame: dict[str, Any]) -> None:
        received, received_wall = time.perf_counter(), time.time()
        fleet = self.fleet
        offer_id = str(frame["offer_id"])
        if offer_id in fleet.offer_ids:
            return  # the same offer again, replayed after a reconnect
        fleet.offer_ids.add(offer_id)
        ref = str(frame["screen_pop"]["interaction"]["external_ref"])
        if ref in fleet.offers:
            fleet.reoffers += 1
        else:
            fleet.offer_times.append(received)
            fleet.offers[ref] = OfferSeen(
                ref,
                self.login.username,
                offer_id,
                str(frame["interaction_id"]),
                received,
                received_wall,
            )
        interaction_id = str(frame["interaction_id"])
        self.holding[interaction_id] = offer_id
        live_call = ref in fleet.live_calls
        live_chat = fleet.chat_desk is not None and (
            frame["screen_pop"]["interaction"].get("queue") == fleet.chat_queue
        )
        if live_call:
            self.calls.add(interaction_id)
            fleet.call_accepts.setdefault(ref, time.perf_counter())
        elif live_chat and fleet.chat_desk is not None:
            self.chats.add(interaction_id)
            fleet.chat_desk.taken(self, interaction_id, received)
        with contextlib.suppress(ConnectionClosed):
            await self._send({"type": "accept", "offer_id": offer_id})
        if not live_call and not live_chat:
            self._spawn(self._complete_later(interaction_id, offer_id, fleet.handle_time()))

    async def _call_moved(self, interaction_id: str, state: str) -> None:
        """A live call's interaction moved: its talk ended (wrap-up, which the agent ends at
        once), or it ended for good (the wrap-up over, the caller gone)."""
        if state == "wrap_up" and interaction_id in self.holding:
            with contextlib.suppress(ConnectionClosed):
                await self._send({"type": "end_wrap_up", "interaction_id": interaction_id})
        elif state not in HELD_STATES:
            self.calls.discard(interaction_id)
            if self.holding.pop(interaction_id, None) is not None:
                self.fleet.completions += 1

    async def _chat_moved(self, frame: dict[str, Any]) -> None:
        """A live chat's frame: a line, a receipt or typing for the chat phase; its end (or the
        wrap-up the customer's leaving put it in) the desk's, as a call's."""
        interaction_id = str(frame["interaction_id"])
        if frame["type"] == "interaction_update" and frame["state"] != "message":
            await self._call_moved(interaction_id, str(frame["state"]))
            if frame["state"] not in HELD_STATES:
                self.chats.discard(interaction_id)
        elif self.fleet.chat_desk is not None:
            await self.fleet.chat_desk.heard(self, frame)

    async def act(self, message: dict[str, Any]) -> bool:
        """Send a message for the chat phase; False when the socket was down."""
        try:
            await self._send(message)
        except ConnectionClosed:
            return False
        return True

    def finish(self, interaction_id: str) -> None:
        """Complete a chat held now (the chat phase's agent is done with it)."""
        offer_id = self.holding.get(interaction_id)
        if offer_id is not None:
            self._spawn(self._complete_later(interaction_id, offer_id, 0.0))

    async def _still_on_call(self, interaction_id: str, state: str) -> None:
        """A live call still ours after a reconnect: the line ends its talk, or it is in
        wrap-up already."""
        self.holding.setdefault(interaction_id, "replayed")
        self.calls.add(interaction_id)
        if state == "wrap_up":
            await self._call_moved(interaction_id, state)

    async def _complete_later(self, interaction_id: str, offer_id: str, after: float) -> None:
        await asyncio.sleep(after)
        if self.holding.get(interaction_id) != offer_id:
            return  # completed already, or the offer was withdrawn
        del self.holding[interaction_id]
        try:
            await self._send(
                {"type": "complete", "interaction_id": interaction_id, "disposition": "done"}
            )
        except ConnectionClosed:  # sent again after the reconnect
            self.holding[interaction_id] = offer_id
            return
        self.fleet.completions += 1

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close(), timeout=5)

"""A client's websocket session: the machinery every socket of the center shares.

The agent's desk uses it today; the supervisor's and the chat customer's sockets are meant to.
A session owns the machinery and none of the meaning: its user says how an event becomes a
frame, what a (re)connecting client missed and holds now, and what each incoming message does.

    opening ──replay──▶ replaying ──▶ live ──▶ closed
       └─────────────────────┴────────────────▶ closed  (the client left, or `close`)

- opening: accepted; only answers to the client's own messages go out (an error for a bad hello).
- replaying: what the client missed and holds now is read on one pool connection, which goes
  back before any of it is queued; then the user's ready frame.
- live: the pump forwards the hub's events, skipping those the replay covered.
- closed: nothing more is queued or written, and a wait in `receive` ends at once.

Clients speak JSON in text frames: a binary frame closes the socket (BINARY_FRAME, 1003), not a
traceback. An event its user names (`ends_session`: a newer socket of the same client has taken
over) closes the session when it comes live.

A slow or dead client never delays another: every frame goes through this session's bounded
queue, drained by its own writer, and every send has a deadline (TOO_SLOW when it passes).
`send` never waits (its callers may hold a pool connection): a full queue closes the socket.
The pump and the replay are this session's own, so they wait for room instead, which delays
only this client; one that stays behind is closed by the hub's bound on its subscription
(TOO_FAR_BEHIND). Every code a socket closes with is in `CloseCode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

import asyncpg
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.core.pg import Reader

log = get_logger(__name__)


class CloseCode(enum.IntEnum):
    """Every code a socket of the center closes with (RFC 6455, section 7.4), in one place;
    docs/agent-protocol.md tells clients what each one asks of them."""

    NORMAL = 1000  # the server is done with this session
    UNSUPPORTED_DATA = 1003  # a binary frame: the center's sockets speak JSON text
    REFUSED = 1008  # policy violation: not a ticket or token this socket serves; do not retry as is
    SERVER_ERROR = 1011  # an unexpected error on the server: reconnect
    SERVICE_RESTART = 1012  # this server's lease lapsed (app/core/lease.py): reconnect
    TRY_AGAIN_LATER = 1013  # too slow, too far behind, the database busy: reconnect, with hello
    SILENT = 4000  # nothing heard within the silence the socket allows: reconnect
    REPLACED = 4001  # a newer socket of the same client took over: do not reconnect on your own
    NO_HELLO = 4002  # the client did not open the conversation as the protocol says: fix it
    BAD_IDENTITY = 4003  # a chat customer's signed identity does not match: fix the signing


@dataclass(frozen=True, slots=True)
class Closing:
    """Why a session closed: the code, and the reason the client reads with it."""

    code: CloseCode
    reason: str


TOO_SLOW = Closing(CloseCode.TRY_AGAIN_LATER, "too slow")
TOO_FAR_BEHIND = Closing(CloseCode.TRY_AGAIN_LATER, "too far behind")
DATABASE_BUSY = Closing(CloseCode.TRY_AGAIN_LATER, "database busy")
SERVER_ERROR = Closing(CloseCode.SERVER_ERROR, "server error")
SILENT = Closing(CloseCode.SILENT, "nothing heard")
GOODBYE = Closing(CloseCode.NORMAL, "goodbye")
LEASE_LAPSED = Closing(CloseCode.SERVICE_RESTART, "this server lost its lease; reconnect")
BINARY_FRAME = Closing(CloseCode.UNSUPPORTED_DATA, "binary frame: send JSON as text frames")
HELLO_TIMEOUT = 5.0
# The first message is a hello, within HELLO_TIMEOUT: a client that does not open the
# conversation as its protocol says is closed rather than served half-known.
NO_HELLO = Closing(CloseCode.NO_HELLO, f"no hello within {HELLO_TIMEOUT:g} seconds")
# A one-use ticket (app/auth/service.py `redeem_socket_ticket`) that opened nothing.
BAD_TICKET = Closing(CloseCode.REFUSED, "the ticket is unknown, used or expired: ask for another")
HELLO_FIRST = Closing(CloseCode.NO_HELLO, "the first message must be a valid hello")


@dataclass(frozen=True, slots=True)
class Limits:
    queue: int = 256  # frames waiting for the writer
    send_timeout: float = 5.0  # one frame's send
    replay_timeout: float = 10.0  # waiting for a pool connection to replay on
    close_timeout: float = 10.0  # the close frame's way out, past what the client has not read


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What the client is told and what its silence costs.

    `every` is the interval the client is asked to show a sign of life at (any message counts);
    the user's ready frame carries it. `silence`: after that long with no message at all the
    session closes (SILENT); None keeps a quiet client connected. The desk passes None, as rule 8
    acts on the agent rather than the socket: the sweeper, reading presence, sends it away.
    """

    every: float
    silence: float | None = None


class SessionState(enum.Enum):
    opening = "opening"
    replaying = "replaying"
    live = "live"
    closed = "closed"


class SessionClosed(Exception):
    """The client left or the session closed it: the conversation is over."""


F = TypeVar("F", bound=BaseModel)
H = TypeVar("H", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Replay(Generic[F]):
    """How to catch a client up, in its user's own queries."""

    # The events after an id that concern the client, oldest first.
    missed: Callable[[asyncpg.Connection, int], Awaitable[Sequence[EventRecord]]]
    # What the client holds now, as frames.
    holds: Callable[[asyncpg.Connection], Awaitable[Sequence[F]]]
    # The last frame before live ones, given the id of the last event the replay covers.
    ready: Callable[[int], F]


class SocketSession(Generic[F]):
    """One client's socket: `async with` it, `replay` once, then `receive` until SessionClosed
    (which the `async with` absorbs).

    `frame_for` turns one of the subscription's events into a frame, or None when the client
    need not know; the pump passes it the pool (most events become frames without a read),
    the replay its connection. `ends_session` says which event, coming live, closes the
    session and why (a newer socket of the same client has taken over); the events the replay
    covers never do. `context` names the client in the logs.
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        hub: EventHub,
        subscription: Subscription,
        pool: asyncpg.Pool,
        frame_for: Callable[[Reader, EventRecord], Awaitable[F | None]],
        heartbeat: Heartbeat,
        context: Mapping[str, str],
        limits: Limits | None = None,
        ends_session: Callable[[EventRecord], Closing | None] | None = None,
    ) -> None:
        self.heartbeat = heartbeat
        self.closed_with: Closing | None = None  # None while open, and when the client left
        self._websocket = websocket
        self._hub = hub
        self._subscription = subscription
        self._pool = pool
        self._frame_for = frame_for
        self._ends_session = ends_session
        self._context = dict(context)
        self._limits = limits or LIMITS
        self._state = SessionState.opening
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=self._limits.queue)
        self._live_from = 0
        self._heard_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[object] | None = None  # the task waiting in `receive`
        self._interrupted = False

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def backlog(self) -> int:
        """Frames queued and not yet written: how far behind the client is."""
        return self._outbox.qsize()

    async def __aenter__(self) -> SocketSession[F]:
        loop = asyncio.get_running_loop()
        self._heard_at = loop.time()
        self._start(self._write(), "writer")
        if self.heartbeat.silence is not None:
            self._start(self._watch_silence(self.heartbeat.silence), "silence")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        """Stop the session's tasks and leave the hub; wait (bounded) for the close frame to go
        out, so the client reads why. SessionClosed ends the block quietly; any other error
        closes with SERVER_ERROR and propagates."""
        self.close(SERVER_ERROR if isinstance(error, Exception) else GOODBYE)
        for task in self._tasks:
            task.cancel()
        self._hub.unsubscribe(self._subscription)
        closing = self._closing
        if closing is not None and not isinstance(error, asyncio.CancelledError):
            # A client that is not reading keeps the frame behind what it has not read for ever.
            done, _ = await asyncio.wait([closing], timeout=self._limits.close_timeout)
            if not done:
                closing.cancel()
        return isinstance(error, SessionClosed)

    async def receive(self) -> str:
        """The client's next message. Raises SessionClosed once the client has left or the
        session closed (a close from the writer, the pump or the watchdog ends a wait here)."""
        if self._state is SessionState.closed:
            raise SessionClosed
        reader = asyncio.current_task()
        self._reader = reader
        try:
            message = await self._websocket.receive()
        except asyncio.CancelledError:
            if self._interrupted and reader is not None and reader.uncancel() == 0:
                raise SessionClosed from None
            raise  # a cancel of the caller's own (a timeout, a shutdown)
        except (WebSocketDisconnect, RuntimeError):  # RuntimeError: after the close frame
            self._end()
            raise SessionClosed from None
        finally:
            self._reader = None
        if message["type"] == "websocket.disconnect":
            self._end()
            raise SessionClosed
        text: str | None = message.get("text")
        if text is None:
            # A binary frame. Said with a close code rather than an error frame, as the user's
            # frames are its own; the socket is of no use to a client that sends them anyway.
            log.info("binary frame from the client; closing its socket", **self._context)
            self.close(BINARY_FRAME)
            raise SessionClosed
        self._heard_at = asyncio.get_running_loop().time()
        return text

    async def hello(self, model: type[H]) -> H:
        """The client's first message, its hello, as `model`: anything else, or nothing within
        HELLO_TIMEOUT, closes the socket (NO_HELLO, HELLO_FIRST) and raises SessionClosed,
        before the user serves the client anything."""
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                raw = await self.receive()
        except TimeoutError:
            self.close(NO_HELLO)
            raise SessionClosed from None
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            self.close(HELLO_FIRST)
            raise SessionClosed from None

    def send(self, frame: F) -> None:
        """Queue a frame without waiting: a caller may hold a pool connection, which a client
        must never keep from the others. A full queue closes the socket (TOO_SLOW)."""
        if self._state is SessionState.closed:
            return
        # pydantic's own JSON encoder: one step, several times faster than dump + json.dumps.
        self.send_encoded(frame.model_dump_json())

    def send_encoded(self, message: str) -> None:
        """`send` for a frame already encoded: a broadcast encodes its frame once for all the
        sessions it goes to (the supervisors' live board)."""
        if self._state is SessionState.closed:
            return
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("client too slow; closing its socket", **self._context)
            self.close(TOO_SLOW)

    async def replay(self, plan: Replay[F], after: int | None) -> None:
        """Catch the client up (the events after `after`, when it says where it was, then what
        it holds now, then the ready frame) and go live. Raises SessionClosed when the session
        closed meanwhile, or when no pool connection came within the replay timeout."""
        if self._state is SessionState.closed:
            raise SessionClosed
        if self._state is not SessionState.opening:
            raise RuntimeError(f"replay while {self._state.value}: a session replays once")
        self._state = SessionState.replaying
        # Taken before the reads: an event that lands while they run comes again live, rather
        # than being lost between a read and this id. Events the hub has not seen yet all come
        # live, so missed events past this id are left to the pump.
        self._live_from = max(self._hub.last_event_id, after or 0)
        try:
            frames = await self._catch_up(plan, after)
        except TimeoutError:
            log.warning("no database connection to replay on; closing", **self._context)
            self.close(DATABASE_BUSY)
            raise SessionClosed from None
        for frame in [*frames, plan.ready(self._live_from)]:
            await self._put(frame)
        if self._state is SessionState.closed:
            raise SessionClosed
        self._state = SessionState.live
        self._start(self._pump(), "pump")

    def close(self, why: Closing) -> None:
        """Close the socket, once: from now on nothing is queued or written (what is queued is
        dropped). The close frame goes out from a task of its own, kept here (the loop keeps
        only a weak reference to a task), so that no caller waits for a client not reading."""
        if self._state is SessionState.closed:
            return
        self._end()
        self.closed_with = why
        self._closing = asyncio.get_running_loop().create_task(
            self._send_close(why), name="socket-close"
        )

    def _end(self) -> None:
        self._state = SessionState.closed
        # What is still queued is dropped, which also frees a task of this session's own
        # waiting for room (the replay, the pump): it sees the session closed and stops.
        while not self._outbox.empty():
            self._outbox.get_nowait()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._interrupted = True
            self._reader.cancel()

    async def _send_close(self, why: Closing) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self._websocket.close(code=why.code, reason=why.reason)

    def _start(self, work: Coroutine[object, object, None], role: str) -> None:
        self._tasks.append(asyncio.create_task(work, name=f"socket-{role}"))

    async def _catch_up(self, plan: Replay[F], after: int | None) -> list[F]:
        frames: list[F] = []
        # The frames are built first and the connection given back before any is queued: a
        # client slow to read them must not keep a connection from the others.
        async with self._pool.acquire(timeout=self._limits.replay_timeout) as connection:
            if after is not None:
                for event in await plan.missed(connection, after):
                    if event.id > self._live_from:
                        break
                    frame = await self._frame_for(connection, event)
                    if frame is not None:
                        frames.append(frame)
            frames.extend(await plan.holds(connection))
        return frames

    async def _put(self, frame: F) -> None:
        """Queue a frame, waiting for room (only this session's own tasks wait, which delays
        this client alone) but no longer than the hub keeps the client's events: once they
        overflow, the pump closes the socket (TOO_FAR_BEHIND) rather than wait on."""
        if self._state is SessionState.closed:
            return
        message = frame.model_dump_json()
        if not self._outbox.full():
            self._outbox.put_nowait(message)
            return
        room = asyncio.ensure_future(self._outbox.put(message))
        behind = asyncio.ensure_future(self._subscription.overflowed.wait())
        try:
            await asyncio.wait((room, behind), return_when=asyncio.FIRST_COMPLETED)
        finally:
            room.cancel()
            behind.cancel()

    async def _pump(self) -> None:
        subscription = self._subscription
        while self._state is SessionState.live:
            if subscription.overflowed.is_set():
                log.warning("client too far behind; closing its socket", **self._context)
                self.close(TOO_FAR_BEHIND)
                return
            event = await subscription.queue.get()
            if event.id <= self._live_from:
                continue
            ending = None if self._ends_session is None else self._ends_session(event)
            if ending is not None:
                self.close(ending)
                return
            try:
                frame = await self._frame_for(self._pool, event)
            except TimeoutError:  # no pool connection for a read in time
                self.close(DATABASE_BUSY)
                return
            except Exception:
                log.exception("no frame for an event; closing", event_id=event.id, **self._context)
                self.close(SERVER_ERROR)
                return
            if frame is not None:
                await self._put(frame)

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            if self._state is SessionState.closed:
                return
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for sends each frame from a
                # task of its own, one more task and one more turn of the loop per frame.
                async with asyncio.timeout(self._limits.send_timeout):
                    await self._websocket.send_text(message)
            except TimeoutError:
                log.warning("send timed out; closing the socket", **self._context)
                self.close(TOO_SLOW)
                return
            except (WebSocketDisconnect, RuntimeError):  # the client left
                self._end()
                return

    async def _watch_silence(self, silence: float) -> None:
        loop = asyncio.get_running_loop()
        while self._state is not SessionState.closed:
            quiet_for = loop.time() - self._heard_at
            if quiet_for >= silence:
                self.close(SILENT)
                return
            await asyncio.sleep(silence - quiet_for)

"""The socket session on real sockets: a small app served by uvicorn on a loopback port, in the
test's own loop, whose one websocket runs a script against a SocketSession."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import pytest
import uvicorn
import websockets
from fastapi import FastAPI, WebSocket
from pydantic import BaseModel
from websockets.frames import Close

from app.core import pg
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.pg import Reader
from app.core.socket_session import (
    BINARY_FRAME,
    DATABASE_BUSY,
    GOODBYE,
    SILENT,
    TOO_FAR_BEHIND,
    TOO_SLOW,
    CloseCode,
    Closing,
    Heartbeat,
    Limits,
    Replay,
    SessionClosed,
    SessionState,
    SocketSession,
)

BULKY = 20_000  # characters of a frame meant to fill a client's buffers


class Note(BaseModel):
    type: Literal["note"] = "note"
    event_id: int | None = None
    text: str


def event(event_id: int, text: str) -> EventRecord:
    return EventRecord(
        id=event_id,
        occurred_at=datetime.now(UTC),
        kind="note",
        subject_type="test",
        subject_id="t-1",
        actor="test",
        payload={"text": text},
    )


async def note_for(_db: Reader, record: EventRecord) -> Note | None:
    return Note(event_id=record.id, text=record.payload["text"])


async def nothing_missed(_connection: asyncpg.Connection, _after: int) -> list[EventRecord]:
    return []


async def holds_nothing(_connection: asyncpg.Connection) -> list[Note]:
    return []


def ready(last_event_id: int) -> Note:
    return Note(text=f"ready after {last_event_id}")


QUIET = Replay(missed=nothing_missed, holds=holds_nothing, ready=ready)


def unstarted_hub() -> EventHub:
    """A hub that never reads the log: `publish` hands events to its subscribers all the same."""
    return EventHub("postgresql://unused")


def note_session(
    websocket: WebSocket,
    hub: EventHub,
    pool: asyncpg.Pool,
    *,
    subscription: Subscription | None = None,
    heartbeat: Heartbeat | None = None,
    limits: Limits | None = None,
    ends_session: Callable[[EventRecord], Closing | None] | None = None,
) -> SocketSession[Note]:
    """A session of notes, every event of the hub wanted unless `subscription` says."""
    return SocketSession(
        websocket,
        hub=hub,
        subscription=subscription or hub.subscribe(lambda _event: True),
        pool=pool,
        frame_for=note_for,
        heartbeat=heartbeat or Heartbeat(every=5.0),
        context={},
        limits=limits,
        ends_session=ends_session,
    )


Script = Callable[[WebSocket], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(script: Script) -> AsyncIterator[tuple[str, asyncio.Future[None]]]:
    """A websocket at the URL yielded, running `script` for each client; the future yielded
    holds how the script ended (its error, if any)."""
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    app = FastAPI()

    @app.websocket("/socket")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await script(websocket)
        except Exception as error:
            finished.set_exception(error)
        else:
            finished.set_result(None)

    # Listening before the server starts: a client's connection waits in the backlog.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        yield f"ws://127.0.0.1:{port}/socket", finished
    finally:
        server.should_exit = True
        await task
        listener.close()


async def stuck_client_socket(url: str) -> socket.socket:
    """A client socket with a tiny receive buffer: once it stops reading, the server's writes
    to it stall after a few hundred kilobytes instead of many megabytes."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    await asyncio.get_running_loop().sock_connect(client, (host, int(port)))
    return client


async def read_until_closed(client: websockets.ClientConnection) -> tuple[list[str], Close]:
    """Every message the server sent, then the close frame it ended with."""
    messages: list[str] = []
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(30):
            while True:
                messages.append(str(await client.recv()))
    close = client.protocol.close_rcvd
    assert close is not None, "the server sent no close frame"
    return messages, close


def texts(messages: list[str]) -> list[str]:
    return [json.loads(message)["text"] for message in messages]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    connections = await pg.create_pool(database_url, size=2)
    yield connections
    await connections.close()


async def test_live_frames_wait_for_the_replay_and_none_comes_twice_or_after_the_close(
    pool: asyncpg.Pool,
) -> None:
    hub = unstarted_hub()
    states: list[SessionState] = []

    async def holds(_connection: asyncpg.Connection) -> list[Note]:
        return [Note(text="held")]

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool)

        async def missed(_connection: asyncpg.Connection, after: int) -> list[EventRecord]:
            states.append(session.state)
            # One more event lands while the replay reads, and its read sees it too: it must
            # come once, live, after the ready frame.
            hub.publish([event(2, "during the replay")])
            return [event(1, "before the replay"), event(2, "during the replay")]

        async with session:
            states.append(session.state)
            session.send(Note(text="an answer"))  # answers may go out before the replay
            hub.publish([event(1, "before the replay")])  # not live: the replay covers it
            await session.replay(Replay(missed=missed, holds=holds, ready=ready), after=0)
            states.append(session.state)
            with pytest.raises(RuntimeError, match="replays once"):
                await session.replay(QUIET, after=None)
            hub.publish([event(3, "live")])
            assert await session.receive() == "bye"
            session.close(GOODBYE)
            session.send(Note(text="after the close"))
            states.append(session.state)

    async with serving(script) as (url, finished), websockets.connect(url) as client:
        received = [json.loads(await client.recv())["text"] for _ in range(6)]
        await client.send("bye")
        after, closed = await read_until_closed(client)
        await finished

    assert received == [
        "an answer",
        "before the replay",
        "held",
        "ready after 1",
        "during the replay",
        "live",
    ]
    assert after == []
    assert (closed.code, closed.reason) == (CloseCode.NORMAL, GOODBYE.reason)
    assert states == [
        SessionState.opening,
        SessionState.replaying,
        SessionState.live,
        SessionState.closed,
    ]


async def test_a_full_queue_closes_the_socket_and_drops_what_was_queued(
    pool: asyncpg.Pool,
) -> None:
    hub = unstarted_hub()

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool, limits=Limits(queue=3))
        async with session:
            for n in range(4):  # no await in between: the writer has no turn
                session.send(Note(text=f"frame {n}"))
            assert session.closed_with == TOO_SLOW
            with pytest.raises(SessionClosed):
                await session.receive()

    async with serving(script) as (url, finished), websockets.connect(url) as client:
        received, closed = await read_until_closed(client)
        await finished

    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.TRY_AGAIN_LATER, TOO_SLOW.reason)


async def test_a_send_that_outlasts_its_timeout_closes_the_socket_and_ends_a_wait_to_receive(
    pool: asyncpg.Pool,
) -> None:
    hub = unstarted_hub()
    interrupted = asyncio.Event()

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool, limits=Limits(queue=1000, send_timeout=0.5))
        async with session:
            for _ in range(600):  # 12 MB: far more than the client's buffers hold
                session.send(Note(text="x" * BULKY))
            with pytest.raises(SessionClosed):
                await session.receive()  # the client says nothing: only the writer ends this
            assert session.closed_with == TOO_SLOW
            interrupted.set()

    async with serving(script) as (url, finished):
        client = await websockets.connect(
            url, sock=await stuck_client_socket(url), max_queue=1, compression=None
        )
        async with asyncio.timeout(10):
            await interrupted.wait()
        received, closed = await read_until_closed(client)  # reading again, at last
        await finished

    assert 0 < len(received) < 600
    assert (closed.code, closed.reason) == (CloseCode.TRY_AGAIN_LATER, TOO_SLOW.reason)


async def test_a_replay_that_gets_no_database_connection_in_time_closes_the_socket(
    database_url: str,
) -> None:
    hub = unstarted_hub()
    busy = await pg.create_pool(database_url, size=1)
    held = await busy.acquire()  # the pool's one connection, held by someone else

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, busy, limits=Limits(replay_timeout=0.2))
        async with session:
            with pytest.raises(SessionClosed):
                await session.replay(QUIET, after=None)
            assert session.closed_with == DATABASE_BUSY

    try:
        async with serving(script) as (url, finished), websockets.connect(url) as client:
            received, closed = await read_until_closed(client)
            await finished
    finally:
        await busy.release(held)
        await busy.close()

    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.TRY_AGAIN_LATER, DATABASE_BUSY.reason)


async def test_a_client_whose_events_overflow_the_hubs_bound_is_closed(
    pool: asyncpg.Pool,
) -> None:
    hub = unstarted_hub()
    behind = Subscription(wants=lambda _event: True, queue=asyncio.Queue(maxsize=2))
    for n in (1, 2, 3):
        behind.offer(event(n, "one too many" if n == 3 else "kept"))
    assert behind.overflowed.is_set()

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool, subscription=behind)
        async with session:
            await session.replay(QUIET, after=None)
            with pytest.raises(SessionClosed):
                await session.receive()  # ended by the pump
            assert session.closed_with == TOO_FAR_BEHIND

    async with serving(script) as (url, finished), websockets.connect(url) as client:
        received, closed = await read_until_closed(client)
        await finished

    assert "kept" not in texts(received)
    assert (closed.code, closed.reason) == (CloseCode.TRY_AGAIN_LATER, TOO_FAR_BEHIND.reason)


async def test_a_session_that_allows_some_silence_closes_a_client_silent_for_longer(
    pool: asyncpg.Pool,
) -> None:
    hub = unstarted_hub()

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool, heartbeat=Heartbeat(every=0.1, silence=0.3))
        async with session:
            assert await session.receive() == "still here"
            with pytest.raises(SessionClosed):
                await session.receive()  # nothing more: the watchdog ends the wait
            assert session.closed_with == SILENT

    async with serving(script) as (url, finished), websockets.connect(url) as client:
        await client.send("still here")
        received, closed = await read_until_closed(client)
        await finished

    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.SILENT, SILENT.reason)


async def test_a_binary_frame_closes_the_socket_with_a_code_and_a_reason_that_say_so(
    pool: asyncpg.Pool,
) -> None:
    """Every socket of the center speaks JSON text: a binary frame is answered with 1003
    (unsupported data) and a reason, not a traceback and a close with no frame."""
    hub = unstarted_hub()

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool)
        async with session:
            await session.replay(QUIET, after=None)
            assert await session.receive() == "text first"
            with pytest.raises(SessionClosed):
                await session.receive()
            assert session.closed_with == BINARY_FRAME

    async with serving(script) as (url, finished), websockets.connect(url) as client:
        assert texts([str(await client.recv())]) == ["ready after 0"]
        await client.send("text first")
        await client.send(b"\x00\x01 not text")
        received, closed = await read_until_closed(client)
        await finished  # the script's own error, had it failed

    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.UNSUPPORTED_DATA, BINARY_FRAME.reason)


async def test_an_event_that_ends_the_session_closes_it_when_live_and_never_when_replayed(
    pool: asyncpg.Pool,
) -> None:
    """A newer socket of the same client takes over: the event that says so closes this one
    when it comes live; the same kind of event in the replay (an older takeover, this very
    socket's own) closes nothing."""
    hub = unstarted_hub()
    taken = Closing(CloseCode.REPLACED, "taken over")

    def ends(record: EventRecord) -> Closing | None:
        return taken if record.payload["text"] == "taken over" else None

    async def missed(_connection: asyncpg.Connection, _after: int) -> list[EventRecord]:
        return [event(1, "taken over")]

    async def script(websocket: WebSocket) -> None:
        session = note_session(websocket, hub, pool, ends_session=ends)
        async with session:
            hub.publish([event(1, "taken over")])  # before the replay: the replay covers it
            await session.replay(Replay(missed=missed, holds=holds_nothing, ready=ready), 0)
            hub.publish([event(2, "live")])
            await read_live.wait()  # a close drops what is still queued: "live" is out first
            hub.publish([event(3, "taken over"), event(4, "after it")])
            with pytest.raises(SessionClosed):
                await session.receive()  # ended by the pump
            assert session.closed_with == taken

    read_live = asyncio.Event()
    async with serving(script) as (url, finished), websockets.connect(url) as client:
        first = [str(await client.recv()) for _ in range(3)]
        read_live.set()
        received, closed = await read_until_closed(client)
        await finished

    assert texts(first) == ["taken over", "ready after 1", "live"]
    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.REPLACED, taken.reason)

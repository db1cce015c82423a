"""The fan-out phase: supervisors watching the floor on their live sockets while it works.

`supervisors` sockets (`/v1/supervisor/ws`, one supervisor user, a ticket each) watch while
the fleet's agents take interactions arriving at `rate` (Poisson). Each socket keeps the queue
frames it received: the queue, the frame's event id (the last event the board had folded in)
and when it arrived. Afterwards every `interaction.queued` event of the phase is looked up, and
for each socket the first frame of its queue with an event id at least the event's is the one
that shows it: the lag is from the event's `occurred_at` (written with the change, in the same
transaction) to that frame's arrival. Same machine, same clock.

Frames are read without decoding them whole: the head of each (`type`, `event_id`, and for a
queue frame its id) is all the phase needs, and fifty sockets of every agent's and queue's
frames would cost the client more than the server.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.setup import PASSWORD, Center, call, login
from bench.stats import summary_ms

SUPERVISOR = "bench-supervisor"
HEAD = re.compile(r'^\{"type":"(\w+)","event_id":(\d+)')
QUEUE_ID = re.compile(r'"queue":\{"queue_id":"([0-9a-f-]{36})"')
CONNECT_TIMEOUT = 30.0

# The phase's new interactions: their event, when it was written, and their queue.
QUEUED = """
    SELECT e.id, extract(epoch FROM e.occurred_at)::float8 AS at, i.queue_id::text AS queue_id
    FROM events e JOIN interactions i ON i.id::text = e.subject_id
    WHERE e.kind = 'interaction.queued'
      AND e.occurred_at >= to_timestamp($1) AND e.occurred_at <= to_timestamp($2)
    ORDER BY e.id
"""


@dataclass
class Watcher:
    """One supervisor's socket: its queue frames as (event id, arrival) by queue."""

    socket: ClientConnection
    by_queue: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    frames: Counter[str] = field(default_factory=Counter)
    closed: str | None = None

    def heard(self, message: str, arrived: float) -> None:
        head = HEAD.match(message)
        if head is None:
            self.frames["other"] += 1
            return
        kind = head.group(1)
        self.frames[kind] += 1
        if kind == "queue":
            queue = QUEUE_ID.search(message, head.end())
            if queue is not None:
                frames = self.by_queue.setdefault(queue.group(1), [])
                frames.append((int(head.group(2)), arrived))

    def shown(self, queue_id: str, event_id: int) -> float | None:
        """When the first frame of the queue that folds `event_id` in arrived (wall clock)."""
        frames = self.by_queue.get(queue_id, [])
        at = bisect.bisect_left(frames, (event_id, 0.0))
        return frames[at][1] if at < len(frames) else None


async def add_supervisor(client: httpx.AsyncClient, center: Center) -> dict[str, str]:
    body = {
        "username": SUPERVISOR,
        "display_name": "Bench supervisor",
        "password": PASSWORD,
        "role": "supervisor",
    }
    await call(client, "POST", "/v1/users", 201, json=body, headers=center.admin_headers)
    return {"Authorization": f"Bearer {await login(client, SUPERVISOR)}"}


async def open_watcher(client: httpx.AsyncClient, ws_url: str, headers: dict[str, str]) -> Watcher:
    """A socket past its snapshot and ready."""
    issued = await call(client, "POST", "/v1/supervisor/tickets", 201, headers=headers)
    socket = await connect(
        f"{ws_url}/v1/supervisor/ws?ticket={issued['ticket']}",
        max_size=None,
        compression=None,
    )
    await socket.send(json.dumps({"type": "hello", "last_event_id": None}))
    while True:
        message = str(await socket.recv())
        if message.startswith('{"type":"ready"'):
            return Watcher(socket)


async def keep_reading(watcher: Watcher) -> None:
    try:
        async for message in watcher.socket:
            watcher.heard(str(message), time.time())
    except ConnectionClosed:
        pass
    close = watcher.socket.protocol.close_rcvd
    watcher.closed = "no close frame" if close is None else f"{close.code} {close.reason}"


@dataclass
class Supervisors:
    watchers: list[Watcher] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(
        self, client: httpx.AsyncClient, ws_url: str, headers: dict[str, str], count: int
    ) -> None:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            self.watchers = list(
                await asyncio.gather(*(open_watcher(client, ws_url, headers) for _ in range(count)))
            )
        loop = asyncio.get_running_loop()
        self.readers = [loop.create_task(keep_reading(w)) for w in self.watchers]

    async def close(self) -> None:
        for watcher in self.watchers:
            with contextlib.suppress(Exception):
                await watcher.socket.close()
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def lags(dsn: str, watchers: list[Watcher], start: float, end: float) -> dict[str, Any]:
    """Each new interaction of the window to each supervisor's frame that shows it."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(QUEUED, start, end)
    finally:
        await connection.close()
    seen: list[float] = []
    never = 0
    for row in rows:
        for watcher in watchers:
            shown = watcher.shown(row["queue_id"], row["id"])
            if shown is None:
                never += 1
            else:
                seen.append(max(0.0, shown - row["at"]))
    return {"changes": len(rows), "lag_ms": summary_ms(seen, never=never)}


def frame_rates(watchers: list[Watcher], start: float, end: float) -> dict[str, Any]:
    """Frames a supervisor received per second over the whole phase, by type; and the most
    frames one queue sent one supervisor within a second (coalescing: three, at 0, 0.5, 1 s)."""
    seconds = end - start
    total: Counter[str] = Counter()
    for watcher in watchers:
        total.update(watcher.frames)
    busiest = 0
    for watcher in watchers:
        for frames in watcher.by_queue.values():
            arrivals = [arrived for _, arrived in frames if start <= arrived <= end]
            for at, arrived in enumerate(arrivals):
                within = bisect.bisect_right(arrivals, arrived + 1.0, lo=at) - at
                busiest = max(busiest, within)
    return {
        "frames_per_supervisor_per_s": {
            kind: round(n / len(watchers) / seconds, 1) for kind, n in sorted(total.items())
        },
        "most_queue_frames_in_a_second": busiest,
    }

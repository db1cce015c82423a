"""The interaction stream: POST /v1/interactions, each its own task, over keep-alive connections.

Open loop: arrivals follow their schedule whether or not earlier requests have been answered, and
an arrival's send time is when it was due, so any wait for a free connection counts as latency.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.http import HttpError, Pool
from bench.setup import Center

CHANNELS = ("chat", "voice", "email")
CHANNEL_SHARES = (0.5, 0.3, 0.2)


async def poisson(
    rng: random.Random, rate: float, seconds: float, fire: Callable[[], object]
) -> int:
    """Call `fire` at `rate` per second (exponential gaps) for `seconds`; returns how often.
    An arrival is fired when due, whatever became of the ones before (open loop)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    due = start
    fired = 0
    while True:
        due += rng.expovariate(rate)
        if due - start >= seconds:
            break
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        fire()
        fired += 1
    remaining = start + seconds - loop.time()
    if remaining > 0:
        await asyncio.sleep(remaining)
    return fired


async def settle(tasks: set[asyncio.Task[None]], within: float) -> int:
    """Wait for the tasks under way (calls, chats) to end; returns how many were cut off."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(set(tasks), timeout=within)
    for task in pending:
        task.cancel()
    return len(pending)


@dataclass(slots=True)
class Sent:
    phase: str
    channel: str
    sent: float  # perf_counter when due
    sent_wall: float
    answered: float | None = None  # perf_counter of the response
    status: int | None = None  # HTTP status, None when the request failed outright


@dataclass
class Poster:
    http: Pool
    center: Center
    seed: int = 7
    sent: dict[str, Sent] = field(default_factory=dict)  # by external_ref
    failures: Counter[str] = field(default_factory=Counter)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _count: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def body(self, external_ref: str, channel: str) -> dict[str, object]:
        rng = self.rng
        priority = rng.randint(1, 5) if rng.random() < 0.1 else 0
        return {
            "channel": channel,
            "queue": rng.choice(self.center.queues),
            "customer_id": rng.choice(self.center.customers),
            "external_ref": external_ref,
            "priority": priority,
            "subject": "benchmark",
        }

    def fire(self, phase: str) -> str:
        """Send one interaction now, without waiting for the answer; returns its reference."""
        self._count += 1
        ref = f"bench-{phase}-{self._count:06d}"
        channel = self.rng.choices(CHANNELS, weights=CHANNEL_SHARES)[0]
        record = Sent(phase, channel, time.perf_counter(), time.time())
        self.sent[ref] = record
        task = asyncio.get_running_loop().create_task(self._post(record, self.body(ref, channel)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ref

    async def _post(self, record: Sent, body: dict[str, object]) -> None:
        try:
            answer = await self.http.post("/v1/interactions", body, self.center.admin_headers)
        except HttpError as error:
            self.failures[str(error).split(":", 1)[0]] += 1
            return
        record.answered = time.perf_counter()
        record.status = answer.status
        if answer.status not in (200, 201):
            self.failures[f"http {answer.status}"] += 1

    async def poisson(self, rate: float, seconds: float, phase: str) -> int:
        """Arrivals at `rate` per second (exponential gaps) for `seconds`; returns how many."""
        return await poisson(self.rng, rate, seconds, lambda: self.fire(phase))

    async def burst(self, count: int, phase: str, in_flight: int, within: float) -> float:
        """Up to `count` interactions as fast as the server takes them, for at most `within`
        seconds; returns the seconds it took."""
        gate = asyncio.Semaphore(in_flight)
        start = time.perf_counter()
        stop = start + within

        async def one() -> None:
            async with gate:
                if time.perf_counter() > stop:
                    return
                self._count += 1
                ref = f"bench-{phase}-{self._count:06d}"
                channel = self.rng.choices(CHANNELS, weights=CHANNEL_SHARES)[0]
                record = Sent(phase, channel, time.perf_counter(), time.time())
                self.sent[ref] = record
                await self._post(record, self.body(ref, channel))

        await asyncio.gather(*(one() for _ in range(count)))
        return time.perf_counter() - start

    async def settle(self, within: float = 60.0) -> None:
        """Wait for every request still in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

"""A real HTTP server on a loopback port that stands in for the outside world (a gateway's REST
API, a webhook's receiver): it records every request and answers as a test scripts it.

Served by uvicorn in a thread of its own, as `tests.support.LiveServer` serves the app, so the
test's event loop and the server's never wait on each other. Per path, a test lines up answers
(`script`): a status with headers and a body, one that echoes the request's credentials (a
careless server's error page), or one that never comes (`hang`, until the server stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import served_in_thread

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    hang: bool = False  # never answer (until the server stops)
    delay: float = 0.0  # seconds before answering
    echo_credentials: bool = False  # repeat the Authorization header in the body


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    body: bytes
    at: float  # time.monotonic() when it arrived


async def until(done: Callable[[], bool], what: str, *, seconds: float = 10) -> None:
    """Returns once `done()` holds, checked every 10 ms; fails after `seconds`."""
    for _ in range(int(seconds * 100)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"waited {seconds:g} s for {what}")


async def until_true(
    check: Callable[[], Awaitable[bool]], what: str, *, seconds: float = 10
) -> None:
    """`until` for a check that must await (a query)."""
    for _ in range(int(seconds * 100)):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"waited {seconds:g} s for {what}")


class Receiver:
    def __init__(self) -> None:
        self.base_url = ""
        self.default = Answer()  # when nothing is scripted for a path
        self.received: list[Received] = []
        # Paths that had two requests under way at once.
        self.overlapping: list[str] = []
        self._answers: dict[str, deque[Answer]] = defaultdict(deque)
        self._under_way: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[Receiver]:
        receiver = cls()
        app = Starlette(routes=[Route("/{path:path}", receiver._handle, methods=METHODS)])
        options = {"lifespan": "off", "access_log": False}
        with served_in_thread(app, "the receiver", **options) as base_url:
            receiver.base_url = base_url
            try:
                yield receiver
            finally:
                receiver._stopping.set()  # before the server stops: hanging answers end

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to `path` so, in order; `default` once they are used up."""
        with self._lock:
            self._answers[path].extend(answers)

    def to(self, path: str) -> list[Received]:
        with self._lock:
            return [request for request in self.received if request.path == path]

    async def until_received(self, path: str, count: int = 1) -> list[Received]:
        """The requests to `path`, once there are `count` of them."""
        await until(lambda: len(self.to(path)) >= count, f"{count} request(s) to {path}")
        return self.to(path)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        form = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode())
        with self._lock:
            self.received.append(
                Received(request.method, path, dict(request.headers), form, body, time.monotonic())
            )
            self._under_way[path] += 1
            if self._under_way[path] > 1:
                self.overlapping.append(path)
            answers = self._answers[path]
            answer = answers.popleft() if answers else self.default
        try:
            if answer.hang:
                await asyncio.to_thread(self._stopping.wait)
            await asyncio.sleep(answer.delay)
            text = answer.body
            if answer.echo_credentials:
                text += f" (you sent Authorization: {request.headers.get('authorization')})"
            return Response(text, status_code=answer.status, headers=dict(answer.headers))
        finally:
            with self._lock:
                self._under_way[path] -= 1

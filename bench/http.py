"""A small HTTP/1.1 client for the load: a fixed pool of keep-alive connections fed by one queue.

A general client spends more CPU per request than the server's cheapest endpoints, and on a
shared two-core machine the benchmark's own CPU is taken from the server; this one does only
what the stream needs: POST a JSON body (or a webhook's form), read the status and the body,
keep the connection. A request waits in the queue when every connection is busy, as with any
pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

RESPONSE_TIMEOUT = 120.0


class HttpError(Exception):
    """The request could not be completed (connection lost, bad answer, timeout)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class _Request:
    head: bytes
    body: bytes
    answer: asyncio.Future[Answer]


class Pool:
    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host = host
        self.port = port
        self.size = connections
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work()) for _ in range(self.size)]

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def post(self, path: str, payload: Any, headers: dict[str, str]) -> Answer:
        return await self.send(path, json.dumps(payload).encode(), "application/json", headers)

    async def send(
        self, path: str, body: bytes, content_type: str, headers: dict[str, str]
    ) -> Answer:
        """POST `body` as it is (a form, for the telephony webhooks)."""
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(head, body, answer))
        return await answer

    async def _work(self) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while True:
            request = await self._queue.get()
            if request.answer.done():
                continue
            for attempt in (1, 2):
                reused = writer is not None
                try:
                    if writer is None or reader is None or writer.is_closing():
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                    writer.write(request.head + request.body)
                    async with asyncio.timeout(RESPONSE_TIMEOUT):
                        answer, keep = await _read_answer(reader)
                    if not request.answer.done():
                        request.answer.set_result(answer)
                    if not keep:
                        writer.close()
                        writer = None
                    break
                except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                    if writer is not None:
                        with contextlib.suppress(Exception):
                            writer.close()
                    writer = None
                    # The server closes idle keep-alive connections; a request that met one
                    # closed before any answer is sent again once on a fresh connection (safe:
                    # an interaction with the same external_ref is the same interaction).
                    stale = isinstance(error, ConnectionResetError | BrokenPipeError) or (
                        isinstance(error, asyncio.IncompleteReadError) and not error.partial
                    )
                    if reused and stale and attempt == 1:
                        continue
                    if not request.answer.done():
                        request.answer.set_exception(HttpError(f"{type(error).__name__}: {error}"))
                    break


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    keep = True
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return Answer(status, bytes(body)), keep
    return Answer(status, await reader.readexactly(length)), keep

"""A background job run every few seconds on each replica (the sweeps), that a failing round of
leaves running: a database that does not answer now is tried again next time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from app.core.logging import get_logger

log = get_logger(__name__)


class Periodic:
    """`work` every `every` seconds from `start` until `stop`; a round failing with one of
    `passing` is logged as `what` and the next one comes all the same."""

    def __init__(
        self,
        what: str,
        work: Callable[[], Awaitable[object]],
        every: float,
        passing: tuple[type[BaseException], ...],
    ) -> None:
        self._what, self._work, self._every, self._passing = what, work, every, passing
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._what)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._work()
            except self._passing as error:
                log.warning(f"{self._what} failed; next time", error=repr(error))
            await asyncio.sleep(self._every)

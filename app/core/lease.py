"""This replica's lease: a row in `replicas` it renews well inside its time to live.

A desk socket lives on one replica (one server process). If that process dies, its sockets go
with it, but nothing tells the database: the agents still look available until their silence
runs out (`CC_SILENCE_SECONDS`), and meanwhile the matcher of a surviving replica offers them
work nobody will ever see. So each replica holds a lease, and a desk is in routing only while
the lease of the replica holding it is live: offers are written only for such desks
(app/routing/offers.py), and once a lease lapses the leading matcher takes its desks out of
routing at once (app/routing/sweeper.py).

The lease is renewed every fifth of its time to live by one statement on a connection of its
own (a busy pool must not make a healthy replica look dead). The database's clock decides
whether a lease is live; the replica counts its lease lapsed a little earlier, from its own
clock: from the moment it asked for the last renewal that succeeded, never from the answer.
A replica that finds its lease lapsed (a long pause, a lost connection) takes a new one and
tells `on_lapse` the old id, so that the desks opened under it are closed (they reconnect,
and are counted under the new lease); a lapsed lease is never renewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.logging import get_logger
from app.core.models import Base
from app.core.pg import connect

log = get_logger(__name__)


class Replica(Base):
    """A server process's lease. Lapsed rows stay a week (offers name the lease they were
    written under), then the sweeper deletes them."""

    __tablename__ = "replicas"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    # When the sweeper took the lapsed lease's desks out of routing.
    desks_released_at: Mapped[datetime | None]


# Takes the lease or renews it, only while it is live: a lapsed lease returns no row.
HOLD = """
    INSERT INTO replicas (id, host, pid, started_at, lease_until)
    VALUES ($1, $2, $3, statement_timestamp(),
            statement_timestamp() + make_interval(secs => $4))
    ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until
    WHERE replicas.lease_until > statement_timestamp()
    RETURNING lease_until
"""
# A replica stopping on purpose ends its lease, so its desks leave routing at the next sweep.
END = "UPDATE replicas SET lease_until = statement_timestamp() WHERE id = $1"

RENEWALS_PER_LEASE = 5


class ReplicaLease:
    def __init__(
        self,
        database_url: str,
        *,
        seconds: float,
        on_lapse: Callable[[uuid.UUID], None] | None = None,
    ) -> None:
        self._database_url = database_url
        self._seconds = seconds
        self._every = seconds / RENEWALS_PER_LEASE
        self._on_lapse = on_lapse
        self._id = uuid.uuid4()
        self._live_until = float("-inf")  # monotonic: when this replica counts the lease lapsed
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._renewed = asyncio.Event()

    @property
    def id(self) -> uuid.UUID:
        """The lease a desk opened now is counted under (its row may not be written yet while
        the database is away: the desk is then not in routing until it is)."""
        return self._id

    @property
    def live(self) -> bool:
        return time.monotonic() < self._live_until

    async def start(self) -> None:
        """Start renewing; waits for the first lease for at most one renewal's interval, so
        that a replica whose database answers serves desks in routing from the start."""
        self._task = asyncio.create_task(self._run(), name="replica lease")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._renewed.wait(), timeout=self._every)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.execute(END, self._id), timeout=2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), timeout=2)

    async def renew(self) -> bool:
        """One renewal (the first takes the lease): True if the lease is live now. A lapse
        found here or counted from this replica's clock is handed to `on_lapse`."""
        asked = time.monotonic()
        try:
            until = await asyncio.wait_for(self._hold(), timeout=self._every)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("replica lease not renewed", error=repr(error))
            self._drop_connection()
            if time.monotonic() >= self._live_until > float("-inf"):
                self._lapsed("not renewed within its time to live")
            return False
        if until is None:
            self._lapsed("the database found it lapsed")
            return await self.renew()  # a new id: taken at once, never refused
        self._live_until = asked + self._seconds
        self._renewed.set()
        return True

    async def _hold(self) -> datetime | None:
        if self._connection is None or self._connection.is_closed():
            self._connection = await connect(self._database_url)
        until: datetime | None = await self._connection.fetchval(
            HOLD, self._id, socket.gethostname()[:255], os.getpid(), self._seconds
        )
        return until

    def _lapsed(self, why: str) -> None:
        """A new lease for the desks that open from now on; those of the old one are closed."""
        lapsed, self._id = self._id, uuid.uuid4()
        # How long since the last renewal that held was asked: a pause of the process (or of
        # its machine) longer than the lease shows here, a slow database does not.
        since = time.monotonic() - (self._live_until - self._seconds)
        self._live_until = float("-inf")
        log.warning(
            "replica lease lapsed: closing its desks",
            lease_id=str(lapsed),
            why=why,
            last_renewed_s_ago=round(since, 2) if since != float("inf") else None,
        )
        if self._on_lapse is not None:
            self._on_lapse(lapsed)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()

    async def _run(self) -> None:
        while True:
            try:
                await self.renew()
            except Exception as error:  # never let the lease's task die
                log.error("replica lease failed", error=repr(error))
            await asyncio.sleep(self._every)

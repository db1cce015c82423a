"""The hot-path database: a plain asyncpg pool, for the statements run on every interaction.

The ORM is the right tool for the admin API, where clarity beats microseconds. Routing is not:
intake, matcher passes, offer decisions and screen pops run a few times per interaction, and
SQLAlchemy's per-statement work (compiling, cache keys, unit of work) cost several times the
database's own time there (docs/benchmarks.md). These paths write SQL with `$n` parameters on
asyncpg directly; asyncpg prepares and caches each statement per connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.core.hub import EventRecord, asyncpg_dsn

ACQUIRE_TIMEOUT = 10.0


async def _setup(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep(connection: asyncpg.Connection) -> None:
    """Nothing to reset between borrowers: these paths leave no session state behind (no SET,
    LISTEN or session-level lock; the matcher's lock lives on a connection of its own, outside
    every pool). The one setting made once at connect (`on_connect`) is meant to stay."""


async def create_pool(
    database_url: str,
    *,
    size: int,
    on_connect: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """The hot pool. `on_connect` is awaited with each new connection once it is set up (the
    app registers them with its hub: `EventHub.own`, which sets a session setting that stays
    for the connection's life)."""

    async def init(connection: asyncpg.Connection) -> None:
        await _setup(connection)
        if on_connect is not None:
            await on_connect(connection)

    # reset=_keep saves the reset statement asyncpg would otherwise run on every release;
    # min_size=0 lets the app start while the database is down (/health then says so).
    return await asyncpg.create_pool(
        asyncpg_dsn(database_url), min_size=0, max_size=size, init=init, reset=_keep
    )


async def connect(database_url: str) -> asyncpg.Connection:
    """One connection of its own, outside any pool, with the pool's codecs."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    await _setup(connection)
    return connection


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection in one transaction: committed on success, rolled back on any error.

    Waiting for a free connection ends with TimeoutError after ACQUIRE_TIMEOUT seconds, so a
    starved pool fails a request instead of hanging it.
    """
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection, connection.transaction():
        yield connection


def now() -> datetime:
    return datetime.now(UTC)


INSERT_EVENTS = """
    INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
    SELECT $1, kind, subject_type, subject_id, actor, payload::jsonb
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        WITH ORDINALITY AS e(kind, subject_type, subject_id, actor, payload, n)
    ORDER BY n
    RETURNING id
"""


class Events:
    """Events gathered during one transaction and written with one statement at its end.

    Ids follow the order of `add`, as the insert keeps the order of its input arrays.
    Payloads travel as JSON text, so the statement works on any asyncpg connection whatever
    its codecs (SQLAlchemy's connections encode jsonb differently from this pool's).
    After `write`, `written` holds the events as the hub will read them, so that once the
    transaction commits the caller can hand them to its replica's hub at once
    (`EventHub.publish`) instead of waiting for the NOTIFY and the hub's read.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, str, str, str]] = []
        self.written: list[EventRecord] = []

    def add(
        self,
        kind: str,
        *,
        subject_type: str,
        subject_id: object,
        actor: str,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self._rows.append((kind, subject_type, str(subject_id), actor, json.dumps(payload or {})))

    def note_written(self, records: Iterable[EventRecord]) -> None:
        """Events a statement of the caller's own inserted (so they are published too)."""
        self.written.extend(records)

    async def write(self, connection: asyncpg.Connection) -> None:
        if not self._rows:
            return
        columns: Sequence[list[Any]] = [list(column) for column in zip(*self._rows, strict=True)]
        moment = now()
        # Identity values are drawn in input order (ORDER BY n), so sorted ids match the rows.
        ids = sorted(row["id"] for row in await connection.fetch(INSERT_EVENTS, moment, *columns))
        self.written.extend(
            EventRecord(
                id=event_id,
                occurred_at=moment,
                kind=kind,
                subject_type=subject_type,
                subject_id=subject_id,
                actor=actor,
                payload=json.loads(payload),
            )
            for event_id, (kind, subject_type, subject_id, actor, payload) in zip(
                ids, self._rows, strict=True
            )
        )
        self._rows.clear()

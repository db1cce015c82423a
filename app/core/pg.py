"""The hot-path database: a plain asyncpg pool, for the statements run on every interaction.

The ORM is the right tool for the admin API, where clarity beats microseconds. Routing is not:
intake, matcher passes, offer decisions and screen pops run a few times per interaction, and
SQLAlchemy's per-statement work (compiling, cache keys, unit of work) cost several times the
database's own time there (docs/benchmarks.md). These paths write SQL with `$n` parameters on
asyncpg directly; asyncpg prepares and caches each statement per connection. Their events go
through an `app.core.events.Events`, like every other writer's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TypeAlias

import asyncpg

from app.core.hub import asyncpg_dsn

ACQUIRE_TIMEOUT = 10.0

# A pool works wherever a connection does for a single statement: it lends one to each.
Reader: TypeAlias = asyncpg.Connection | asyncpg.Pool


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

"""The hot-path database: a plain asyncpg pool, for the statements run on every interaction.

The ORM is the right tool for the admin API, where clarity beats microseconds. Routing is not:
intake, matcher passes, offer decisions and screen pops run a few times per interaction, and
SQLAlchemy's per-statement work (compiling, cache keys, unit of work) cost several times the
database's own time there (docs/benchmarks.md). These paths write SQL with `$n` parameters on
asyncpg directly; asyncpg prepares and caches each statement per connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.core.hub import asyncpg_dsn


async def _setup(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(database_url: str, *, size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        asyncpg_dsn(database_url), min_size=1, max_size=size, init=_setup
    )


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection in one transaction: committed on success, rolled back on any error."""
    async with pool.acquire() as connection, connection.transaction():
        yield connection


def now() -> datetime:
    return datetime.now(UTC)


INSERT_EVENTS = """
    INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
    SELECT $1, kind, subject_type, subject_id, actor, payload
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
        WITH ORDINALITY AS e(kind, subject_type, subject_id, actor, payload, n)
    ORDER BY n
"""


class Events:
    """Events gathered during one transaction and written with one statement at its end.

    Ids follow the order of `add`, as the insert keeps the order of its input arrays.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, str, str, dict[str, Any]]] = []

    def add(
        self,
        kind: str,
        *,
        subject_type: str,
        subject_id: object,
        actor: str,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self._rows.append((kind, subject_type, str(subject_id), actor, payload or {}))

    def __len__(self) -> int:
        return len(self._rows)

    async def write(self, connection: asyncpg.Connection) -> None:
        if not self._rows:
            return
        columns: Sequence[list[Any]] = [list(column) for column in zip(*self._rows, strict=True)]
        await connection.execute(INSERT_EVENTS, now(), *columns)
        self._rows.clear()

"""The floors to compare against: bare asyncpg loops on the server's PostgreSQL, no server.

`run`, the issue's baseline: per item, in one transaction, as separate statements (DESIGN.md
section 3 explains why not one `UPDATE ... WHERE id = (SELECT ... SKIP LOCKED)`): insert the
item; lock a free agent with `SELECT ... FOR UPDATE SKIP LOCKED`; insert the offer; commit,
which releases the lock.

`run_lifecycle`: an interaction's whole life as the benchmark's desks drive it, with the least
the product must keep: the routing transaction with its events (the agent marked busy), then
the accept (offer and interaction updated, two events) and the completion (interaction and agent
updated, an event). Each is its own transaction, because a person decides each at a different
moment, and one statement, the fewest round trips. Lean tables, no triggers, no look-ups, no
screen pop: a server that routes interactions one by one and keeps an audit trail of every step
writes no less than this.

Several connections run each loop at once, in a database of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from bench.stats import percentile

SCHEMA = """
DROP TABLE IF EXISTS baseline_offers, baseline_items, baseline_agents;
CREATE TABLE baseline_agents (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE baseline_items (
    id bigserial PRIMARY KEY,
    external_ref text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE baseline_offers (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES baseline_items (id),
    agent_id integer NOT NULL REFERENCES baseline_agents (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

AGENTS = (
    "INSERT INTO baseline_agents (id, name) "
    "SELECT n, 'agent' || n FROM generate_series(1, $1::int) AS n"
)
INSERT_ITEM = "INSERT INTO baseline_items (external_ref) VALUES ($1) RETURNING id"
LOCK_AGENT = "SELECT id FROM baseline_agents ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
INSERT_OFFER = "INSERT INTO baseline_offers (item_id, agent_id) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True)
class BaselineResult:
    routed_per_s: float
    p50_ms: float
    p99_ms: float
    items: int
    no_agent: int  # items for which no free agent was locked (should be 0)
    connections: int
    seconds: float


LIFECYCLE_SCHEMA = """
DROP TABLE IF EXISTS lifecycle_events, lifecycle_offers, lifecycle_items, lifecycle_agents;
CREATE TABLE lifecycle_agents (
    id integer PRIMARY KEY,
    state text NOT NULL DEFAULT 'available',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE lifecycle_items (
    id bigserial PRIMARY KEY,
    external_ref text NOT NULL UNIQUE,
    state text NOT NULL,
    agent_id integer REFERENCES lifecycle_agents (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    assigned_at timestamptz,
    ended_at timestamptz
);
CREATE TABLE lifecycle_offers (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES lifecycle_items (id),
    agent_id integer NOT NULL REFERENCES lifecycle_agents (id),
    state text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz
);
CREATE TABLE lifecycle_events (
    id bigserial PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    subject_id bigint NOT NULL,
    payload jsonb NOT NULL
);
"""

LIFECYCLE_AGENTS = "INSERT INTO lifecycle_agents (id) SELECT generate_series(1, $1::int)"
# Each decision is one statement (its own transaction): the fewest round trips and commits.
ROUTE = """
WITH item AS (
    INSERT INTO lifecycle_items (external_ref, state) VALUES ($1, 'offered') RETURNING id
), agent AS (
    SELECT id FROM lifecycle_agents WHERE state = 'available' ORDER BY id LIMIT 1
    FOR UPDATE SKIP LOCKED
), offer AS (
    INSERT INTO lifecycle_offers (item_id, agent_id) SELECT item.id, agent.id FROM item, agent
    RETURNING id, item_id, agent_id
), busy AS (
    UPDATE lifecycle_agents a SET state = 'busy', updated_at = now()
    FROM offer WHERE a.id = offer.agent_id
), logged AS (
    INSERT INTO lifecycle_events (kind, subject_id, payload)
    SELECT kind, offer.item_id, jsonb_build_object('agent_id', offer.agent_id)
    FROM offer, unnest(ARRAY['interaction.queued', 'interaction.offered']) AS kind
)
SELECT id, item_id FROM offer
"""
ACCEPT = """
WITH offer AS (
    UPDATE lifecycle_offers SET state = 'accepted', decided_at = now() WHERE id = $1
    RETURNING item_id, agent_id
), assigned AS (
    UPDATE lifecycle_items i SET state = 'assigned', agent_id = offer.agent_id,
                                 assigned_at = now()
    FROM offer WHERE i.id = offer.item_id
), logged AS (
    INSERT INTO lifecycle_events (kind, subject_id, payload)
    SELECT kind, offer.item_id, jsonb_build_object('agent_id', offer.agent_id)
    FROM offer, unnest(ARRAY['offer.accepted', 'interaction.assigned']) AS kind
)
SELECT count(*) FROM offer
"""
COMPLETE = """
WITH item AS (
    UPDATE lifecycle_items SET state = 'completed', ended_at = now() WHERE id = $1
    RETURNING id, agent_id
), freed AS (
    UPDATE lifecycle_agents a SET state = 'available', updated_at = now()
    FROM item WHERE a.id = item.agent_id
), logged AS (
    INSERT INTO lifecycle_events (kind, subject_id, payload)
    SELECT 'interaction.completed', item.id, jsonb_build_object('agent_id', item.agent_id)
    FROM item
)
SELECT count(*) FROM item
"""


async def _lifecycle(connection: asyncpg.Connection, ref: str) -> bool:
    routed = await connection.fetchrow(ROUTE, ref)
    if routed is None:
        return False
    await connection.fetchval(ACCEPT, routed["id"])
    await connection.fetchval(COMPLETE, routed["item_id"])
    return True


async def _routing_transaction(connection: asyncpg.Connection, ref: str) -> bool:
    async with connection.transaction():
        item = await connection.fetchval(INSERT_ITEM, ref)
        agent = await connection.fetchval(LOCK_AGENT)
        if agent is None:
            return False
        await connection.execute(INSERT_OFFER, item, agent)
    return True


async def run(dsn: str, *, agents: int, connections: int, seconds: float) -> BaselineResult:
    await _prepare(dsn, SCHEMA, AGENTS, max(agents, connections))
    return await _drive(dsn, _routing_transaction, connections=connections, seconds=seconds)


async def run_lifecycle(
    dsn: str, *, agents: int, connections: int, seconds: float
) -> BaselineResult:
    await _prepare(dsn, LIFECYCLE_SCHEMA, LIFECYCLE_AGENTS, max(agents, connections))
    return await _drive(dsn, _lifecycle, connections=connections, seconds=seconds)


async def _prepare(dsn: str, schema: str, agent_rows: str, agents: int) -> None:
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(schema)
        await setup.execute(agent_rows, agents)
    finally:
        await setup.close()


async def _drive(
    dsn: str,
    one: Callable[[asyncpg.Connection, str], Awaitable[bool]],
    *,
    connections: int,
    seconds: float,
) -> BaselineResult:
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    latencies: list[list[float]] = [[] for _ in pool]
    misses = [0] * len(pool)
    warmup = min(1.0, seconds / 5)
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def loop(index: int, connection: asyncpg.Connection) -> None:
        n = 0
        while True:
            began = time.perf_counter()
            if began >= stop:
                return
            n += 1
            if not await one(connection, f"b{index}-{n}"):
                misses[index] += 1
            if began >= measure_from:
                latencies[index].append(time.perf_counter() - began)

    try:
        await asyncio.gather(*(loop(i, c) for i, c in enumerate(pool)))
    finally:
        await asyncio.gather(*(c.close() for c in pool), return_exceptions=True)
    elapsed = time.perf_counter() - measure_from
    everything = sorted(x for per in latencies for x in per)
    return BaselineResult(
        routed_per_s=round(len(everything) / elapsed, 1),
        p50_ms=round(percentile(everything, 50) * 1000, 3),
        p99_ms=round(percentile(everything, 99) * 1000, 3),
        items=len(everything),
        no_agent=sum(misses),
        connections=connections,
        seconds=round(elapsed, 2),
    )

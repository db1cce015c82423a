"""The floor to compare against: the minimum routing transaction in a bare asyncpg loop.

Per item, in one transaction, as separate statements (DESIGN.md section 3 explains why not one
`UPDATE ... WHERE id = (SELECT ... SKIP LOCKED)`): insert the item; lock a free agent with
`SELECT ... FOR UPDATE SKIP LOCKED`; insert the offer; commit, which releases the lock. Several
connections run the loop at once against the same PostgreSQL as the server, in its own database.
"""

from __future__ import annotations

import asyncio
import time
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


async def run(dsn: str, *, agents: int, connections: int, seconds: float) -> BaselineResult:
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(SCHEMA)
        await setup.executemany(
            "INSERT INTO baseline_agents (id, name) VALUES ($1, $2)",
            [(i, f"agent{i}") for i in range(1, max(agents, connections) + 1)],
        )
    finally:
        await setup.close()

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
            async with connection.transaction():
                item = await connection.fetchval(INSERT_ITEM, f"b{index}-{n}")
                agent = await connection.fetchval(LOCK_AGENT)
                if agent is None:
                    misses[index] += 1
                else:
                    await connection.execute(INSERT_OFFER, item, agent)
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

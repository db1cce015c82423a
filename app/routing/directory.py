"""The routable agents as a matcher pass needs them, read cheaply pass after pass.

A pass needs every agent with room: its state, capacity, idle time, what it holds, and its
skills. Reading all of that for 500 agents, skills as JSON, and building 500 policy objects
cost about 15 ms a pass (docs/benchmarks.md), more than the rest of the pass together. Most of
it does not change between two passes a few milliseconds apart. So the directory reads only
the small changing part every pass (each agent's row version and load counts, which must be
fresh: capacity is a rule) and keeps the rest:

- skills, per agent, valid while the agent's `skills_version` is unchanged (replacing skills
  moves it; the row's `updated_at` would not do, as it moves on every change of state, several
  times per interaction, and each move cost a pass a second round trip); a skill renamed
  clears them all;
- the policy's `AvailableAgent`, reused while the row version, the skills version and the
  loads are unchanged.

Nothing cached can break a routing rule: capacity, load, state and presence come from the
database under the matcher's lock on every pass.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

import asyncpg

from app.core.pg import now
from app.routing import policy

# Every routable agent with room on some channel, with its row version, loads and last sign of
# life. Silence is checked by the caller, not here: a filter on `last_seen_at > now - silence`
# is estimated from statistics that are always older than the window, so PostgreSQL expected
# one row, chose nested loops, and the read grew from 3.5 to 19 ms (200 to 5,700 buffers) within
# a minute of a benchmark run (pg_stat_statements and auto_explain, docs/benchmarks.md).
ROUTABLE_AGENTS = """
    WITH held AS (
        SELECT agent_id, channel FROM offers WHERE state = 'pending'
        UNION ALL
        SELECT agent_id, channel FROM interactions
        WHERE state IN ('assigned', 'wrap_up') AND agent_id IS NOT NULL
    ), loads AS (
        SELECT agent_id,
               count(*) FILTER (WHERE channel IN ('voice', 'callback')) AS voice,
               count(*) FILTER (WHERE channel = 'chat') AS chat,
               count(*) FILTER (WHERE channel = 'email') AS email
        FROM held GROUP BY agent_id
    )
    SELECT a.id, a.updated_at, a.skills_version,
           a.capacity_voice, a.capacity_chat, a.capacity_email, a.idle_since,
           a.state = 'wrap_up' AS in_wrap_up, p.last_seen_at,
           coalesce(l.voice, 0) AS voice, coalesce(l.chat, 0) AS chat,
           coalesce(l.email, 0) AS email
    FROM agents a
    JOIN users u ON u.id = a.user_id
    JOIN agent_presence p ON p.agent_id = a.id
    LEFT JOIN loads l ON l.agent_id = a.id
    WHERE a.state IN ('available', 'busy', 'wrap_up')
      AND u.is_active
      AND (coalesce(l.voice, 0) < a.capacity_voice
           OR coalesce(l.chat, 0) < a.capacity_chat
           OR coalesce(l.email, 0) < a.capacity_email)
"""

# The same, only agents holding one of the skills $1. Written as a separate IN (a semi-join,
# one pass over agent_skills) rather than `$2 IS NULL OR EXISTS (...)`: PostgreSQL cannot turn
# an OR-ed EXISTS into a join and probed the skills once per agent, which made this the most
# expensive statement of a pass (docs/benchmarks.md).
ROUTABLE_AGENTS_WITH_SKILLS = (  # two constants joined: no outside text
    ROUTABLE_AGENTS  # noqa: S608
    + """
      AND a.id IN (SELECT s.agent_id FROM agent_skills s JOIN skills k ON k.id = s.skill_id
                   WHERE k.name = ANY($1::text[]))
"""
)

SKILLS_OF = """
    SELECT s.agent_id, k.name, s.proficiency
    FROM agent_skills s JOIN skills k ON k.id = s.skill_id
    WHERE s.agent_id = ANY($1::uuid[])
"""

Version = tuple[datetime, int, int, int, int]  # row and skills versions, the three loads


class AgentDirectory:
    def __init__(self) -> None:
        self._skills: dict[uuid.UUID, tuple[int, Mapping[str, int]]] = {}
        self._agents: dict[uuid.UUID, tuple[Version, policy.AvailableAgent]] = {}

    def forget(self) -> None:
        """Drop everything kept (a skill was renamed or removed)."""
        self._skills.clear()
        self._agents.clear()

    async def routable(
        self,
        connection: asyncpg.Connection,
        silence: timedelta,
        *,
        any_of: frozenset[str] | None = None,
    ) -> list[policy.AvailableAgent]:
        """The routable agents; with `any_of`, only those holding at least one of those skills
        (the waiting work all needs one of them: the others could not qualify anyway)."""
        if any_of is None:
            found = await connection.fetch(ROUTABLE_AGENTS)
        else:
            found = await connection.fetch(ROUTABLE_AGENTS_WITH_SKILLS, sorted(any_of))
        seen_after = now() - silence
        rows = [row for row in found if row["last_seen_at"] > seen_after]
        await self._refresh_skills(connection, rows)
        agents = [self._agent(row) for row in rows]
        if len(self._agents) > 4 * max(len(rows), 1000):  # agents gone from routing: let go
            present = {row["id"] for row in rows}
            self._agents = {k: v for k, v in self._agents.items() if k in present}
        return agents

    async def _refresh_skills(
        self, connection: asyncpg.Connection, rows: list[asyncpg.Record]
    ) -> None:
        """Read the skills of every agent whose row version moved. A `forget()` while the read
        is under way drops what was kept, so go round until every agent's skills are known."""
        versions = {row["id"]: row["skills_version"] for row in rows}
        while stale := [
            agent_id
            for agent_id, version in versions.items()
            if (known := self._skills.get(agent_id)) is None or known[0] != version
        ]:
            levels: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
            for agent_id, name, level in await connection.fetch(SKILLS_OF, stale):
                levels[agent_id][name] = level
            for agent_id in stale:
                self._skills[agent_id] = (versions[agent_id], levels.get(agent_id, {}))

    def _agent(self, row: asyncpg.Record) -> policy.AvailableAgent:
        agent_id = row["id"]
        version: Version = (
            row["updated_at"],
            row["skills_version"],
            row["voice"],
            row["chat"],
            row["email"],
        )
        known = self._agents.get(agent_id)
        if known is not None and known[0] == version:
            return known[1]
        agent = policy.AvailableAgent(
            id=agent_id,
            skills=self._skills[agent_id][1],
            capacity=policy.Capacity(
                row["capacity_voice"], row["capacity_chat"], row["capacity_email"]
            ),
            load=policy.Load(row["voice"], row["chat"], row["email"]),
            idle_since=row["idle_since"],
            in_wrap_up=row["in_wrap_up"],
        )
        self._agents[agent_id] = (version, agent)
        return agent

"""The routable agents as a matcher pass needs them, read cheaply pass after pass.

A pass needs every agent with room: its state, capacity, idle time, what it holds, and its
skills. Reading all of that for 500 agents took 9 ms of every pass even with nothing else to do
(docs/benchmarks.md), while between two passes a few milliseconds apart only the agents the
last events named have changed. So the directory keeps the routable agents and re-reads:

- every agent an event has named since (`mark`: the matcher's listener marks the agent of
  every event it hears; the pass marks the agents it just offered to), with the same query
  restricted to them, whose loads come from two index look-ups;
- all of them once every `read_all_every` seconds (1 s), which brings presence up to date and
  heals anything an event did not say (a user deactivated; events lost in an overflow);
- skills, per agent, only when its `skills_version` moved (replacing skills moves it; the
  row's other versions move for more than that); a skill renamed clears
  everything (`forget`).

Why a kept agent never breaks a routing rule (DESIGN.md section 3, docs/routing.md):

- **Capacity.** Only an offer adds load, and every write of an offer (a pass's, or an
  arrival's: app/routing/arrivals.py) takes the agent's row lock and moves its
  `routing_version` (app/routing/agent_version.sql). Everything else (accepts, completes,
  timeouts) only lowers a load: a kept load is never below the truth while the row still has the
  `routing_version` it was read with.
- **State, capacity, skills.** An agent kept may have changed since it was read (away, wrap-up,
  an admin lowering its capacity, new skills, a user deactivated, an offer): the offers' write
  lands an offer only while the agent's row is still as read (`kept_as_read`:
  `routing_version`, which every such change moves, but not a move between available and busy,
  which routing does not weigh) and its user active (app/routing/matcher.py, `WRITE_OFFERS`).
  A pass marks every agent it offered to, and the matcher marks the agent of every event it
  hears, so the next pass reads them afresh.
- **Presence.** Silence is checked on every pass against the last sign of life read, at most
  `read_all_every` old; the sweeper sends a silent agent away in any case (rule 8).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from app.core.channels import Channel
from app.core.pg import now
from app.routing import policy

# Routable agents with room on some channel, whose desk is on a replica with a live lease
# (app/core/lease.py), with their row version, loads and last sign of life, all of them or only
# those named in $1 (`AMONG`). Silence is checked by the caller, not here:
# a filter on `last_seen_at > now - silence` is estimated from statistics that are always older
# than the window, so PostgreSQL expected one row, chose nested loops, and the read grew from
# 3.5 to 19 ms (200 to 5,700 buffers) within a minute of a benchmark run (pg_stat_statements
# and auto_explain, docs/benchmarks.md).
_ROUTABLE = """
    WITH held AS (
        SELECT agent_id, channel FROM offers WHERE state = 'pending' {offers_among}
        UNION ALL
        SELECT agent_id, channel FROM interactions
        WHERE state IN ('assigned', 'wrap_up') AND agent_id IS NOT NULL {interactions_among}
    ), loads AS (
        SELECT agent_id,
               count(*) FILTER (WHERE channel IN ('voice', 'callback')) AS voice,
               count(*) FILTER (WHERE channel = 'chat') AS chat,
               count(*) FILTER (WHERE channel = 'email') AS email
        FROM held GROUP BY agent_id
    )
    SELECT a.id, a.routing_version, a.skills_version,
           a.capacity_voice, a.capacity_chat, a.capacity_email, a.idle_since,
           a.state = 'wrap_up' AS in_wrap_up, p.last_seen_at,
           coalesce(l.voice, 0) AS voice, coalesce(l.chat, 0) AS chat,
           coalesce(l.email, 0) AS email
    {in_routing}
      AND (coalesce(l.voice, 0) < a.capacity_voice
           OR coalesce(l.chat, 0) < a.capacity_chat
           OR coalesce(l.email, 0) < a.capacity_email)
      {agents_among}
"""


def holds_the_skills_of(queue: str) -> str:
    """SQL: the agent `a` holds every skill the queue `queue` (an SQL expression) requires, at
    its minimum level: who qualifies for a queue as it stands (its needs not relaxed), as the
    database reads it; the staffed agents, the live board's agents of a queue and a notice's
    readers all ask it."""
    return f"""NOT EXISTS (
          SELECT 1 FROM queue_skills n
          WHERE n.queue_id = {queue}
            AND NOT EXISTS (SELECT 1 FROM agent_skills s
                            WHERE s.agent_id = a.id AND s.skill_id = n.skill_id
                              AND s.proficiency >= n.min_proficiency))"""  # noqa: S608 - `queue` is ours


# Agents in routing, whether or not they have room: a routable state, an active user, a desk
# on a replica whose lease is live (app/core/lease.py). `a` the agent, `p` its presence (with
# `last_seen_at`); the loads `l` are joined after it. The one text of it: the directory reads
# it, and so do the queue figures (app/routing/figures.py).
IN_ROUTING = """FROM agents a
    JOIN users u ON u.id = a.user_id
    JOIN agent_presence p ON p.agent_id = a.id
    JOIN replicas r ON r.id = p.replica_id AND r.lease_until > statement_timestamp()
    {joins}
    WHERE a.state IN ('available', 'busy', 'wrap_up') AND u.is_active"""
_ROUTABLE = _ROUTABLE.replace(
    "{in_routing}", IN_ROUTING.format(joins="LEFT JOIN loads l ON l.agent_id = a.id")
)
ROUTABLE_AGENTS = _ROUTABLE.format(offers_among="", interactions_among="", agents_among="")
# The same for the agents $1 only: each branch filtered by agent, so the loads come from the
# (agent_id, state) indexes instead of every pending offer and held interaction.
ROUTABLE_AMONG = _ROUTABLE.format(
    offers_among="AND agent_id = ANY($1::uuid[])",
    interactions_among="AND agent_id = ANY($1::uuid[])",
    agents_among="AND a.id = ANY($1::uuid[])",
)

SKILLS_OF = """
    SELECT s.agent_id, k.name, s.proficiency
    FROM agent_skills s JOIN skills k ON k.id = s.skill_id
    WHERE s.agent_id = ANY($1::uuid[])
"""

Version = tuple[int, int, int, int, int]  # routing and skills versions, the three loads


@dataclass(frozen=True, slots=True)
class _Kept:
    """One routable agent as last read: its last sign of life, the version of what the policy
    object was built from (reused while that is unchanged), and the policy object."""

    seen: datetime
    version: Version
    agent: policy.AvailableAgent


class AgentDirectory:
    def __init__(self, *, read_all_every: float = 1.0) -> None:
        self._read_all_every = read_all_every
        self._forgotten = 0  # how many times `forget` was called
        self._read_all_at: float | None = None  # monotonic; None: read everyone next pass
        self._dirty: set[uuid.UUID] = set()
        self._kept: dict[uuid.UUID, _Kept] = {}  # the routable agents, as last read
        self._skills: dict[uuid.UUID, tuple[int, Mapping[str, int]]] = {}
        self._generation = 0  # moves whenever a read or `forget` changes what is kept
        self._standing: tuple[int, ArrivalStanding] | None = None

    def forget(self) -> None:
        """Drop everything kept (a skill was renamed or removed; another replica routed)."""
        self._forgotten += 1
        self._generation += 1
        self._read_all_at = None
        self._dirty.clear()
        self._kept.clear()
        self._skills.clear()

    def mark(self, agent_ids: Iterable[uuid.UUID]) -> None:
        """These agents may have changed: the next pass reads them afresh."""
        self._dirty.update(agent_ids)

    async def routable(
        self,
        connection: asyncpg.Connection,
        silence: timedelta,
        *,
        any_of: frozenset[str] | None = None,
    ) -> list[policy.AvailableAgent]:
        """`refresh`, then `kept`, in one call (a pass makes them apart, to read alongside)."""
        await self.refresh(connection)
        return self.kept(silence, any_of=any_of)

    def kept(
        self, silence: timedelta, *, any_of: frozenset[str] | None = None
    ) -> list[policy.AvailableAgent]:
        """The routable agents as last refreshed; with `any_of`, only those holding at least one
        of those skills (the waiting work all needs one of them: the others could not qualify
        anyway)."""
        seen_after = now() - silence
        return [
            kept.agent
            for kept in self._kept.values()
            if kept.seen > seen_after
            and (any_of is None or not any_of.isdisjoint(kept.agent.skills))
        ]

    def kept_as_read(
        self, silence: timedelta, *, any_of: frozenset[str] | None = None
    ) -> tuple[list[policy.AvailableAgent], dict[uuid.UUID, int]]:
        """`kept`, with the `routing_version` each agent's load was read with: an offer weighed
        on these loads is written against that version. Taken later (after an await), the
        version kept may be newer than the load weighed: an arrival's offer landed meanwhile,
        and an offer written against it would land on a load nobody counted."""
        agents = self.kept(silence, any_of=any_of)
        return agents, {agent.id: self._kept[agent.id].version[0] for agent in agents}

    def anyone_with_room(self, silence: timedelta) -> bool:
        """Whether any agent kept, not silent, has room for one more of any kind."""
        seen_after = now() - silence
        return any(
            kept.seen > seen_after
            and any(policy.has_room(kept.agent, kind, kept.agent.load) for kind in policy.KINDS)
            for kept in self._kept.values()
        )

    def standing(self, silence: timedelta) -> ArrivalStanding:
        """The kept agents as a standing for the arrivals matched one by one until the next
        read (app/routing/arrivals.py). Built once per read, not once per arrival: each
        arrival's pair is taken in it, so the next arrival already counts that load. The
        matcher calls it after each pass that leaves no arrival of its replica unread (while
        one is, arrivals queue and need no standing), so that arrivals seldom wait for it."""
        if self._standing is None or self._standing[0] != self._generation:
            agents, versions = self.kept_as_read(silence)
            standing = ArrivalStanding(policy.Standing(agents), versions)
            if self._standing is not None:  # the pools the last run of arrivals needed
                standing.policy.warm(self._standing[1].policy.pools())
            self._standing = (self._generation, standing)
        return self._standing[1]

    def offered(
        self, agent_id: uuid.UUID, channels: Sequence[Channel], read: int, version: int
    ) -> None:
        """Offers of `channels` written to an agent kept at `routing_version` `read`, which
        moved it to `version`: keep both until the next read. (A standing built before keeps
        the version it was built with, and its load: it counted these offers only if it made
        them, and `ArrivalStanding.landed` then moves its version too.)"""
        kept = self._kept.get(agent_id)
        if kept is None or kept.version[0] != read:  # read afresh since: that read stands
            return
        load = kept.agent.load
        for channel in channels:
            load = policy.with_one_more(load, channel)
        agent = replace(kept.agent, load=load)
        # The version says the load kept, too: a read that finds the load as it was before
        # these offers (one withdrawn before any read, its caller gone) is not the same row.
        version_now = (version, kept.version[1], load.voice, load.chat, load.email)
        self._kept[agent_id] = _Kept(kept.seen, version_now, agent)

    def pass_offered(self, landed: Mapping[uuid.UUID, tuple[int, int, Sequence[Channel]]]) -> None:
        """A pass's offers, by agent: (version read, new version, channels). Kept as `offered`
        keeps them, and the next standing is built with them."""
        for agent_id, (read, version, channels) in landed.items():
            self.offered(agent_id, channels, read, version)
        if landed:
            self._generation += 1

    async def refresh(self, connection: asyncpg.Connection) -> None:
        """Bring the kept agents up to date. A `forget()` while a read is under way (the
        listener runs between its statements) may drop what it had just read, so go round,
        reading everyone, until a read ends undisturbed."""
        while True:
            forgotten = self._forgotten
            await self._read_once(connection, forgotten)
            if forgotten == self._forgotten:
                return

    async def _read_once(self, connection: asyncpg.Connection, forgotten: int) -> None:
        moment = time.monotonic()
        if self._read_all_at is None or moment - self._read_all_at >= self._read_all_every:
            self._dirty.clear()
            rows = await connection.fetch(ROUTABLE_AGENTS)
            await self._refresh_skills(connection, rows)
            if forgotten != self._forgotten:
                return
            self._kept = {row["id"]: self._keep(row) for row in rows}
            self._generation += 1
            self._read_all_at = moment
        elif self._dirty:
            among, self._dirty = list(self._dirty), set()
            rows = await connection.fetch(ROUTABLE_AMONG, among)
            await self._refresh_skills(connection, rows)
            if forgotten != self._forgotten:
                return
            fresh = {row["id"]: self._keep(row) for row in rows}
            for agent_id in among:  # those not read back have left routing or have no room
                self._kept.pop(agent_id, None)
            self._kept.update(fresh)
            self._generation += 1

    def version_read(self, agent_id: uuid.UUID) -> int:
        """The agent row's `routing_version` as last read: an offer's write lands only while
        the row is still so (nothing routing counts on has changed since)."""
        return self._kept[agent_id].version[0]

    async def _refresh_skills(
        self, connection: asyncpg.Connection, rows: list[asyncpg.Record]
    ) -> None:
        """Read the skills of every agent whose skills version moved."""
        versions = {row["id"]: row["skills_version"] for row in rows}
        stale = [
            agent_id
            for agent_id, version in versions.items()
            if (known := self._skills.get(agent_id)) is None or known[0] != version
        ]
        if not stale:
            return
        levels: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        for agent_id, name, level in await connection.fetch(SKILLS_OF, stale):
            levels[agent_id][name] = level
        for agent_id in stale:
            self._skills[agent_id] = (versions[agent_id], levels.get(agent_id, {}))

    def _keep(self, row: asyncpg.Record) -> _Kept:
        agent_id = row["id"]
        version: Version = (
            row["routing_version"],
            row["skills_version"],
            row["voice"],
            row["chat"],
            row["email"],
        )
        known = self._kept.get(agent_id)
        if known is not None and known.version == version:
            return _Kept(row["last_seen_at"], version, known.agent)
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
        return _Kept(row["last_seen_at"], version, agent)


class ArrivalStanding:
    """A `policy.Standing` with the `routing_version` of each agent's row its load was read
    with: an arrival's offer is written against that version, so it lands only if nothing
    has moved the row since that load was read, save this standing's own offers."""

    def __init__(self, standing: policy.Standing, versions: dict[uuid.UUID, int]) -> None:
        self.policy = standing
        self._versions = versions

    def version(self, agent_id: uuid.UUID) -> int:
        return self._versions[agent_id]

    def landed(self, agent_id: uuid.UUID, read: int, version: int) -> None:
        """An offer this standing made (and took the load of) was written: the row is now at
        `version`."""
        if self._versions.get(agent_id) == read:
            self._versions[agent_id] = version

    def set_aside(self, agent_id: uuid.UUID) -> None:
        """An offer this standing made found the row moved: serve the agent nothing more."""
        self.policy.set_aside(agent_id)

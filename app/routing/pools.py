"""The speed machinery of a policy pass: who still has room for what, and the qualified agents
for each (channel kind, needs) ranked in lazily kept heaps. It decides nothing: the order it
ranks by is rule 5's (best proficiency, least loaded, longest idle, then id), and
app/routing/policy.py makes every choice with it. tests/routing/test_policy.py holds the pass
against a plain reference implementation of the rules (Hypothesis).
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from app.core.channels import Channel
from app.routing.rules import (
    KINDS,
    AvailableAgent,
    SkillNeed,
    has_room,
    kind_of,
    proficiency,
    qualifies,
    total,
    with_one_more,
)


class Ranked(NamedTuple):
    """An agent's place in a pool, best first when sorted: the order of DESIGN rule 5."""

    neg_proficiency: int
    load: int  # total load when this entry was made; a stale entry is re-ranked
    idle_since: datetime
    agent_id: uuid.UUID
    number: int  # the agent's number in the pass; never compared, as agent ids differ


@dataclass(slots=True)
class Pool:
    """The agents qualified for one set of needs who had room for one channel kind.

    `heap` is ranked lazily: loads only grow during a pass, so an entry whose load is stale
    ranks an agent too well, never too badly; it is fixed when it reaches the top.
    """

    heap: list[Ranked]
    members: frozenset[int]


# A pool's channel kind and needs, as (skill, level) pairs in skill order.
PoolKey = tuple[Channel, tuple[tuple[str, int], ...]]


class PassState:
    """The mutable state of one `match` call: loads so far and who still has room for what.

    Agents are numbered by their place in the snapshot: a pass over hundreds of agents makes
    hundreds of thousands of set and dict lookups, and an int hashes far faster than a UUID.
    Room is worked out per channel kind only when an interaction of that kind comes up.
    """

    def __init__(self, agents: Sequence[AvailableAgent]) -> None:
        self.agents = list(agents)
        self.index: dict[uuid.UUID, int] = {}
        for number, agent in enumerate(self.agents):
            if agent.id in self.index:
                raise ValueError(f"agent {agent.id} appears twice in the snapshot")
            self.index[agent.id] = number
        self.loads = [agent.load for agent in self.agents]
        self.totals = [total(agent.load) for agent in self.agents]
        self._room: dict[Channel, set[int]] = {}
        self._set_aside: set[int] = set()
        self.pools: dict[PoolKey, Pool] = {}

    def room(self, kind: Channel) -> set[int]:
        """Who has room for one more of `kind` now (room only shrinks as loads grow)."""
        room = self._room.get(kind)
        if room is None:
            loads = self.loads
            room = self._room[kind] = {
                number
                for number, agent in enumerate(self.agents)
                if has_room(agent, kind, loads[number])
            } - self._set_aside
        return room

    def full(self) -> bool:
        """Nobody has room for one more of any kind."""
        return not any(self.room(kind) for kind in KINDS)

    def numbers(self, agent_ids: frozenset[uuid.UUID]) -> frozenset[int]:
        return frozenset(self.index[a] for a in agent_ids if a in self.index)

    def pool(self, kind: Channel, needs: tuple[SkillNeed, ...]) -> Pool:
        key = (kind, tuple(sorted((need.skill, need.level) for need in needs)))
        pool = self.pools.get(key)
        if pool is None:
            ranked = self._ranked(kind, needs)
            heapq.heapify(ranked)
            pool = self.pools[key] = Pool(ranked, frozenset(r.number for r in ranked))
        return pool

    def _ranked(self, kind: Channel, needs: tuple[SkillNeed, ...]) -> list[Ranked]:
        """Everyone with room for `kind` who qualifies for `needs`, unsorted."""
        agents, totals = self.agents, self.totals
        if len(needs) != 1:
            return [
                Ranked(-proficiency(agent, needs), totals[n], agent.idle_since, agent.id, n)
                for n in self.room(kind)
                if qualifies(agent := agents[n], needs)
            ]
        # One skill needed, by far the usual case: the same test and rank as `qualifies` and
        # `_proficiency`, without a generator per agent (a pass builds several such pools).
        skill, level = needs[0].skill, needs[0].level
        return [
            Ranked(-held, totals[n], agent.idle_since, agent.id, n)
            for n in self.room(kind)
            if (held := (agent := agents[n]).skills.get(skill, 0)) >= level
        ]

    def can_take(self, agent_id: uuid.UUID, channel: Channel, needs: Sequence[SkillNeed]) -> bool:
        number = self.index.get(agent_id)
        return (
            number is not None
            and number in self.room(kind_of(channel))
            and qualifies(self.agents[number], needs)
        )

    def best_two(self, pool: Pool, kind: Channel, excluded: frozenset[int]) -> list[Ranked]:
        """The best and the runner-up candidate (fewer if there are fewer), pool left intact."""
        heap, room, totals = pool.heap, self.room(kind), self.totals
        found: list[Ranked] = []
        set_aside: list[Ranked] = []
        while heap and len(found) < 2:
            top = heap[0]
            if top.number not in room:  # full for this kind: loads only grow, so for good
                heapq.heappop(heap)
            elif top.load != totals[top.number]:
                heapq.heapreplace(heap, top._replace(load=totals[top.number]))
            else:
                (set_aside if top.number in excluded else found).append(heapq.heappop(heap))
        for entry in (*found, *set_aside):
            heapq.heappush(heap, entry)
        return found

    def count_candidates(self, pool: Pool, kind: Channel, excluded: frozenset[int]) -> int:
        with_room = pool.members & self.room(kind)
        return len(with_room) - len(with_room & excluded) if excluded else len(with_room)

    def set_aside(self, number: int) -> None:
        """No room for this agent from now on, whatever its load."""
        self._set_aside.add(number)
        for room in self._room.values():
            room.discard(number)

    def take(self, number: int, channel: Channel) -> None:
        agent = self.agents[number]
        load = self.loads[number] = with_one_more(self.loads[number], channel)
        self.totals[number] += 1
        for kind, room in self._room.items():
            if not has_room(agent, kind, load):
                room.discard(number)

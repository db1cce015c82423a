"""The routing policy: which waiting interaction goes to which available agent. Pure.

Nothing here reads a clock, a database or a socket: the matcher hands in a snapshot (waiting
interactions, agents with their load, queue rules, `now`) and gets back the offers to make.
docs/routing.md explains every rule with worked examples.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple, assert_never

from app.core.channels import Channel

TIERS = ("platinum", "gold", "iron", "lead")


@dataclass(frozen=True, slots=True)
class SkillNeed:
    skill: str
    level: int  # minimum proficiency, 1-5


@dataclass(frozen=True, slots=True)
class RelaxationStep:
    """After `after_seconds` of waiting, no required level is above `level_cap` (0: no skills)."""

    after_seconds: float
    level_cap: int


@dataclass(frozen=True, slots=True)
class QueueRules:
    queue_id: uuid.UUID
    tier_weights: Mapping[str, float]
    aging_factor: float  # priority points per second of waiting
    relaxation: tuple[RelaxationStep, ...] = ()
    sticky_seconds: float = 0.0  # how long a customer's last agent is preferred


@dataclass(frozen=True, slots=True)
class WaitingInteraction:
    id: uuid.UUID
    channel: Channel
    queue_id: uuid.UUID
    priority: int
    tier: str
    waiting_since: datetime
    needs: tuple[SkillNeed, ...]
    last_agent_id: uuid.UUID | None = None
    last_agent_at: datetime | None = None  # when that agent last handled this customer
    excluded_agents: frozenset[uuid.UUID] = frozenset()  # rejected or missed this interaction


@dataclass(frozen=True, slots=True)
class Load:
    """What an agent holds now, offers included, per channel (`callback` counts as voice)."""

    voice: int = 0
    chat: int = 0
    email: int = 0


@dataclass(frozen=True, slots=True)
class Capacity:
    voice: int = 1
    chat: int = 3
    email: int = 2


@dataclass(frozen=True, slots=True)
class AvailableAgent:
    id: uuid.UUID
    skills: Mapping[str, int]
    capacity: Capacity
    load: Load
    idle_since: datetime
    in_wrap_up: bool = False  # wrap-up takes no new voice work


@dataclass(frozen=True, slots=True)
class Match:
    interaction_id: uuid.UUID
    agent_id: uuid.UUID
    effective_priority: float
    matched_skills: Mapping[str, int] = field(default_factory=dict)  # skill -> agent's level
    reason: str = ""  # one sentence for the screen pop: why this agent


# --- the rules, one pure function each ------------------------------------------------------


def _seconds_since(then: datetime, now: datetime) -> float:
    """Seconds from `then` to `now`, never negative (a clock a little ahead is not a wait)."""
    return max(0.0, (now - then).total_seconds())


def effective_priority(item: WaitingInteraction, rules: QueueRules, now: datetime) -> float:
    """Explicit priority + the tier's weight (0 for an unknown tier) + aging.

    Aging is `rules.aging_factor` points per second waited since `item.waiting_since`; a
    `waiting_since` in the future counts as no wait.
    """
    waited = _seconds_since(item.waiting_since, now)
    tier_weight = rules.tier_weights.get(item.tier, 0.0)
    return float(item.priority) + float(tier_weight) + rules.aging_factor * waited


def current_needs(
    item: WaitingInteraction, rules: QueueRules, now: datetime
) -> tuple[SkillNeed, ...]:
    """The skill needs that apply now, after relaxation (bullseye).

    The step with the largest `after_seconds` not above the time waited applies (steps may come
    in any order; of two steps with the same `after_seconds`, the lower cap wins). Each level
    becomes `min(level, step.level_cap)`; a need that falls to 0 is dropped. Before the first
    step the needs are as given. A skill named twice is needed once, at its highest level, in
    the order of its first mention.
    """
    waited = _seconds_since(item.waiting_since, now)
    cap: int | None = None
    applied_after = float("-inf")
    for step in rules.relaxation:
        if step.after_seconds > waited:
            continue
        if step.after_seconds > applied_after:
            applied_after, cap = step.after_seconds, step.level_cap
        elif step.after_seconds == applied_after and cap is not None:
            cap = min(cap, step.level_cap)
    levels: dict[str, int] = {}
    for need in item.needs:
        level = need.level if cap is None else min(need.level, cap)
        if level > 0:
            levels[need.skill] = max(levels.get(need.skill, 0), level)
    return tuple(SkillNeed(skill, level) for skill, level in levels.items())


def skills_any_of(
    waiting: Sequence[WaitingInteraction], rules: Mapping[uuid.UUID, QueueRules], now: datetime
) -> frozenset[str] | None:
    """Skills of which a candidate for some waiting interaction holds at least one, or None
    when some interaction needs no skill now (then anyone may qualify)."""
    names: set[str] = set()
    for item in waiting:
        queue_rules = rules.get(item.queue_id)
        if queue_rules is None:  # not routable: `match` skips it
            continue
        needs = current_needs(item, queue_rules, now)
        if not needs:
            return None
        names.update(need.skill for need in needs)
    return frozenset(names)


def has_room(agent: AvailableAgent, channel: Channel, load: Load) -> bool:
    """Whether `agent`, holding `load` (offers included), can take one more `channel` item.

    Per channel, the load stays below the capacity. `callback` is voice. A call excludes chats
    and chats exclude a call (email goes alongside either). An agent in wrap-up takes no voice
    or callback, but may take chat and email.
    """
    match channel:
        case Channel.voice | Channel.callback:
            return not agent.in_wrap_up and load.chat <= 0 and load.voice < agent.capacity.voice
        case Channel.chat:
            return load.voice <= 0 and load.chat < agent.capacity.chat
        case Channel.email:
            return load.email < agent.capacity.email
        case _:
            assert_never(channel)


def qualifies(agent: AvailableAgent, needs: Sequence[SkillNeed]) -> bool:
    """Whether the agent holds every needed skill at or above its level (no needs: anyone)."""
    return all(agent.skills.get(need.skill, 0) >= need.level for need in needs)


def _proficiency(agent: AvailableAgent, needs: Sequence[SkillNeed]) -> int:
    """The sum of the agent's levels over the needed skills (0 with no needs)."""
    return sum(agent.skills.get(need.skill, 0) for need in needs)


def with_one_more(load: Load, channel: Channel) -> Load:
    """The load with one more item of `channel` (callback counts as voice)."""
    match channel:
        case Channel.voice | Channel.callback:
            return replace(load, voice=load.voice + 1)
        case Channel.chat:
            return replace(load, chat=load.chat + 1)
        case Channel.email:
            return replace(load, email=load.email + 1)
        case _:
            assert_never(channel)


def _total(load: Load) -> int:
    return load.voice + load.chat + load.email


# The capacity kinds: callback shares voice's capacity and rules.
_KINDS = (Channel.voice, Channel.chat, Channel.email)


def _kind(channel: Channel) -> Channel:
    return Channel.voice if channel is Channel.callback else channel


KINDS = (Channel.voice, Channel.chat, Channel.email)  # what capacity counts (`_kind`)


# --- the matcher's pass ----------------------------------------------------------------------


class _Ranked(NamedTuple):
    """An agent's place in a pool, best first when sorted: the order of DESIGN rule 5."""

    neg_proficiency: int
    load: int  # total load when this entry was made; a stale entry is re-ranked
    idle_since: datetime
    agent_id: uuid.UUID
    number: int  # the agent's number in the pass; never compared, as agent ids differ


@dataclass(slots=True)
class _Pool:
    """The agents qualified for one set of needs who had room for one channel kind.

    `heap` is ranked lazily: loads only grow during a pass, so an entry whose load is stale
    ranks an agent too well, never too badly; it is fixed when it reaches the top.
    """

    heap: list[_Ranked]
    members: frozenset[int]


# A pool's channel kind and needs, as (skill, level) pairs in skill order.
PoolKey = tuple[Channel, tuple[tuple[str, int], ...]]


class _Pass:
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
        self.totals = [_total(agent.load) for agent in self.agents]
        self._room: dict[Channel, set[int]] = {}
        self._set_aside: set[int] = set()
        self.pools: dict[PoolKey, _Pool] = {}

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

    def pool(self, kind: Channel, needs: tuple[SkillNeed, ...]) -> _Pool:
        key = (kind, tuple(sorted((need.skill, need.level) for need in needs)))
        pool = self.pools.get(key)
        if pool is None:
            ranked = self._ranked(kind, needs)
            heapq.heapify(ranked)
            pool = self.pools[key] = _Pool(ranked, frozenset(r.number for r in ranked))
        return pool

    def _ranked(self, kind: Channel, needs: tuple[SkillNeed, ...]) -> list[_Ranked]:
        """Everyone with room for `kind` who qualifies for `needs`, unsorted."""
        agents, totals = self.agents, self.totals
        if len(needs) != 1:
            return [
                _Ranked(-_proficiency(agent, needs), totals[n], agent.idle_since, agent.id, n)
                for n in self.room(kind)
                if qualifies(agent := agents[n], needs)
            ]
        # One skill needed, by far the usual case: the same test and rank as `qualifies` and
        # `_proficiency`, without a generator per agent (a pass builds several such pools).
        skill, level = needs[0].skill, needs[0].level
        return [
            _Ranked(-held, totals[n], agent.idle_since, agent.id, n)
            for n in self.room(kind)
            if (held := (agent := agents[n]).skills.get(skill, 0)) >= level
        ]

    def can_take(self, agent_id: uuid.UUID, channel: Channel, needs: Sequence[SkillNeed]) -> bool:
        number = self.index.get(agent_id)
        return (
            number is not None
            and number in self.room(_kind(channel))
            and qualifies(self.agents[number], needs)
        )

    def best_two(self, pool: _Pool, kind: Channel, excluded: frozenset[int]) -> list[_Ranked]:
        """The best and the runner-up candidate (fewer if there are fewer), pool left intact."""
        heap, room, totals = pool.heap, self.room(kind), self.totals
        found: list[_Ranked] = []
        set_aside: list[_Ranked] = []
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

    def count_candidates(self, pool: _Pool, kind: Channel, excluded: frozenset[int]) -> int:
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


def _skills_text(agent: AvailableAgent, needs: Sequence[SkillNeed]) -> str:
    if not needs:
        return "no skills required"
    return ", ".join(f"{need.skill} {agent.skills.get(need.skill, 0)}" for need in needs)


def _reason(
    ranked: list[_Ranked],
    agent: AvailableAgent,
    needs: Sequence[SkillNeed],
    candidates: int,
    now: datetime,
) -> str:
    """One sentence: what set the chosen agent above the runner-up."""
    skills = _skills_text(agent, needs)
    if len(ranked) < 2:
        return f"only qualified agent with room ({skills})"
    best, second = ranked
    among = f"among {candidates} qualified agents"
    if best.neg_proficiency != second.neg_proficiency:
        return f"best proficiency ({skills}) {among}"
    if best.load != second.load:
        return f"least loaded (holds {best.load}) {among}; proficiency tied ({skills})"
    if best.idle_since != second.idle_since:
        idle = round(_seconds_since(best.idle_since, now))
        return f"longest idle ({idle} s) {among}; proficiency ({skills}) and load tied"
    return f"first by id {among}; proficiency ({skills}), load and idle time tied"


def match(
    waiting: Sequence[WaitingInteraction],
    agents: Sequence[AvailableAgent],
    rules: Mapping[uuid.UUID, QueueRules],
    now: datetime,
) -> list[Match]:
    """Pair waiting interactions with agents: one greedy pass in effective-priority order.

    Interactions are served highest effective priority first (ties: longest waiting, then id);
    one whose queue has no rules is skipped. Each takes its sticky agent if that agent is a
    candidate within `rules.sticky_seconds` (0: no sticky agent), else the best candidate by
    proficiency, then least total load, then longest idle, then id. A candidate qualifies for
    `current_needs`, has room for the channel given its load so far in this pass, and is not in
    `excluded_agents`. The result is in service order; unmatched interactions are left out.

    Why greedy is right: DESIGN rule 4 is a priority rule, not a "most matches" rule. When an
    interaction's turn comes, every interaction above it has already taken its pick, and it
    takes its own best pick (rule 5) from what is left. Loads only grow in a pass, so an agent
    with room for a later, lower interaction had room earlier too: a higher interaction left
    unmatched had no candidate at its turn and has none at the end. No higher interaction ever
    waits while a lower one takes an agent it could have had, and no pair is left that could
    still be made. (A maximum matching could pair more in one pass by handing a high
    interaction a worse agent; rule 5 forbids that trade.)

    Cost: sorting, plus one lazily ranked heap per distinct (channel kind, needs) pair, so a
    pass over n interactions and m agents with k distinct needs is about O(k*m + n log m)
    (plus excluded agents skipped), not O(n*m). Once nobody has room for anything the rest
    of the line is not weighed: at peak, a long backlog costs what the free agents can take.
    """
    seen: set[uuid.UUID] = set()
    for item in waiting:
        if item.id in seen:
            raise ValueError(f"interaction {item.id} appears twice in the snapshot")
        seen.add(item.id)
    return _serve_in_order(_Pass(agents), waiting, rules, now)


def _serve_in_order(
    state: _Pass,
    waiting: Sequence[WaitingInteraction],
    rules: Mapping[uuid.UUID, QueueRules],
    now: datetime,
) -> list[Match]:
    """Each interaction's turn in the order of service, until nobody has room for anything."""
    if state.full():
        return []
    matches: list[Match] = []
    for priority, item, queue_rules in in_line(waiting, rules, now):
        match = _serve(state, priority, item, queue_rules, now)
        if match is not None:
            matches.append(match)
        elif state.full():
            break  # no room left for anyone: the rest of a long backlog would only be weighed
    return matches


def in_line(
    waiting: Sequence[WaitingInteraction], rules: Mapping[uuid.UUID, QueueRules], now: datetime
) -> list[tuple[float, WaitingInteraction, QueueRules]]:
    """The order of service: highest effective priority first, then longest waiting, then
    lowest id; an interaction whose queue has no rules is left out. Each with its effective
    priority and its queue's rules."""
    ranked = [
        (effective_priority(item, queue_rules, now), item, queue_rules)
        for item in waiting
        if (queue_rules := rules.get(item.queue_id)) is not None
    ]
    ranked.sort(key=lambda entry: (-entry[0], entry[1].waiting_since, entry[1].id))
    return ranked


class Standing:
    """The agents as a run of arrivals finds them, one interaction after another, between two
    reads of the agents: `match` for a single interaction, each pair taken before the next
    interaction is weighed, so the pools are built once for the whole run instead of once per
    interaction (app/routing/arrivals.py). The same pass, kept open: `serve` on a standing made
    of `agents` gives, interaction by interaction, exactly the pairs `match` gives for those
    interactions in that order, so every rule of `match` holds for each.
    """

    def __init__(self, agents: Sequence[AvailableAgent]) -> None:
        self._state = _Pass(agents)

    def set_aside(self, agent_id: uuid.UUID) -> None:
        """Serve no more to this agent (its row moved since it was read: nothing written to it
        would land)."""
        number = self._state.index.get(agent_id)
        if number is not None:
            self._state.set_aside(number)

    def full(self) -> bool:
        """Nobody has room for one more of any kind: nothing more can be served."""
        return self._state.full()

    def pools(self) -> list[PoolKey]:
        """The pools built so far, by channel kind and needs."""
        return list(self._state.pools)

    def warm(self, pools: Iterable[PoolKey]) -> None:
        """Build these pools now rather than at their first arrival (it changes no choice: an
        entry ranked before loads grew ranks its agent too well, never too badly, and is
        fixed when it reaches the top, as within a pass)."""
        for kind, needs in pools:
            self._state.pool(kind, tuple(SkillNeed(skill, level) for skill, level in needs))

    def serve(
        self, item: WaitingInteraction, rules: Mapping[uuid.UUID, QueueRules], now: datetime
    ) -> Match | None:
        """The agent for `item`, taken (its load grows), or None (no candidate, no rules)."""
        queue_rules = rules.get(item.queue_id)
        if queue_rules is None:
            return None
        priority = effective_priority(item, queue_rules, now)
        return _serve(self._state, priority, item, queue_rules, now)

    def serve_in_order(
        self,
        waiting: Sequence[WaitingInteraction],
        rules: Mapping[uuid.UUID, QueueRules],
        now: datetime,
    ) -> list[Match]:
        """`match` over `waiting`, after everything this standing served before: the matcher
        serves a long line page by page this way, each page after the pages above it."""
        return _serve_in_order(self._state, waiting, rules, now)


def _serve(
    state: _Pass, priority: float, item: WaitingInteraction, queue_rules: QueueRules, now: datetime
) -> Match | None:
    """One interaction's turn in a pass: its sticky agent or its best candidate, taken."""
    kind = _kind(item.channel)
    if not state.room(kind):
        return None  # nobody has room for this kind: no need to weigh its needs
    needs = current_needs(item, queue_rules, now)
    last = item.last_agent_id
    if (
        last is not None
        and item.last_agent_at is not None
        and queue_rules.sticky_seconds > 0
        and (now - item.last_agent_at).total_seconds() <= queue_rules.sticky_seconds
        and last not in item.excluded_agents
        and state.can_take(last, item.channel, needs)
    ):
        chosen = last
        ago = round(_seconds_since(item.last_agent_at, now))
        reason = f"sticky: last agent for this customer ({ago} s ago)"
    else:
        pool = state.pool(kind, needs)
        excluded = state.numbers(item.excluded_agents)
        ranked = state.best_two(pool, kind, excluded)
        if not ranked:
            return None
        chosen = ranked[0].agent_id
        candidates = state.count_candidates(pool, kind, excluded)
        reason = _reason(ranked, state.agents[ranked[0].number], needs, candidates, now)
    number = state.index[chosen]
    agent = state.agents[number]
    state.take(number, item.channel)
    return Match(
        interaction_id=item.id,
        agent_id=chosen,
        effective_priority=priority,
        matched_skills={need.skill: agent.skills.get(need.skill, 0) for need in needs},
        reason=reason,
    )

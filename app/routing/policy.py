"""The routing policy: which waiting interaction goes to which available agent. Pure.

Nothing here reads a clock, a database or a socket: the matcher hands in a snapshot (waiting
interactions, agents with their load, queue rules, `now`) and gets back the offers to make.
The rules it applies are app/routing/rules.py (re-exported here, as callers know them by the
policy's name); the pools it ranks agents in are app/routing/pools.py. docs/routing.md explains
every rule with worked examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from app.routing.pools import PassState, PoolKey, Ranked
from app.routing.rules import (
    KINDS,
    TIERS,
    AvailableAgent,
    Capacity,
    Load,
    Match,
    QueueRules,
    RelaxationStep,
    SkillNeed,
    WaitingInteraction,
    current_needs,
    effective_priority,
    has_room,
    in_line,
    kind_of,
    qualifies,
    seconds_since,
    skills_any_of,
    with_one_more,
)

__all__ = [
    "KINDS",
    "TIERS",
    "AvailableAgent",
    "Capacity",
    "Load",
    "Match",
    "PoolKey",
    "QueueRules",
    "RelaxationStep",
    "SkillNeed",
    "Standing",
    "WaitingInteraction",
    "current_needs",
    "effective_priority",
    "has_room",
    "in_line",
    "match",
    "qualifies",
    "skills_any_of",
    "with_one_more",
]


def _skills_text(agent: AvailableAgent, needs: Sequence[SkillNeed]) -> str:
    if not needs:
        return "no skills required"
    return ", ".join(f"{need.skill} {agent.skills.get(need.skill, 0)}" for need in needs)


def _reason(
    ranked: list[Ranked],
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
        idle = round(seconds_since(best.idle_since, now))
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
    one whose queue has no rules is skipped. Each goes first to an agent who knows the customer
    if that agent is a candidate: the owner of the customer's open complaint where
    `rules.complaint_owner_first`, else a follow-up's thread agent within
    `rules.follow_up_seconds`, else the customer's last agent within `rules.sticky_seconds`
    (0: neither), else to the best candidate by proficiency, then least total load, then
    longest idle, then id. A candidate qualifies for `current_needs`, has room for the channel
    given its load so far in this pass, and is not in `excluded_agents`. The result is in
    service order; unmatched interactions are left out.

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
    return _serve_in_order(PassState(agents), waiting, rules, now)


def _serve_in_order(
    state: PassState,
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


class Standing:
    """The agents as a run of arrivals finds them, one interaction after another, between two
    reads of the agents: `match` for a single interaction, each pair taken before the next
    interaction is weighed, so the pools are built once for the whole run instead of once per
    interaction (app/routing/arrivals.py). The same pass, kept open: `serve` on a standing made
    of `agents` gives, interaction by interaction, exactly the pairs `match` gives for those
    interactions in that order, so every rule of `match` holds for each.
    """

    def __init__(self, agents: Sequence[AvailableAgent]) -> None:
        self._state = PassState(agents)

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


def _preferred(
    state: PassState,
    item: WaitingInteraction,
    queue_rules: QueueRules,
    needs: tuple[SkillNeed, ...],
    now: datetime,
) -> tuple[uuid.UUID, str] | None:
    """The agent this interaction goes to first, with the reason, if that agent can take it now:
    the owner of the customer's open complaint where the queue says so, else a follow-up's
    thread agent within the queue's follow-up time, else the customer's last agent within its
    sticky time. Each must be a candidate like any other."""
    owner = item.complaint_owner_id
    if (
        queue_rules.complaint_owner_first
        and owner is not None
        and _candidate(state, item, owner, needs)
    ):
        return owner, f"complaint owner: {item.complaint_reference}"
    choices = (
        (
            item.thread_agent_id,
            item.thread_ended_at,
            queue_rules.follow_up_seconds,
            "follow-up: agent of the thread it continues",
        ),
        (
            item.last_agent_id,
            item.last_agent_at,
            queue_rules.sticky_seconds,
            "sticky: last agent for this customer",
        ),
    )
    for agent_id, since, window, why in choices:
        if (
            agent_id is not None
            and since is not None
            and window > 0
            and (now - since).total_seconds() <= window
            and _candidate(state, item, agent_id, needs)
        ):
            return agent_id, f"{why} ({round(seconds_since(since, now))} s ago)"
    return None


def _candidate(
    state: PassState, item: WaitingInteraction, agent_id: uuid.UUID, needs: tuple[SkillNeed, ...]
) -> bool:
    """Whether the agent may be offered the interaction now: not excluded, qualified, room."""
    return agent_id not in item.excluded_agents and state.can_take(agent_id, item.channel, needs)


def _serve(
    state: PassState,
    priority: float,
    item: WaitingInteraction,
    queue_rules: QueueRules,
    now: datetime,
) -> Match | None:
    """One interaction's turn in a pass: the agent it goes to first (`_preferred`) or its best
    candidate, taken."""
    kind = kind_of(item.channel)
    if not state.room(kind):
        return None  # nobody has room for this kind: no need to weigh its needs
    needs = current_needs(item, queue_rules, now)
    preferred = _preferred(state, item, queue_rules, needs, now)
    if preferred is not None:
        chosen, reason = preferred
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

"""The routing rules, one pure function each (DESIGN.md section 3, rules 2, 4, 5 and 6), and
the snapshot types they are given. Nothing here reads a clock, a database or a socket.

`app/routing/policy.py` applies them: which waiting interaction goes to which agent, in one
greedy pass; `app/routing/pools.py` is the speed machinery that pass runs on. docs/routing.md
explains every rule with worked examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import assert_never

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
    # How long after a thread ended its follow-up (a reply to a completed email thread) is
    # offered first to the agent who handled that thread.
    follow_up_seconds: float = 0.0
    # A customer with an open complaint is offered first to the complaint's owner, ahead of the
    # follow-up and sticky rules: the owner knows the case.
    complaint_owner_first: bool = False


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
    # A follow-up's: the agent who handled the thread it continues, and when that one ended.
    thread_agent_id: uuid.UUID | None = None
    thread_ended_at: datetime | None = None
    # The owner of the customer's open complaint whose running deadline is soonest, and that
    # complaint's reference (read only for queues with `complaint_owner_first`).
    complaint_owner_id: uuid.UUID | None = None
    complaint_reference: str | None = None
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


def seconds_since(then: datetime, now: datetime) -> float:
    """Seconds from `then` to `now`, never negative (a clock a little ahead is not a wait)."""
    return max(0.0, (now - then).total_seconds())


def effective_priority(item: WaitingInteraction, rules: QueueRules, now: datetime) -> float:
    """Explicit priority + the tier's weight (0 for an unknown tier) + aging.

    Aging is `rules.aging_factor` points per second waited since `item.waiting_since`; a
    `waiting_since` in the future counts as no wait.
    """
    waited = seconds_since(item.waiting_since, now)
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
    waited = seconds_since(item.waiting_since, now)
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


def proficiency(agent: AvailableAgent, needs: Sequence[SkillNeed]) -> int:
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


def total(load: Load) -> int:
    return load.voice + load.chat + load.email


def kind_of(channel: Channel) -> Channel:
    """The capacity kind a channel counts against: callback shares voice's capacity and rules."""
    return Channel.voice if channel is Channel.callback else channel


KINDS = (Channel.voice, Channel.chat, Channel.email)  # what capacity counts (`_kind`)


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

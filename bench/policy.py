"""One matcher pass over a full floor, with no database: 2,000 waiting interactions of every
channel, two queues with relaxation and sticky agents, and 500 agents of mixed skills and loads.

It is the pure policy's part of a pass (app/routing/policy.py's `match`), the CPU a deep line
costs the leader on each pass whatever the database does. `python -m bench` measures it first
and holds it to PASS_LIMIT_MS (docs/benchmarks.md); tests/routing/test_policy.py checks on the
same floor that the pass keeps the rules.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.channels import Channel
from app.routing.policy import (
    TIERS,
    AvailableAgent,
    Capacity,
    Load,
    QueueRules,
    RelaxationStep,
    SkillNeed,
    WaitingInteraction,
    match,
)

PASS_LIMIT_MS = 1000.0  # a deep line still routes within a second of a pass
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
QUEUES = (uuid.UUID(int=0xB1), uuid.UUID(int=0x5A))
SKILLS = ("billing", "mandarin", "vip")
WEIGHTS = {"platinum": 30.0, "gold": 20.0, "iron": 10.0, "lead": 0.0}
RELAXATION = tuple(
    RelaxationStep(after, cap) for after, cap in ((0, 5), (30, 3), (60, 1), (120, 0))
)
LOADS = (Load(), Load(voice=1), Load(chat=2), Load(email=1))


@dataclass(frozen=True)
class Floor:
    """What a pass is given."""

    waiting: list[WaitingInteraction]
    agents: list[AvailableAgent]
    queues: dict[uuid.UUID, QueueRules]
    now: datetime


def _agent_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x2000 + n)


def _ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def _agent(rnd: random.Random, n: int) -> AvailableAgent:
    return AvailableAgent(
        id=_agent_id(n),
        skills={skill: rnd.randint(1, 5) for skill in SKILLS if rnd.random() < 0.6},
        capacity=Capacity(voice=1, chat=3, email=2),
        load=rnd.choice(LOADS),
        idle_since=_ago(rnd.randint(0, 600)),
        in_wrap_up=rnd.random() < 0.1,
    )


def _waiting(rnd: random.Random, n: int, agents: int) -> WaitingInteraction:
    last_agent = _agent_id(rnd.randrange(agents)) if rnd.random() < 0.2 else None
    return WaitingInteraction(
        id=uuid.UUID(int=0x1000 + n),
        channel=rnd.choice(tuple(Channel)),
        queue_id=rnd.choice(QUEUES),
        priority=rnd.randint(0, 3),
        tier=rnd.choice(TIERS),
        waiting_since=_ago(rnd.randint(0, 180)),
        needs=tuple(SkillNeed(s, rnd.randint(1, 5)) for s in SKILLS if rnd.random() < 0.4),
        last_agent_id=last_agent,
        last_agent_at=_ago(rnd.randint(0, 900)),
        excluded_agents=frozenset(
            _agent_id(a) for a in rnd.sample(range(agents), rnd.choice([0, 0, 0, 1, 3]))
        ),
    )


def full_floor(*, waiting: int = 2000, agents: int = 500, seed: int = 20261128) -> Floor:
    """A seeded floor: the same one on every run."""
    rnd = random.Random(seed)
    queues = {
        queue_id: QueueRules(
            queue_id=queue_id,
            tier_weights=WEIGHTS,
            aging_factor=0.5,
            relaxation=RELAXATION,
            sticky_seconds=600,
        )
        for queue_id in QUEUES
    }
    floor_agents = [_agent(rnd, n) for n in range(agents)]
    line = [_waiting(rnd, n, agents) for n in range(waiting)]
    return Floor(waiting=line, agents=floor_agents, queues=queues, now=NOW)


def time_passes(passes: int = 20) -> dict[str, Any]:
    """`passes` passes over the full floor: milliseconds per pass and the matches each made."""
    floor = full_floor()
    took: list[float] = []
    matched = 0
    for _ in range(passes):
        started = time.perf_counter()
        matched = len(match(floor.waiting, floor.agents, floor.queues, floor.now))
        took.append(1000 * (time.perf_counter() - started))
    p50 = statistics.median(took)
    return {
        "waiting": len(floor.waiting),
        "agents": len(floor.agents),
        "passes": passes,
        "matches": matched,
        "p50_ms": round(p50, 1),
        "max_ms": round(max(took), 1),
        "limit_ms": PASS_LIMIT_MS,
        "met": p50 <= PASS_LIMIT_MS,
    }

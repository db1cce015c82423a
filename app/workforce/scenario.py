"""What a what-if run simulates (`Scenario`) and what it tells (`RunFigures`, `Outcome`), in the
figures' own definitions (app/routing/figures.py: `Tally`, `service_level`,
`average_speed_of_answer`, `abandonment_rate`, `occupancy`). The run itself is
app/workforce/simulation.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from app.queues.models import AbandonPolicy
from app.queues.schemas import TierWeights
from app.routing import figures
from app.routing.figures import Tally

# The weights and aging a new queue gets (app/queues/schemas.py): a what-if starts from them.
DEFAULT_TIER_WEIGHTS: Mapping[str, float] = MappingProxyType(TierWeights().model_dump())
DEFAULT_AGING_FACTOR = 0.5
# One skill, one queue, every caller of one tier: the center Erlang's formulas describe.
ONE_SKILL = "calls"


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """`count` agents who hold the same skills (skill -> level 1-5)."""

    count: int
    skills: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Scenario:
    """A contact center's interval, as a forecast gives it: calls per interval, their average
    handle time (talk and wrap-up together: the agent's capacity is held through both), the
    agents on the phones, and how long callers wait before they hang up (`patience_seconds`,
    the mean of an exponential; None: nobody hangs up, Erlang C's caller).

    `skills` shares the calls out by the skill they need (each skill a queue of its own, whose
    callers need it at level 1); `tiers` shares them out by customer tier; `tier_weights` and
    `aging_factor` are the queues' routing rules (docs/routing.md)."""

    calls: float
    interval_seconds: float
    aht_seconds: float
    target_seconds: int
    agents: tuple[AgentGroup, ...]
    patience_seconds: float | None = None
    skills: Mapping[str, float] = field(default_factory=lambda: {ONE_SKILL: 1.0})
    tiers: Mapping[str, float] = field(default_factory=lambda: {"iron": 1.0})
    tier_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIER_WEIGHTS))
    aging_factor: float = DEFAULT_AGING_FACTOR
    abandon_policy: AbandonPolicy = AbandonPolicy.against

    @property
    def agent_count(self) -> int:
        return sum(group.count for group in self.agents)

    @property
    def arrival_rate(self) -> float:
        """Calls per second."""
        return self.calls / self.interval_seconds

    @property
    def offered_load(self) -> float:
        """The traffic in erlangs: how many agents the calls keep busy if every one is answered."""
        return self.arrival_rate * self.aht_seconds

    @property
    def service(self) -> figures.ServiceRules:
        """The queues' service rules. Every abandon counts (no short abandons): Erlang A counts
        every caller who hangs up, and so does the comparison with it."""
        return figures.ServiceRules(
            target_seconds=self.target_seconds,
            abandon_policy=self.abandon_policy,
            short_abandon_seconds=0,
        )


def all_skilled(count: int, skills: Mapping[str, float]) -> tuple[AgentGroup, ...]:
    """`count` agents who each hold every skill of the call mix, at level 1."""
    return (AgentGroup(count, dict.fromkeys(skills, 1)),)


@dataclass(frozen=True, slots=True)
class RunFigures:
    """The figures of one line (everyone, a tier or a skill), from its tally."""

    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    asa_s: float | None
    abandon_rate: float | None

    @classmethod
    def of(cls, tally: Tally, abandon_policy: AbandonPolicy) -> RunFigures:
        return cls(
            offered=tally.offered,
            answered=tally.answered,
            abandoned=tally.abandoned,
            service_level=figures.service_level(tally, abandon_policy),
            asa_s=figures.average_speed_of_answer(tally),
            abandon_rate=figures.abandonment_rate(tally),
        )


@dataclass(frozen=True, slots=True)
class RunTally:
    """What one run (or several, added up) counted: the line's tally by tier and by skill, and
    the agents' handling and staffed seconds while calls were arriving."""

    by_tier: Mapping[str, Tally]
    by_skill: Mapping[str, Tally]
    handling_seconds: float
    staffed_seconds: float

    def __add__(self, other: RunTally) -> RunTally:
        return RunTally(
            by_tier=_added(self.by_tier, other.by_tier),
            by_skill=_added(self.by_skill, other.by_skill),
            handling_seconds=self.handling_seconds + other.handling_seconds,
            staffed_seconds=self.staffed_seconds + other.staffed_seconds,
        )

    @property
    def tally(self) -> Tally:
        return sum(self.by_tier.values(), Tally())


def _added(one: Mapping[str, Tally], other: Mapping[str, Tally]) -> dict[str, Tally]:
    return {key: one.get(key, Tally()) + other.get(key, Tally()) for key in {*one, *other}}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the runs of a scenario tell: the figures of their tallies added up (a run's weight
    is its calls), the service level of each run (their spread), and how long they took."""

    scenario: Scenario
    total: RunFigures
    occupancy: float | None
    by_tier: Mapping[str, RunFigures]
    by_skill: Mapping[str, RunFigures]
    run_service_levels: tuple[float | None, ...]
    run_asas: tuple[float | None, ...]
    arrivals: int
    seconds: float  # wall-clock time of all runs

    @classmethod
    def of(
        cls, scenario: Scenario, tallies: list[RunTally], arrivals: int, seconds: float
    ) -> Outcome:
        added = tallies[0]
        for more in tallies[1:]:
            added = added + more
        policy = scenario.abandon_policy
        return cls(
            scenario=scenario,
            total=RunFigures.of(added.tally, policy),
            occupancy=figures.occupancy(added.handling_seconds, added.staffed_seconds),
            by_tier={
                t: RunFigures.of(added.by_tier.get(t, Tally()), policy) for t in scenario.tiers
            },
            by_skill={
                s: RunFigures.of(added.by_skill.get(s, Tally()), policy) for s in scenario.skills
            },
            run_service_levels=tuple(figures.service_level(r.tally, policy) for r in tallies),
            run_asas=tuple(figures.average_speed_of_answer(r.tally) for r in tallies),
            arrivals=arrivals,
            seconds=seconds,
        )

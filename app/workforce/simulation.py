"""What-if runs of the routing policy: a discrete-event simulation of a contact center whose
calls are routed by the project's own policy (app/routing/policy.py), not by a copy of it.

Calls arrive as a Poisson stream, each of a tier and needing a skill (`Scenario`); handle times
and callers' patience are exponential. Whenever something changes the simulated center asks the
policy, as the matcher does: an arrival takes its turn in a `policy.Standing` of the agents with
room (app/routing/arrivals.py does the same for a real arrival), and an agent who frees up
starts a pass, a new standing served the waiting line page by page in the order of service, as
app/routing/passes.py serves the pages it reads. An offer is accepted at once (no offer
timeout, no rejection); a call's wrap-up is part of its handle time. Each wait ends as a real
one does (`figures.wait_ended`), in the tallies the figures are read from.

docs/staffing.md ("What-if runs of the routing policy") says what it models, what it leaves
out, how long it takes and how it agrees with Erlang C and Erlang A.
"""

from __future__ import annotations

import heapq
import random
import time
import uuid
from bisect import bisect_left, insort
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice

from app.core.channels import Channel
from app.routing import figures, policy
from app.routing.figures import LineEnd, Tally
from app.workforce.scenario import Outcome, RunTally, Scenario

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday morning; only differences matter

# The events of the simulated center, in the order they are handled at the same moment.
DONE, ARRIVES, GIVES_UP = 0, 1, 2
# A simulated agent takes calls only: no room for chats or emails to count in `Standing.full`.
PHONES_ONLY = policy.Capacity(voice=1, chat=0, email=0)
# The first page of a pass (the matcher reads 500; fewer do here, as a pass served in pages
# makes the same pairs whatever their size: `policy.Standing.serve_in_order`).
FIRST_PAGE = 8
TALLIED = tuple(field.name for field in fields(Tally))


@dataclass(slots=True)
class _Caller:
    """A call waiting in the line, with its place in the order of service (`key`)."""

    item: policy.WaitingInteraction
    arrived: float
    tier: str
    skill: str
    key: tuple[float, float, int]


class _Center:
    """One run: the agents, the line, the clock and the tallies."""

    def __init__(self, scenario: Scenario, rng: random.Random) -> None:
        self.scenario, self.rng = scenario, rng
        self.queues = {skill: uuid.uuid5(uuid.NAMESPACE_OID, skill) for skill in scenario.skills}
        self.rules = {
            queue_id: policy.QueueRules(
                queue_id=queue_id,
                tier_weights=scenario.tier_weights,
                aging_factor=scenario.aging_factor,
            )
            for queue_id in self.queues.values()
        }
        self.needs = {skill: (policy.SkillNeed(skill, 1),) for skill in scenario.skills}
        self.skills = _chooser(scenario.skills)
        self.tiers = _chooser(scenario.tiers)
        self.service = scenario.service
        self.skilled = [group.skills for group in scenario.agents for _ in range(group.count)]
        self.ids = [uuid.UUID(int=(1 << 64) + n) for n in range(len(self.skilled))]
        self.number = {agent_id: n for n, agent_id in enumerate(self.ids)}
        # The agents with room, as the policy sees them (idle since they last freed up).
        self.free = {n: self._available(n, 0.0) for n in range(len(self.skilled))}
        self.standing: policy.Standing | None = None  # of `free`, until an agent frees up
        # Each queue's waiting callers, in the order of service.
        self.lines: dict[str, list[tuple[float, float, int]]] = {s: [] for s in scenario.skills}
        self.waiting: dict[int, _Caller] = {}
        self.events: list[tuple[float, int, int, int]] = []  # (when, what, order, whom)
        self.order = 0
        self.now = 0.0
        self.busy = 0
        self.handling = 0.0  # agent-seconds holding a call, while calls arrive
        # Each wait's end as `figures.wait_ended` tells it, by tier and skill, added up at the
        # end (adding tallies one by one cost a sixth of a run).
        self.ended: dict[tuple[str, str], list[Tally]] = {}
        self.joined: dict[tuple[str, str], int] = {}

    # --- the clock ------------------------------------------------------------------------

    def run(self, arrivals: int) -> RunTally:
        rate = self.scenario.arrival_rate
        self._at(self.rng.expovariate(rate), ARRIVES, 1)
        last_arrival: float | None = None  # until then, the agents' time counts
        while self.events:
            when, what, _, whom = heapq.heappop(self.events)
            if last_arrival is None:
                self.handling += self.busy * (when - self.now)
            self.now = when
            if what == ARRIVES:
                self._arrives(whom)
                if whom < arrivals:
                    self._at(when + self.rng.expovariate(rate), ARRIVES, whom + 1)
                else:
                    last_arrival = when
            elif what == DONE:
                self._frees_up(whom)
            else:
                self._gives_up(whom)
        cells = {cell: _sum(self.ended.get(cell, []), n) for cell, n in self.joined.items()}
        return RunTally(
            by_tier=_by(cells, 0),
            by_skill=_by(cells, 1),
            handling_seconds=self.handling,
            staffed_seconds=len(self.skilled) * (last_arrival or 0.0),
        )

    def _at(self, when: float, what: int, whom: int) -> None:
        self.order += 1
        heapq.heappush(self.events, (when, what, self.order, whom))

    def _moment(self) -> datetime:
        return START + timedelta(seconds=self.now)

    # --- what happens -----------------------------------------------------------------------

    def _arrives(self, number: int) -> None:
        """A call joins its queue's line, unless the policy gives it an agent at once. Its
        turn in the standing is a whole pass's outcome: every caller waiting was weighed
        against this standing's agents already (when the last of them freed up) and had none,
        and the loads have only grown since."""
        skill, tier = self.skills(self.rng.random()), self.tiers(self.rng.random())
        moment = self._moment()
        item = policy.WaitingInteraction(
            id=uuid.UUID(int=number),
            channel=Channel.voice,
            queue_id=self.queues[skill],
            priority=0,
            tier=tier,
            waiting_since=moment,
            needs=self.needs[skill],
        )
        cell = (tier, skill)
        self.joined[cell] = self.joined.get(cell, 0) + 1
        if self.free:
            match = self._arrival_match(item, moment)
            if match is not None:
                self._answered(item, self.now, tier, skill, match.agent_id)
                return
        caller = _Caller(item, self.now, tier, skill, self._place(item, number))
        self.waiting[number] = caller
        insort(self.lines[skill], caller.key)
        if self.scenario.patience_seconds is not None:
            patience = self.rng.expovariate(1.0 / self.scenario.patience_seconds)
            self._at(self.now + patience, GIVES_UP, number)

    def _place(self, item: policy.WaitingInteraction, number: int) -> tuple[float, float, int]:
        """Where a caller stands in the order of service, for good: the policy's effective
        priority on arrival (tier weight, no aging yet) less the aging a caller who came at
        time 0 would have gained by then. Every waiting caller ages at the same rate (one
        aging factor), so this orders them as `policy.in_line` does at any moment; each page
        served is put in the policy's own order again (`Standing.serve_in_order`)."""
        rules = self.rules[item.queue_id]
        arrived = policy.effective_priority(item, rules, item.waiting_since)
        return (-(arrived - rules.aging_factor * self.now), self.now, number)

    def _frees_up(self, agent: int) -> None:
        """An agent ends a call (its wrap-up included): a new standing, and a pass over the
        waiting line if anyone waits."""
        self.busy -= 1
        self.free[agent] = self._available(agent, self.now)
        self.standing = None
        if self.waiting:
            self._pass()

    def _arrival_match(
        self, item: policy.WaitingInteraction, moment: datetime
    ) -> policy.Match | None:
        """The arrival's turn in the standing."""
        return self._standing().serve(item, self.rules, moment)

    def _pass(self) -> None:
        """One matching pass, its pairs answered."""
        for match in self._pass_matches():
            caller = self.waiting.pop(match.interaction_id.int)
            self._leaves_the_line(caller)
            self._answered(caller.item, caller.arrived, caller.tier, caller.skill, match.agent_id)

    def _pass_matches(self) -> list[policy.Match]:
        """The waiting in pages, in the order of service, to one standing, until nobody has
        room or the line ends. Only the lines of queues whose skill an agent with room holds
        are read: the others' callers have no candidate, and the policy passes over an
        interaction without a candidate leaving everything as it was (the pairs are those of
        a pass over them all), so a queue nobody free can serve costs nothing."""
        standing, moment = self._standing(), self._moment()
        held = {skill for agent in self.free.values() for skill in agent.skills}
        line = heapq.merge(*(self.lines[skill] for skill in held if self.lines.get(skill)))
        size = max(FIRST_PAGE, 2 * len(self.free))
        matches: list[policy.Match] = []
        while not standing.full():
            page = [self.waiting[key[2]].item for key in islice(line, size)]
            if not page:
                break
            matches.extend(standing.serve_in_order(page, self.rules, moment))
            size *= 2
        return matches

    def _answered(
        self,
        item: policy.WaitingInteraction,
        arrived: float,
        tier: str,
        skill: str,
        agent_id: uuid.UUID,
    ) -> None:
        """The agent accepts at once: the wait ends answered, the call is handled."""
        self._ended(tier, skill, LineEnd.answered, self.now - arrived)
        agent = self.number[agent_id]
        del self.free[agent]
        self.busy += 1
        self._at(self.now + self.rng.expovariate(1.0 / self.scenario.aht_seconds), DONE, agent)

    def _gives_up(self, number: int) -> None:
        """A caller's patience ran out: hung up, if still waiting."""
        caller = self.waiting.pop(number, None)
        if caller is None:
            return  # answered before
        self._leaves_the_line(caller)
        self._ended(caller.tier, caller.skill, LineEnd.abandoned, self.now - caller.arrived)

    def _leaves_the_line(self, caller: _Caller) -> None:
        line = self.lines[caller.skill]
        del line[bisect_left(line, caller.key)]

    def _ended(self, tier: str, skill: str, end: LineEnd, waited: float) -> None:
        """A wait ended, counted as a real one is (`figures.wait_ended`)."""
        ended = figures.wait_ended(end, waited, self.service)
        self.ended.setdefault((tier, skill), []).append(ended)

    # --- the agents as the policy sees them ---------------------------------------------------

    def _available(self, agent: int, since: float) -> policy.AvailableAgent:
        return policy.AvailableAgent(
            id=self.ids[agent],
            skills=self.skilled[agent],
            capacity=PHONES_ONLY,
            load=policy.Load(),
            idle_since=START + timedelta(seconds=since),
        )

    def _standing(self) -> policy.Standing:
        if self.standing is None:
            self.standing = policy.Standing(list(self.free.values()))
        return self.standing


def _sum(ended: list[Tally], joined: int) -> Tally:
    """`joined` waits that began and the waits that `ended`, in one tally (`Tally.__add__`
    field by field, at once)."""
    total = {name: sum(getattr(one, name) for one in ended) for name in TALLIED}
    return Tally(**{**total, "offered": joined})


def _by(cells: Mapping[tuple[str, str], Tally], part: int) -> dict[str, Tally]:
    """The tallies of (tier, skill) cells added up by tier (`part` 0) or by skill (1)."""
    added: dict[str, Tally] = {}
    for cell, tally in cells.items():
        added[cell[part]] = added.get(cell[part], Tally()) + tally
    return added


def _chooser(shares: Mapping[str, float]) -> Callable[[float], str]:
    """A draw in [0, 1) to a name, each name as often as its share of the total."""
    names = list(shares)
    weights = [float(shares[name]) for name in names]
    bounds = [b / sum(weights) for b in accumulate(weights)]
    if len(names) == 1:
        return lambda _draw: names[0]
    return lambda draw: names[min(bisect_left(bounds, draw), len(names) - 1)]


def run_once(scenario: Scenario, arrivals: int, seed: int | str) -> RunTally:
    """One run of `arrivals` calls, seeded: the same seed gives the same tallies."""
    # A simulation, not a secret: a seeded generator makes a run repeatable.
    return _Center(scenario, random.Random(seed)).run(arrivals)  # noqa: S311


def simulate(
    scenario: Scenario, *, arrivals: int, runs: int = 1, seed: int = 1, workers: int = 1
) -> Outcome:
    """`runs` runs of `arrivals` calls each (run i seeded with f"{seed}/{i}"), their tallies
    added up into the figures; with `workers` above 1, that many processes run them side by
    side (the same tallies: each run is seeded by its number, not by its process)."""
    started = time.perf_counter()
    seeds = [f"{seed}/{run}" for run in range(runs)]
    if workers > 1 and runs > 1:
        with ProcessPoolExecutor(min(workers, runs)) as pool:
            tallies = list(pool.map(run_once, [scenario] * runs, [arrivals] * runs, seeds))
    else:
        tallies = [run_once(scenario, arrivals, one) for one in seeds]
    return Outcome.of(scenario, tallies, arrivals * runs, time.perf_counter() - started)

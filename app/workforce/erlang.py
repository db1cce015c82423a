"""How many agents a forecast of calls needs: Erlang C, and Erlang A (callers who hang up).

Both models look at one queue over one planning interval in its steady state: calls arrive at
random (Poisson) at the forecast's average rate, each holds an agent for an exponentially
distributed handle time with the forecast's mean (AHT: talk and wrap-up), N identical agents
answer them first come, first served. Erlang C (M/M/N) assumes nobody hangs up: every caller
waits as long as it takes. Erlang A (M/M/N+M) gives every caller an exponentially distributed
patience with the forecast's mean: a caller not answered within it leaves.

The figures, for N agents (docs/staffing.md says the same for people; docs/metrics.md defines
the measured ones these forecast):

- **offered load** A = arrival rate x AHT, in Erlangs: the agents' worth of work that arrives.
- **probability of waiting**: the share of callers who find every agent busy and wait at all.
- **service level (SL)**: the share of callers answered within the target answer time. Under
  Erlang A an abandoned caller counts against it (answered within target / all callers), as
  docs/metrics.md's default abandon policy `against` counts the measured SL: every caller of the
  model is either answered or abandons, so "answered + abandoned" is every caller.
- **ASA** (average speed of answer): the mean wait of the callers who are answered, those
  answered at once counted with a wait of 0 (as the measured ASA counts them).
- **occupancy**: the share of the agents' time spent on calls: carried load / N (under Erlang C
  every call is carried, A / N; under Erlang A the abandoned ones are not).
- **abandonment** (Erlang A only): the share of callers who hang up before an answer.

Numerically sound for thousands of agents: no factorial and no power of the load is ever formed.
Erlang B comes from its recursion B(n) = A.B(n-1) / (n + A.B(n-1)) (each step in [0, 1]);
Erlang A's sums over the waiting line are incomplete gamma functions, computed in log space
(Mandelbaum and Zeltyn, "The Palm/Erlang-A queue, with applications to call centers", 2007;
Garnett, Mandelbaum and Reiman, "Designing a call center with impatient customers", 2002).
Pure functions of numbers: no clock, no database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The most agents agents_needed() looks at. A single queue of a very large centre has a few
# thousand agents; 100,000 leaves room for any plan of one queue while each evaluation (an
# Erlang B recursion over N) stays a few tens of milliseconds.
MOST_AGENTS = 100_000


class TooManyAgents(ValueError):
    """No number of agents up to the bound meets the targets."""


@dataclass(frozen=True, slots=True)
class Demand:
    """One interval of a forecast, and the answer time the line is held to.

    `calls` arrive in `interval_s` seconds (a forecast's average: it may be fractional), each
    handled in `aht_s` seconds on average; `target_s` is the service level's answer time.
    `patience_s` is the callers' mean patience: None for Erlang C (nobody hangs up), a number
    of seconds for Erlang A.
    """

    calls: float
    interval_s: float
    aht_s: float
    target_s: float
    patience_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "interval_s", "aht_s", "patience_s"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number above 0, not {value!r}")
        if not (math.isfinite(self.target_s) and self.target_s >= 0):
            raise ValueError(
                f"target_s must be a finite number of 0 or more, not {self.target_s!r}"
            )

    @property
    def arrival_rate(self) -> float:
        """Calls per second."""
        return self.calls / self.interval_s

    @property
    def load(self) -> float:
        """The offered load in Erlangs: the agents' worth of work that arrives."""
        return self.arrival_rate * self.aht_s


@dataclass(frozen=True, slots=True)
class Staffing:
    """What N agents give a demand (the module's docstring defines each figure).

    `asa_s` is None when the line grows without end (Erlang C with N at or below the load);
    `abandon_rate` is None under Erlang C, which does not model hanging up (not 0: the model
    does not predict that nobody leaves, it assumes it).
    """

    agents: int
    wait_probability: float
    service_level: float
    asa_s: float | None
    occupancy: float
    abandon_rate: float | None


def erlang_b(agents: int, load: float) -> float:
    """The Erlang B blocking probability of `agents` servers offered `load` Erlangs, by the
    recursion B(0) = 1, B(n) = A.B(n-1) / (n + A.B(n-1)): every step stays in [0, 1], so it
    neither overflows nor loses precision for any number of agents."""
    if agents < 0:
        raise ValueError(f"agents must be 0 or more, not {agents}")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def erlang_c(agents: int, load: float) -> float:
    """The Erlang C probability that a caller waits: C = N.B / (N - A.(1 - B)), B Erlang B;
    1 when N <= A (the line grows without end and everybody waits)."""
    if agents <= load:
        return 1.0
    blocking = erlang_b(agents, load)
    return agents * blocking / (agents - load * (1.0 - blocking))


def erlang_c_staffing(demand: Demand, agents: int) -> Staffing:
    """Erlang C's figures for `agents` (the demand's patience is not read).

    A caller who waits waits an exponential time of rate (N - A) / AHT, so
    SL = 1 - C.exp(-(N - A).target / AHT) and ASA = C.AHT / (N - A); occupancy is A / N.
    """
    load = demand.load
    if agents <= load:
        return Staffing(agents, 1.0, 0.0, None, 1.0, None)
    waits = erlang_c(agents, load)
    spare = agents - load
    service_level = 1.0 - waits * math.exp(-spare * demand.target_s / demand.aht_s)
    return Staffing(
        agents=agents,
        wait_probability=waits,
        service_level=_share(service_level),
        asa_s=waits * demand.aht_s / spare,
        occupancy=load / agents,
        abandon_rate=None,
    )


def staffing(demand: Demand, agents: int) -> Staffing:
    """The figures `agents` give: Erlang A when the demand has a patience, else Erlang C."""
    if agents < 1:
        raise ValueError(f"agents must be 1 or more, not {agents}")
    if demand.patience_s is None:
        return erlang_c_staffing(demand, agents)
    return erlang_a_staffing(demand, agents)


def agents_needed(
    demand: Demand,
    service_level: float,
    *,
    max_abandon: float | None = None,
    most_agents: int = MOST_AGENTS,
) -> Staffing:
    """The fewest agents whose service level is at least `service_level` (0-1) and, under
    Erlang A when `max_abandon` is given, whose abandonment is at most it; with their figures.

    Both figures only get better with every agent added, so a binary search over 1..most_agents
    finds the fewest. Raises TooManyAgents when even `most_agents` fall short.
    """
    if not 0.0 <= service_level <= 1.0:
        raise ValueError(f"service_level must be between 0 and 1, not {service_level!r}")
    if max_abandon is not None and not 0.0 <= max_abandon <= 1.0:
        raise ValueError(f"max_abandon must be between 0 and 1, not {max_abandon!r}")

    def meets(figures: Staffing) -> bool:
        if figures.service_level < service_level:
            return False
        return max_abandon is None or (figures.abandon_rate or 0.0) <= max_abandon

    # Erlang C gives nothing at or below the load: start the search just above it.
    fewest = 1 if demand.patience_s is not None else max(1, math.floor(demand.load) + 1)
    if fewest > most_agents or not meets(best := staffing(demand, most_agents)):
        raise TooManyAgents(f"more than {most_agents} agents would be needed")
    low, high = fewest, most_agents  # high meets the targets; every count below low does not
    while low < high:
        middle = (low + high) // 2
        figures = staffing(demand, middle)
        if meets(figures):
            high, best = middle, figures
        else:
            low = middle + 1
    return best if best.agents == high else staffing(demand, high)


def erlang_a_staffing(demand: Demand, agents: int) -> Staffing:
    """Erlang A's figures for `agents` (defined in the following commit)."""
    raise NotImplementedError


def _share(value: float) -> float:
    """A probability kept in [0, 1] against rounding at its ends."""
    return min(1.0, max(0.0, value))

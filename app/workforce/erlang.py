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
from collections.abc import Callable
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
        raise TooManyAgents(f"more than {most_agents:,} agents would be needed")
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
    """Erlang A's figures for `agents`: Poisson calls at rate lambda, handle rate mu = 1/AHT,
    and each waiting caller hangs up at rate theta = 1/patience.

    The chain of callers in the system has pi(n + j) = pi(n) a^j / ((b+1)(b+2)...(b+j)) beyond the
    n agents, with a = lambda/theta and b = n.mu/theta, and pi(k) = pi(0) A^k / k! up to them.
    Relative to pi(n), the states below n weigh w0 = n / (A.B(n-1, A)) (B Erlang B) and the
    waiting states S = b.K(b), where K(s) = integral over [0, 1] of e^(a(1-u)) u^(s-1) du =
    e^a a^-s gamma(s, a), an incomplete gamma. In u = e^(-theta.x), x the offered wait (the wait
    a caller would have if they never hung up), the waits answered are b.K(b+1) of S: the caller
    outlasts x with probability e^(-theta.x) = u. Those within the target are the part of that
    integral over u >= e^(-theta.target). So, with Z = w0 + S (Mandelbaum and Zeltyn 2007):

    - probability of waiting = S / Z
    - answered = (w0 + b.K(b+1)) / Z; abandonment = 1 - answered
    - SL = (w0 + b.(K(b+1) over [e^(-theta.target), 1])) / Z, abandons counted against it
    - ASA = n.mu.I / (w0 + b.K(b+1)), I = the integral over x of x e^(a(1-e^(-theta.x)) -
      (n.mu + theta).x): the mean offered wait of the answered, answered at once counted as 0
    - occupancy = A.answered / n

    All in logarithms: a and b reach the millions for thousands of agents and patient callers.
    """
    if demand.patience_s is None:
        raise ValueError("Erlang A needs the callers' patience")
    load = demand.load
    theta = 1.0 / demand.patience_s
    served = agents / demand.aht_s  # n.mu, the agents' answer rate when all are busy
    a = demand.arrival_rate / theta
    b = served / theta
    log_below = math.log(agents) - math.log(load) - _log_erlang_b(agents - 1, load)
    log_waiting = math.log(b) + _log_k(b, a, 1.0)
    log_answered_waiting = math.log(b) + _log_k(b + 1, a, 1.0)
    log_in_target = math.log(b) + _log_k_between(b + 1, a, math.exp(-theta * demand.target_s))
    log_all = _log_sum(log_below, log_waiting)
    log_answered = _log_sum(log_below, log_answered_waiting)
    answered = math.exp(log_answered - log_all)
    log_wait_of_answered = math.log(served) + _log_answered_wait_integral(
        demand.arrival_rate, served, theta
    )
    return Staffing(
        agents=agents,
        wait_probability=_share(math.exp(log_waiting - log_all)),
        service_level=_share(math.exp(_log_sum(log_below, log_in_target) - log_all)),
        asa_s=math.exp(log_wait_of_answered - log_answered),
        occupancy=_share(load * answered / agents),
        abandon_rate=_share(1.0 - answered),
    )


def _log_erlang_b(agents: int, load: float) -> float:
    """log B(agents, load) as a Poisson ratio, P(N = n) / P(N <= n) with N ~ Poisson(load):
    the recursion's values underflow to 0 for many agents on a small load, their logarithms
    do not. P(N <= n) is the regularized upper incomplete gamma Q(n + 1, load)."""
    log_point = agents * math.log(load) - load - math.lgamma(agents + 1)
    return log_point - _log_gamma_q(agents + 1, load)


def _log_k(s: float, a: float, upper: float) -> float:
    """log of the integral over [0, upper] of e^(a(1-u)) u^(s-1) du = e^a a^-s gamma(s, a.upper)."""
    return a - s * math.log(a) + math.lgamma(s) + _log_gamma_p(s, a * upper)


def _log_k_between(s: float, a: float, lower: float) -> float:
    """log of the integral over [lower, 1] of e^(a(1-u)) u^(s-1) du (0 < lower <= 1)."""
    if lower >= 1.0:
        return -math.inf
    scale = a - s * math.log(a) + math.lgamma(s)
    high, low = a, a * lower
    if low > s + 1:
        # Both ends in the upper tail: P(s, high) - P(s, low) = Q(s, low) - Q(s, high), each Q
        # small and known to full precision (1 - P would lose it).
        log_low_q, log_high_q = _log_gamma_q(s, low), _log_gamma_q(s, high)
        return scale + log_low_q + _log1m_exp(log_high_q - log_low_q)
    log_high_p, log_low_p = _log_gamma_p(s, high), _log_gamma_p(s, low)
    return scale + log_high_p + _log1m_exp(log_low_p - log_high_p)


def _log_answered_wait_integral(arrival_rate: float, served: float, theta: float) -> float:
    """log of the integral over x > 0 of x.exp(a(1 - e^(-theta.x)) - (served + theta).x), a =
    arrival_rate / theta: the answered callers' offered waits, weighed. Its logarithm psi is
    concave, so the integrand is one hump: Simpson's rule over where psi is within 60 of its
    top (beyond it the integrand is below e^-60 of its peak, and falls off at least that fast).
    """
    a = arrival_rate / theta
    decay = served + theta

    def psi(x: float) -> float:
        return a * -math.expm1(-theta * x) - decay * x + math.log(x)

    def slope(x: float) -> float:
        return arrival_rate * math.exp(-theta * x) - decay + 1.0 / x

    top = _root_of_decreasing(slope, 0.0)
    peak = psi(top)
    low = _root_of_decreasing(lambda x: peak - 60.0 - psi(x), 0.0, top)
    high = _root_of_decreasing(lambda x: psi(x) - (peak - 60.0), top)
    steps = 4096
    width = (high - low) / steps
    total = 0.0
    for step in range(steps + 1):
        x = low + step * width
        weight = 1 if step in (0, steps) else (4 if step % 2 else 2)
        if x > 0:
            total += weight * math.exp(psi(x) - peak)
    return peak + math.log(total * width / 3)


def _root_of_decreasing(
    function: Callable[[float], float], low: float, high: float | None = None
) -> float:
    """Where a decreasing function crosses 0 on (low, high]: bisection, after doubling `high`
    from above `low` when none is given."""
    if high is None:
        step = 1e-9
        high = low + step
        while function(high) > 0:
            step *= 2
            high = low + step
    low_end = low if low > 0 else high * 1e-300
    for _ in range(200):
        middle = (low_end + high) / 2
        if middle in (low_end, high):
            break
        if function(middle) > 0:
            low_end = middle
        else:
            high = middle
    return (low_end + high) / 2


def _log_gamma_p(s: float, x: float) -> float:
    """log P(s, x), the regularized lower incomplete gamma function (Numerical Recipes: its
    series below x = s + 1, 1 - Q from the continued fraction above)."""
    if x <= 0:
        return -math.inf
    if x < s + 1:
        return _log_gamma_series(s, x)
    return _log1m_exp(_log_gamma_fraction(s, x))


def _log_gamma_q(s: float, x: float) -> float:
    """log Q(s, x) = log(1 - P(s, x)), the regularized upper incomplete gamma function."""
    if x <= 0:
        return 0.0
    if x < s + 1:
        return _log1m_exp(_log_gamma_series(s, x))
    return _log_gamma_fraction(s, x)


def _log_gamma_series(s: float, x: float) -> float:
    """log P(s, x) by its series x^s e^-x / Gamma(s) sum x^k / (s (s+1)...(s+k)), for x < s + 1:
    its terms fall from the first, and it needs about 9 sqrt(s) of them at worst."""
    term = total = 1.0 / s
    k = 0
    while term > total * 1e-17:
        k += 1
        term *= x / (s + k)
        total += term
    return s * math.log(x) - x - math.lgamma(s) + math.log(total)


def _log_gamma_fraction(s: float, x: float) -> float:
    """log Q(s, x) by its continued fraction (modified Lentz), for x >= s + 1."""
    tiny = 1e-300
    b = x + 1.0 - s
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    i = 0
    while True:
        i += 1
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16 or i > 10_000_000:
            break
    return s * math.log(x) - x - math.lgamma(s) + math.log(h)


def _log1m_exp(log_value: float) -> float:
    """log(1 - e^log_value) for log_value <= 0, precise at both ends."""
    if log_value >= 0.0:
        return -math.inf
    if log_value > -math.log(2.0):
        return math.log(-math.expm1(log_value))
    return math.log1p(-math.exp(log_value))


def _log_sum(first: float, second: float) -> float:
    """log(e^first + e^second) without leaving floating point."""
    top = max(first, second)
    if top == -math.inf:
        return top
    return top + math.log(math.exp(first - top) + math.exp(second - top))


def _share(value: float) -> float:
    """A probability kept in [0, 1] against rounding at its ends."""
    return min(1.0, max(0.0, value))

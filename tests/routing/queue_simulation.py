"""A small discrete-event simulation of one queue, to measure the estimated wait against the
waits callers really have. Pure: a seeded random source, no clock.

Callers arrive as a Poisson process; `agents` agents serve them first come, first served,
each call taking a handle time drawn from `handle_time`; nobody abandons. A caller who finds
every agent busy waits, and is told on arrival the estimated wait the way the IVR tells it:
`figures.estimated_wait(position, AHT, staffed agents)`, with the AHT as `figures.read_aht`
defines it (the mean handle time of the calls whose handling ended within the last `window`)
and every agent staffed.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.routing.figures import HandleTime, estimated_wait

HandleTimes = Callable[[random.Random], float]


@dataclass(frozen=True, slots=True)
class Waited:
    """A caller who found every agent busy: where they stood, what they were told, and how
    long they waited (seconds)."""

    position: int
    estimate: float
    waited: float


def exponential(mean: float) -> HandleTimes:
    return lambda rng: rng.expovariate(1 / mean)


def lognormal(mean: float, cv: float) -> HandleTimes:
    """Log-normal handle times of this mean and coefficient of variation (sd / mean)."""
    sigma2 = math.log(1 + cv * cv)
    mu, sigma = math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
    return lambda rng: rng.lognormvariate(mu, sigma)


def gamma(mean: float, cv: float) -> HandleTimes:
    shape = 1 / (cv * cv)
    return lambda rng: rng.gammavariate(shape, mean / shape)


def simulate(
    *,
    agents: int,
    occupancy: float,
    handle_time: HandleTimes,
    mean_handle: float,
    arrivals: int,
    seed: int,
    window: float = 3600.0,
    warm_up: float = 4 * 3600.0,
) -> list[Waited]:
    """The callers who waited, after the first `warm_up` seconds (the queue starts empty and
    the AHT with no history), in the order they were served. Arrivals come at the rate that
    keeps the agents busy `occupancy` of the time: occupancy * agents / mean handle time."""
    rng = random.Random(seed)
    rate = occupancy * agents / mean_handle
    in_hand: list[tuple[float, float]] = []  # (when it ends, its handle time): a heap
    handled: deque[tuple[float, float]] = deque()  # the same, for calls ended in the window
    handled_sum = 0.0
    line: deque[tuple[float, int, float | None]] = deque()  # (arrived, position, estimate)
    waited: list[Waited] = []
    next_arrival, arrived = rng.expovariate(rate), 0

    while arrived < arrivals or line:
        if arrived < arrivals and (not in_hand or next_arrival <= in_hand[0][0]):
            clock = next_arrival
            arrived += 1
            next_arrival = clock + rng.expovariate(rate)
            if len(in_hand) < agents:
                handle = handle_time(rng)
                heapq.heappush(in_hand, (clock + handle, handle))
                continue
            while handled and handled[0][0] <= clock - window:
                handled_sum -= handled.popleft()[1]
            aht = HandleTime(handled_sum / len(handled), len(handled)) if handled else None
            estimate = estimated_wait(len(line) + 1, aht, agents)
            told = None if estimate is None or clock < warm_up else estimate.total_seconds()
            line.append((clock, len(line) + 1, told))
            continue
        clock, handle = heapq.heappop(in_hand)
        handled.append((clock, handle))
        handled_sum += handle
        if line:
            came, position, told = line.popleft()
            if told is not None:
                waited.append(Waited(position, told, clock - came))
            handle = handle_time(rng)
            heapq.heappush(in_hand, (clock + handle, handle))
    return waited


def relative_errors(callers: Sequence[Waited]) -> list[float]:
    """|estimate - actual wait| / actual wait, per caller who waited."""
    return [abs(c.estimate - c.waited) / c.waited for c in callers if c.waited > 0]


def median_error(callers: Sequence[Waited]) -> float:
    return statistics.median(relative_errors(callers))


def calibration_errors(callers: Sequence[Waited], *, at_least: int = 50) -> dict[int, float]:
    """Per position told on arrival (with `at_least` callers there): |mean estimate - mean
    actual wait| / mean actual wait. Whether the estimate is right on average for a caller
    at that place, apart from the spread of single waits around that average."""
    by_position: dict[int, list[Waited]] = {}
    for caller in callers:
        by_position.setdefault(caller.position, []).append(caller)
    errors = {}
    for position, there in sorted(by_position.items()):
        if len(there) >= at_least:
            actual = statistics.fmean(c.waited for c in there)
            told = statistics.fmean(c.estimate for c in there)
            errors[position] = abs(told - actual) / actual
    return errors

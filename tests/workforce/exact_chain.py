"""A brute-force check of Erlang C and A, sharing no formula with app/workforce/erlang.py.

The number of callers in the system is a birth-death chain (arrivals at rate lambda; n agents
serve at rate mu each; each waiting caller hangs up at rate theta, 0 for Erlang C). It is cut at
`states` states and its balance equations pi.Q = 0 are solved by Gaussian elimination. A caller
who arrives to find j waiting then walks a small absorbing chain of its own (positions j..0, then
answered or abandoned), whose chance of an answer within the target comes by uniformization and
whose mean answered wait by first-step analysis. Slow (cubic in the states): for small n only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExactFigures:
    wait_probability: float
    service_level: float
    asa_s: float
    abandon_rate: float
    occupancy: float


def exact_figures(
    *,
    agents: int,
    arrival_rate: float,
    aht_s: float,
    target_s: float,
    patience_s: float | None,
    states: int = 160,
) -> ExactFigures:
    """The figures of the cut chain (patience None: nobody hangs up)."""
    mu = 1.0 / aht_s
    theta = 0.0 if patience_s is None else 1.0 / patience_s
    pi = _stationary(agents, arrival_rate, mu, theta, states)
    waiting = pi[agents:]
    answered_by_target = _answered_within(agents, mu, theta, target_s, len(waiting))
    answered, answered_wait = _answered_and_mean_wait(agents, mu, theta, len(waiting))
    served_at_once = sum(pi[:agents])
    service_level = served_at_once + sum(
        p * h for p, h in zip(waiting, answered_by_target, strict=True)
    )
    answered_share = served_at_once + sum(p * a for p, a in zip(waiting, answered, strict=True))
    wait_of_answered = sum(p * m for p, m in zip(waiting, answered_wait, strict=True))
    mean_line = sum(j * p for j, p in enumerate(waiting))
    abandon_rate = theta * mean_line / arrival_rate  # each waiting caller leaves at rate theta
    busy = sum(min(k, agents) * p for k, p in enumerate(pi))
    return ExactFigures(
        wait_probability=sum(waiting),
        service_level=service_level,
        asa_s=wait_of_answered / answered_share,
        abandon_rate=abandon_rate,
        occupancy=busy / agents,
    )


def _stationary(agents: int, lam: float, mu: float, theta: float, states: int) -> list[float]:
    def down(k: int) -> float:
        return min(k, agents) * mu + max(0, k - agents) * theta

    # Rows: the balance equation of states 0..states-2, then sum(pi) = 1.
    matrix = [[0.0] * states for _ in range(states)]
    for k in range(states - 1):
        matrix[k][k] = -((lam if k < states - 1 else 0.0) + down(k))
        if k > 0:
            matrix[k][k - 1] = lam
        matrix[k][k + 1] = down(k + 1)
    matrix[states - 1] = [1.0] * states
    right = [0.0] * (states - 1) + [1.0]
    return _solve(matrix, right)


def _solve(matrix: list[list[float]], right: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting."""
    size = len(right)
    rows = [[*row, value] for row, value in zip(matrix, right, strict=True)]
    for column in range(size):
        pivot = max(range(column, size), key=lambda r: abs(rows[r][column]))
        rows[column], rows[pivot] = rows[pivot], rows[column]
        for r in range(column + 1, size):
            factor = rows[r][column] / rows[column][column]
            if factor:
                for c in range(column, size + 1):
                    rows[r][c] -= factor * rows[column][c]
    solution = [0.0] * size
    for r in reversed(range(size)):
        total = rows[r][size] - sum(rows[r][c] * solution[c] for c in range(r + 1, size))
        solution[r] = total / rows[r][r]
    return solution


def _answered_within(
    agents: int, mu: float, theta: float, target_s: float, lines: int
) -> list[float]:
    """For each count j of callers found waiting: the chance of an answer within the target.

    The caller's position i (callers ahead) drops at rate n.mu + i.theta; it leaves at theta.
    Uniformized at rate `fastest`: h_k(i) = chance of an answer within k jumps (the
    uniformized rate times the target stays well under 700, so no weight underflows)."""
    forward = [agents * mu + i * theta for i in range(lines)]
    fastest = max(f + theta for f in forward)
    steps_mean = fastest * target_s
    steps = int(steps_mean + 12 * math.sqrt(steps_mean) + 30)
    h = [0.0] * lines
    weight = math.exp(-steps_mean)
    totals = [0.0] * lines
    for k in range(1, steps + 1):
        h = [
            forward[i] / fastest * (1.0 if i == 0 else h[i - 1])
            + (1.0 - (forward[i] + theta) / fastest) * h[i]
            for i in range(lines)
        ]
        weight *= steps_mean / k
        totals = [t + weight * value for t, value in zip(totals, h, strict=True)]
    return totals


def _answered_and_mean_wait(
    agents: int, mu: float, theta: float, lines: int
) -> tuple[list[float], list[float]]:
    """For each j: the chance of an answer, and E[wait; answered] (first-step analysis)."""
    answered: list[float] = []
    wait: list[float] = []
    for i in range(lines):
        forward = agents * mu + i * theta
        leaving = forward + theta
        before = 1.0 if i == 0 else answered[i - 1]
        before_wait = 0.0 if i == 0 else wait[i - 1]
        p = forward / leaving * before
        answered.append(p)
        wait.append(p / leaving + forward / leaving * before_wait)
    return answered, wait

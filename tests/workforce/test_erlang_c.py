"""Erlang C (app/workforce/erlang.py) against the issue's example, published figures, and an
exact birth-death chain solved numerically (tests/workforce/exact_chain.py)."""

from __future__ import annotations

import time

import pytest

from app.workforce.erlang import (
    Demand,
    TooManyAgents,
    agents_needed,
    erlang_b,
    erlang_c,
    staffing,
)
from tests.workforce.exact_chain import exact_figures

# 100 calls per 30 minutes of 180 s each: 10 Erlangs.
HUNDRED_CALLS = Demand(calls=100, interval_s=1800, aht_s=180, target_s=20)


def test_the_issues_example_needs_14_agents() -> None:
    needed = agents_needed(HUNDRED_CALLS, 0.8)
    assert needed.agents == 14
    assert round(needed.service_level, 3) == 0.888
    assert round(staffing(HUNDRED_CALLS, 13).service_level, 3) == 0.796
    assert needed.occupancy == pytest.approx(10 / 14)
    assert needed.abandon_rate is None


def test_call_centre_helpers_worked_example() -> None:
    """Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example"
    (https://www.callcentrehelper.com/erlang-c-formula-example-121281.htm, the source that
    pprevos/hydroinformatics' Customers/CallCentre.R credits): 10 Erlangs on 11 agents wait
    with probability 68.21% (the page's first step, before it adds agents up to 14)."""
    assert round(erlang_c(11, 10.0), 4) == 0.6821


def test_erlang_b_matches_the_published_tables() -> None:
    """Erlang B tables at 1% blocking: 10 lines carry 4.461 Erlangs, 100 lines 84.06; 17
    Erlangs need 27 lines (the erlang-questions list, 2002-06-16, "the answer I got was 27")."""
    assert erlang_b(10, 4.461) == pytest.approx(0.01, abs=2e-5)
    assert erlang_b(100, 84.06) == pytest.approx(0.01, abs=2e-5)
    assert erlang_b(26, 17.0) > 0.01 > erlang_b(27, 17.0)


@pytest.mark.parametrize(
    ("agents", "calls", "aht_s", "target_s"),
    [(1, 40, 30, 10), (3, 100, 40, 15), (5, 200, 35, 20), (8, 400, 30, 5)],
)
def test_erlang_c_agrees_with_the_exact_chain(
    agents: int, calls: float, aht_s: float, target_s: float
) -> None:
    demand = Demand(calls=calls, interval_s=1800, aht_s=aht_s, target_s=target_s)
    figures = staffing(demand, agents)
    exact = exact_figures(
        agents=agents,
        arrival_rate=demand.arrival_rate,
        aht_s=aht_s,
        target_s=target_s,
        patience_s=None,
    )
    assert figures.wait_probability == pytest.approx(exact.wait_probability, abs=1e-6)
    assert figures.service_level == pytest.approx(exact.service_level, abs=1e-6)
    assert figures.asa_s == pytest.approx(exact.asa_s, rel=1e-5)
    assert figures.occupancy == pytest.approx(exact.occupancy, abs=1e-6)


def test_thousands_of_agents_answer_fast_and_sanely() -> None:
    started = time.perf_counter()
    demand = Demand(calls=50_000, interval_s=1800, aht_s=180, target_s=20)  # 5,000 Erlangs
    needed = agents_needed(demand, 0.8)
    figures = [staffing(demand, n) for n in range(5_001, 5_200, 7)]
    assert time.perf_counter() - started < 2.0
    assert 5_000 < needed.agents < 5_100
    levels = [f.service_level for f in figures]
    assert all(0.0 <= level <= 1.0 for level in levels)
    assert levels == sorted(levels)
    waits = [f.asa_s for f in figures]
    assert all(w is not None and w >= 0 for w in waits)
    assert waits == sorted(waits, reverse=True)  # type: ignore[type-var]
    assert staffing(demand, needed.agents - 1).service_level < 0.8 <= needed.service_level


def test_too_few_agents_for_the_load_wait_forever() -> None:
    figures = staffing(HUNDRED_CALLS, 10)
    assert (figures.service_level, figures.wait_probability, figures.asa_s) == (0.0, 1.0, None)


def test_a_demand_beyond_the_bound_is_refused() -> None:
    with pytest.raises(TooManyAgents):
        agents_needed(HUNDRED_CALLS, 0.8, most_agents=12)


@pytest.mark.parametrize(
    ("field", "value"),
    [("calls", 0), ("interval_s", -1), ("aht_s", float("nan")), ("target_s", -1)],
)
def test_a_demand_refuses_nonsense(field: str, value: float) -> None:
    values = {"calls": 100.0, "interval_s": 1800.0, "aht_s": 180.0, "target_s": 20.0}
    values[field] = value
    with pytest.raises(ValueError, match=field):
        Demand(**values)

"""The what-if simulator against Erlang C and Erlang A: several seeded runs of 200,000 calls
each, on one skill, with the issue's example (100 calls per 30 minutes, AHT 180 s, 20 s target;
14 agents, nobody hangs up) and the same calls on 12 agents whose callers hang up after 120 s
on average. The runs' tallies added up must agree with the formulas (app/workforce/erlang.py):
the service level within one percentage point, ASA and the abandonment rate within 5%.

`make bench` runs it (`python -m bench.simulation`, about a minute on two cores); the results go
to bench/results/simulation.json; the exit status is 1 when a figure falls outside its bound.
It also times the staffing plans at the bounds' corners (about 100,000 agents, callers patient
and impatient), the slowest answers `contactcenter staffing` and its endpoint give: each must
come within PLAN_LIMIT_S. docs/staffing.md reports the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.workforce.erlang import Demand, Staffing, staffing
from app.workforce.scenario import Outcome, Scenario, all_skilled
from app.workforce.simulation import simulate
from app.workforce.staffing import plan_staffing

RESULTS = Path(__file__).parent / "results" / "simulation.json"

ERLANG_C = Scenario(
    calls=100,
    interval_seconds=1800,
    aht_seconds=180,
    target_seconds=20,
    agents=all_skilled(14, {"calls": 1.0}),
)
ERLANG_A = replace(ERLANG_C, agents=all_skilled(12, {"calls": 1.0}), patience_seconds=120)

SL_WITHIN = 0.01  # percentage points, as a share
ASA_WITHIN = 0.05  # relative
ABANDON_WITHIN = 0.05  # relative

# The largest load the bounds admit (app/workforce/staffing.py), at a 99% service level, for
# callers who never hang up, who wait a day, and who hang up at once with at most 0.1% lost.
LARGEST = Demand(calls=900_000, interval_s=1800, aht_s=180, target_s=20)
CORNERS = (
    ("Erlang C", LARGEST, None),
    ("Erlang A, patient", replace(LARGEST, patience_s=86_400), None),
    ("Erlang A, impatient", replace(LARGEST, patience_s=1), 0.001),
)
PLAN_LIMIT_S = 1.0


def _demand(scenario: Scenario) -> Demand:
    return Demand(
        calls=scenario.calls,
        interval_s=scenario.interval_seconds,
        aht_s=scenario.aht_seconds,
        target_s=scenario.target_seconds,
        patience_s=scenario.patience_seconds,
    )


def compare(name: str, outcome: Outcome, expected: Staffing) -> dict[str, Any]:
    """The simulated figures beside the formula's, and whether each is within its bound."""
    total = outcome.total
    assert total.service_level is not None
    assert total.asa_s is not None
    assert expected.asa_s is not None
    misses = []
    if abs(total.service_level - expected.service_level) > SL_WITHIN:
        misses.append("service_level")
    if abs(total.asa_s / expected.asa_s - 1) > ASA_WITHIN:
        misses.append("asa_s")
    if expected.abandon_rate is not None:
        assert total.abandon_rate is not None
        if abs(total.abandon_rate / expected.abandon_rate - 1) > ABANDON_WITHIN:
            misses.append("abandon_rate")
    levels = [level for level in outcome.run_service_levels if level is not None]
    asas = [asa for asa in outcome.run_asas if asa is not None]
    return {
        "model": name,
        "agents": outcome.scenario.agent_count,
        "patience_s": outcome.scenario.patience_seconds,
        "runs": len(levels),
        "arrivals": outcome.arrivals,
        "seconds": round(outcome.seconds, 1),
        "simulated": {
            "service_level": total.service_level,
            "asa_s": total.asa_s,
            "abandon_rate": total.abandon_rate,
            "occupancy": outcome.occupancy,
        },
        "formula": {
            "service_level": expected.service_level,
            "asa_s": expected.asa_s,
            "abandon_rate": expected.abandon_rate,
            "occupancy": expected.occupancy,
        },
        "run_spread": {
            "service_level_sd": statistics.stdev(levels) if len(levels) > 1 else None,
            "asa_s_sd": statistics.stdev(asas) if len(asas) > 1 else None,
        },
        "outside_bounds": misses,
    }


def _line(result: dict[str, Any]) -> str:
    sim, formula = result["simulated"], result["formula"]
    abandon = (
        ""
        if formula["abandon_rate"] is None
        else f", abandon {100 * sim['abandon_rate']:.2f}% vs {100 * formula['abandon_rate']:.2f}%"
    )
    verdict = "agrees" if not result["outside_bounds"] else f"OUTSIDE {result['outside_bounds']}"
    return (
        f"{result['model']}: {result['agents']} agents, {result['runs']} runs, "
        f"{result['arrivals']:,} calls in {result['seconds']} s: "
        f"SL {100 * sim['service_level']:.2f}% vs {100 * formula['service_level']:.2f}%, "
        f"ASA {sim['asa_s']:.2f} s vs {formula['asa_s']:.2f} s{abandon}, "
        f"occupancy {100 * sim['occupancy']:.1f}% vs {100 * formula['occupancy']:.1f}%: {verdict}"
    )


def time_largest_plans() -> list[dict[str, Any]]:
    """Each corner's plan, with the agents it needs and the seconds it took."""
    timed = []
    for name, demand, max_abandon in CORNERS:
        started = time.perf_counter()
        plan = plan_staffing(demand, 0.99, max_abandon=max_abandon)
        seconds = time.perf_counter() - started
        timed.append(
            {
                "plan": name,
                "agents": plan.needed.agents,
                "seconds": round(seconds, 3),
                "limit_s": PLAN_LIMIT_S,
                "met": seconds <= PLAN_LIMIT_S,
            }
        )
        verdict = "within" if timed[-1]["met"] else "NOT within"
        print(
            f"staffing plan, {name}: {plan.needed.agents:,} agents in {seconds:.3f} s "
            f"({verdict} {PLAN_LIMIT_S:g} s)",
            flush=True,
        )
    return timed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulation", description=__doc__)
    parser.add_argument("--arrivals", type=int, default=200_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=6, help="seeded runs per model")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = []
    for name, scenario in (("Erlang C", ERLANG_C), ("Erlang A", ERLANG_A)):
        outcome = simulate(
            scenario, arrivals=args.arrivals, runs=args.runs, seed=args.seed, workers=args.workers
        )
        results.append(compare(name, outcome, staffing(_demand(scenario), scenario.agent_count)))
        print(_line(results[-1]), flush=True)
    plans = time_largest_plans()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"simulator": results, "largest_plans": plans}, indent=2))
    missed = any(result["outside_bounds"] for result in results)
    return 1 if missed or not all(plan["met"] for plan in plans) else 0


if __name__ == "__main__":
    sys.exit(main())

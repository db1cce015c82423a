"""`contactcenter simulate`: the options, their checks and the output of a what-if run
(app/workforce/simulation.py). app/cli.py registers the command and calls `run`.

A mistake in the options ends in one line naming the option on stderr and exit 2, as argparse's
own refusals do.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from app.routing.policy import TIERS
from app.workforce.scenario import (
    DEFAULT_AGING_FACTOR,
    DEFAULT_TIER_WEIGHTS,
    ONE_SKILL,
    AgentGroup,
    Outcome,
    RunFigures,
    Scenario,
    all_skilled,
)
from app.workforce.simulation import simulate

MOST_ARRIVALS = 10_000_000  # a run's calls; 200,000 take about ten seconds
MOST_RUNS = 100
MOST_AGENTS = 100_000


class OptionMistake(ValueError):
    """An option's value that cannot run: named, with why."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"argument {option}: {problem}")


def _number(low: float, *, above: bool, whole: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not math.isfinite(value) or value < low or (above and value == low):
            bound = "above" if above else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {low:g}, not {text}")
        return value

    return parse


def _shares(text: str, *, known: tuple[str, ...] | None = None) -> dict[str, float]:
    """`name=number,...` into a mapping; every number finite and not below 0."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, equals, value = part.strip().partition("=")
        name = name.strip()
        if not equals or not name:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not name=number")
        if known is not None and name not in known:
            raise argparse.ArgumentTypeError(f"{name!r} is not a tier ({', '.join(known)})")
        if name in shares:
            raise argparse.ArgumentTypeError(f"{name!r} is given twice")
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value.strip()!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise argparse.ArgumentTypeError(f"{name}'s {value.strip()} is below 0")
        shares[name] = number
    return shares


def _mix(text: str) -> dict[str, float]:
    shares = _shares(text)
    if sum(shares.values()) <= 0:
        raise argparse.ArgumentTypeError("the shares add up to nothing")
    return shares


def _tier_mix(text: str) -> dict[str, float]:
    shares = _shares(text, known=TIERS)
    if sum(shares.values()) <= 0:
        raise argparse.ArgumentTypeError("the shares add up to nothing")
    return shares


def _tier_weights(text: str) -> dict[str, float]:
    return _shares(text, known=TIERS)


def _agents(text: str) -> int | tuple[tuple[tuple[str, ...], int], ...]:
    """A number of agents who hold every skill, or groups `skill+skill=count,...`."""
    if "=" not in text:
        count = _number(1, above=False, whole=True)(text)
        if count > MOST_AGENTS:
            raise argparse.ArgumentTypeError(f"at most {MOST_AGENTS} agents")
        return int(count)
    groups = []
    for name, count in _shares(text).items():
        if count != int(count) or count < 1:
            raise argparse.ArgumentTypeError(f"{name}'s {count:g} is not a whole number of agents")
        groups.append((tuple(skill.strip() for skill in name.split("+")), int(count)))
    return tuple(groups)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `contactcenter simulate` (docs/staffing.md)."""
    positive = _number(0, above=True)
    parser.add_argument("--calls", type=positive, required=True, help="calls per interval")
    parser.add_argument(
        "--interval", type=positive, default=1800.0, help="interval, seconds (1800)"
    )
    parser.add_argument("--aht", type=positive, required=True, help="average handle time, s")
    parser.add_argument(
        "--target", type=_number(0, above=False, whole=True), default=20, help="SL target, s (20)"
    )
    parser.add_argument(
        "--agents",
        type=_agents,
        required=True,
        help="agents on the phones: a number (each holds every skill), or groups by the skills "
        "they hold, e.g. billing=6,billing+tech=4",
    )
    parser.add_argument(
        "--patience", type=positive, help="callers' mean patience, s (none: nobody hangs up)"
    )
    parser.add_argument(
        "--skills",
        type=_mix,
        help="the calls' share by the skill they need, e.g. billing=0.7,tech=0.3 (one skill)",
    )
    parser.add_argument(
        "--tiers",
        type=_tier_mix,
        help="the calls' share by tier, e.g. platinum=0.1,gold=0.2,iron=0.4,lead=0.3 (all iron)",
    )
    parser.add_argument(
        "--tier-weights",
        type=_tier_weights,
        help="priority points per tier; tiers left out keep the queue default "
        "(platinum=30,gold=20,iron=10,lead=0)",
    )
    parser.add_argument(
        "--aging",
        type=_number(0, above=False),
        default=DEFAULT_AGING_FACTOR,
        help=f"priority points per second waited ({DEFAULT_AGING_FACTOR:g})",
    )
    parser.add_argument(
        "--arrivals",
        type=_number(1, above=False, whole=True),
        default=100_000,
        help="calls per run (100000)",
    )
    parser.add_argument(
        "--runs", type=_number(1, above=False, whole=True), default=1, help="runs (1)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the first run (1)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def scenario_of(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe; OptionMistake for one that cannot run."""
    if args.arrivals > MOST_ARRIVALS:
        raise OptionMistake("--arrivals", f"at most {MOST_ARRIVALS:,} calls per run")
    if args.runs > MOST_RUNS:
        raise OptionMistake("--runs", f"at most {MOST_RUNS} runs")
    skills = args.skills or {ONE_SKILL: 1.0}
    if isinstance(args.agents, int):
        agents = all_skilled(args.agents, skills)
    else:
        agents = _groups(args.agents, skills)
    scenario = Scenario(
        calls=args.calls,
        interval_seconds=args.interval,
        aht_seconds=args.aht,
        target_seconds=args.target,
        agents=agents,
        patience_seconds=args.patience,
        skills=skills,
        tiers=args.tiers or {"iron": 1.0},
        tier_weights={**DEFAULT_TIER_WEIGHTS, **(args.tier_weights or {})},
        aging_factor=args.aging,
    )
    if scenario.patience_seconds is None and scenario.agent_count <= scenario.offered_load:
        raise OptionMistake(
            "--agents",
            f"{scenario.agent_count} agents cannot keep up with {scenario.offered_load:.1f} "
            "erlangs of calls when nobody hangs up (the line would grow without end): give "
            "more agents, or --patience",
        )
    return scenario


def _groups(
    given: tuple[tuple[tuple[str, ...], int], ...], skills: Mapping[str, float]
) -> tuple[AgentGroup, ...]:
    for held, _ in given:
        unknown = [skill for skill in held if skill not in skills]
        if unknown:
            raise OptionMistake(
                "--agents", f"{unknown[0]!r} is not among the calls' skills ({', '.join(skills)})"
            )
    return tuple(AgentGroup(count, dict.fromkeys(held, 1)) for held, count in given)


def run(args: argparse.Namespace) -> int:
    """Runs the scenario and prints its figures; exit 2 for options that cannot run."""
    try:
        scenario = scenario_of(args)
    except OptionMistake as mistake:
        print(f"contactcenter simulate: error: {mistake}", file=sys.stderr)
        return 2
    outcome = simulate(scenario, arrivals=args.arrivals, runs=args.runs, seed=args.seed)
    if args.json:
        print(json.dumps(as_json(outcome, args.seed), indent=2))
    else:
        print(as_table(outcome, args.seed))
    return 0


def _figures(figures: RunFigures) -> dict[str, Any]:
    return {
        "offered": figures.offered,
        "answered": figures.answered,
        "abandoned": figures.abandoned,
        "service_level": figures.service_level,
        "asa_s": figures.asa_s,
        "abandon_rate": figures.abandon_rate,
    }


def as_json(outcome: Outcome, seed: int) -> dict[str, Any]:
    scenario = outcome.scenario
    return {
        "agents": scenario.agent_count,
        **_figures(outcome.total),
        "occupancy": outcome.occupancy,
        "by_tier": {tier: _figures(figures) for tier, figures in outcome.by_tier.items()},
        "by_skill": {skill: _figures(figures) for skill, figures in outcome.by_skill.items()},
        "tier_weights": dict(scenario.tier_weights),
        "runs": len(outcome.run_service_levels),
        "arrivals": outcome.arrivals,
        "seed": seed,
        "seconds": round(outcome.seconds, 3),
    }


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _row(name: str, figures: RunFigures) -> str:
    asa = "-" if figures.asa_s is None else f"{figures.asa_s:.1f}"
    return (
        f"{name:<12}{figures.offered:>10}{figures.answered:>10}{figures.abandoned:>10}"
        f"{_share(figures.service_level):>8}{asa:>9}{_share(figures.abandon_rate):>9}"
    )


def as_table(outcome: Outcome, seed: int) -> str:
    scenario = outcome.scenario
    patience = "none" if scenario.patience_seconds is None else f"{scenario.patience_seconds:g} s"
    weights = ", ".join(f"{tier} {weight:g}" for tier, weight in scenario.tier_weights.items())
    runs = len(outcome.run_service_levels)
    lines = [
        f"{scenario.calls:g} calls per {scenario.interval_seconds:g} s, AHT "
        f"{scenario.aht_seconds:g} s ({scenario.offered_load:.2f} erlangs), "
        f"{scenario.agent_count} agents, target {scenario.target_seconds} s, patience {patience}",
        f"tier weights {weights}; aging {scenario.aging_factor:g} per second",
        f"{runs} run(s) x {outcome.arrivals // runs:,} calls from seed {seed}, "
        f"{outcome.seconds:.1f} s",
        "",
        f"{'':<12}{'offered':>10}{'answered':>10}{'abandoned':>10}{'SL':>8}{'ASA s':>9}"
        f"{'abandon':>9}",
        _row("all", outcome.total),
    ]
    if len(outcome.by_tier) > 1:
        lines += [_row(tier, figures) for tier, figures in outcome.by_tier.items()]
    if len(outcome.by_skill) > 1:
        lines += [_row(skill, figures) for skill, figures in outcome.by_skill.items()]
    lines += ["", f"occupancy {_share(outcome.occupancy)}"]
    return "\n".join(lines)

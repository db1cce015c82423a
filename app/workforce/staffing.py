"""A staffing plan as `contactcenter staffing` and `POST /v1/workforce/staffing` give it: the
fewest agents that meet the goals, with the figures of a few counts around it, as a table or as
JSON (the same keys on both). The model and its figures are erlang.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.workforce.erlang import Demand, Staffing, agents_needed, staffing

# The limits both doors take: wide enough for any one queue's plan, narrow enough that every
# answer comes within a second (agents_needed searches up to erlang.MOST_AGENTS).
MOST_CALLS = 1_000_000  # per interval
SHORTEST_INTERVAL_S = 60.0
LONGEST_INTERVAL_S = 86_400.0  # a day
LONGEST_AHT_S = 86_400.0
LONGEST_TARGET_S = 86_400.0
LONGEST_PATIENCE_S = 86_400.0

# Rows shown below and above the agents needed.
ROWS_BELOW = 3
ROWS_ABOVE = 2


@dataclass(frozen=True, slots=True)
class StaffingPlan:
    """The agents a demand needs (`needed`) and the counts around it (`around`, ascending,
    `needed` among them)."""

    demand: Demand
    service_level_goal: float
    max_abandon: float | None
    needed: Staffing
    around: list[Staffing]

    @property
    def model(self) -> str:
        return "erlang_c" if self.demand.patience_s is None else "erlang_a"


def plan_staffing(
    demand: Demand, service_level: float, *, max_abandon: float | None = None
) -> StaffingPlan:
    """The plan; raises erlang.TooManyAgents when no count up to the bound will do."""
    needed = agents_needed(demand, service_level, max_abandon=max_abandon)
    counts = range(max(1, needed.agents - ROWS_BELOW), needed.agents + ROWS_ABOVE + 1)
    around = [needed if n == needed.agents else staffing(demand, n) for n in counts]
    return StaffingPlan(demand, service_level, max_abandon, needed, around)


def figures_json(figures: Staffing) -> dict[str, Any]:
    """One count's figures: shares 0-1, seconds; `asa_s` null when the line grows without end,
    `abandon_rate` null under Erlang C (which does not model hanging up)."""
    return {
        "agents": figures.agents,
        "service_level": figures.service_level,
        "asa_s": figures.asa_s,
        "occupancy": figures.occupancy,
        "abandon_rate": figures.abandon_rate,
        "wait_probability": figures.wait_probability,
    }


def plan_json(plan: StaffingPlan) -> dict[str, Any]:
    """The plan as JSON: the needed count's figures at the top level, with the model, the
    offered load in Erlangs and the counts around it."""
    return {
        **figures_json(plan.needed),
        "model": plan.model,
        "load_erlangs": plan.demand.load,
        "around": [figures_json(figures) for figures in plan.around],
    }


def plan_table(plan: StaffingPlan) -> str:
    """The plan for a person: what was asked, then one line per count, the needed one marked."""
    demand = plan.demand
    patience = (
        "nobody hangs up (Erlang C)"
        if demand.patience_s is None
        else f"mean patience {demand.patience_s:g} s (Erlang A)"
    )
    goal = f"{plan.service_level_goal:.1%} answered within {demand.target_s:g} s"
    if plan.max_abandon is not None:
        goal += f", at most {plan.max_abandon:.1%} abandoning"
    lines = [
        f"{demand.calls:g} calls in {demand.interval_s:g} s, AHT {demand.aht_s:g} s: "
        f"{demand.load:.2f} Erlangs offered; {patience}",
        f"Goal: {goal}",
        "",
        f"{'agents':>7}  {'service level':>13}  {'ASA (s)':>9}  {'occupancy':>9}  "
        f"{'abandoned':>9}  {'wait':>6}",
    ]
    for figures in plan.around:
        asa = "never" if figures.asa_s is None else f"{figures.asa_s:.1f}"
        abandoned = "-" if figures.abandon_rate is None else f"{figures.abandon_rate:.1%}"
        mark = "  <- needed" if figures.agents == plan.needed.agents else ""
        lines.append(
            f"{figures.agents:>7}  {figures.service_level:>13.1%}  {asa:>9}  "
            f"{figures.occupancy:>9.1%}  {abandoned:>9}  {figures.wait_probability:>6.1%}{mark}"
        )
    return "\n".join(lines)

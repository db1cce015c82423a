"""The complaint workflow in five steps (DESIGN.md section 5, docs/complaints.md), as a pure state
machine: the states, the actions, which action may be taken in which state by whom, and the
records each needs. Nothing here reads a clock, a database or a socket; the service around it
(stores, audits, notifies) asks `decide` and carries out what it answers.

    intake (1) ─complete_intake─▶ accept (2) ─confirm─▶ investigate (3) ─send_reply─▶ reply (4)
                                     │                      ▲                          │
                                   reject                   └─────customer_rejects─────┤
                                     ▼                                                 │
                                 rejected     closed ◀─close─ improve (5) ◀─customer_accepts
                                                │                  ▲       or deemed_accepted
                                                └─reopen─▶ investigate (3)

`assign` gives an open complaint its owner without moving it. A complaint reopened goes back
to step 3; one the customer does not accept at step 4 goes back to step 3 too. No other
action goes back, and none skips a step: every path from intake to closed passes 1, 2, 3, 4, 5
in order (tests/tickets/test_workflow.py, with Hypothesis).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Step(enum.StrEnum):
    intake = "intake"  # 1: the complaint as it came in
    accept = "accept"  # 2: acknowledged, classified, confirmed valid (or rejected)
    investigate = "investigate"  # 3: an owner assesses and investigates
    reply = "reply"  # 4: the decision went to the customer, who accepts it or not
    improve = "improve"  # 5: root cause and corrective action, shared internally
    closed = "closed"
    rejected = "rejected"

    @property
    def number(self) -> int | None:
        """The step's number (1-5), None for an ending."""
        return STEP_NUMBERS.get(self)


STEP_NUMBERS: Mapping[Step, int] = {
    Step.intake: 1,
    Step.accept: 2,
    Step.investigate: 3,
    Step.reply: 4,
    Step.improve: 5,
}
OPEN = frozenset(STEP_NUMBERS)
ENDINGS = frozenset({Step.closed, Step.rejected})


class Actor(enum.StrEnum):
    """Who takes an action: an agent, a supervisor (or admin: the same rights here), the
    customer (through their signed link), or the system (a deadline)."""

    agent = "agent"
    supervisor = "supervisor"
    customer = "customer"
    system = "system"


class Action(enum.StrEnum):
    complete_intake = "complete_intake"
    confirm = "confirm"
    reject = "reject"
    assign = "assign"
    send_reply = "send_reply"
    customer_accepts = "customer_accepts"
    customer_rejects = "customer_rejects"
    deemed_accepted = "deemed_accepted"
    close = "close"
    reopen = "reopen"


@dataclass(frozen=True, slots=True)
class Rule:
    """An action: the states it is taken in, where it leads (None: it stays), who may take it,
    and the records it needs (each a non-empty value)."""

    from_steps: frozenset[Step]
    to: Step | None
    who: frozenset[Actor]
    needs: tuple[str, ...]
    # An agent may take it only on a complaint it owns (supervisors on any).
    owner_only: bool = True


AGENTS = frozenset({Actor.agent, Actor.supervisor})
SUPERVISORS = frozenset({Actor.supervisor})

# The one table of who may do what (docs/complaints.md has it too).
RULES: Mapping[Action, Rule] = {
    Action.complete_intake: Rule(
        frozenset({Step.intake}),
        Step.accept,
        AGENTS,
        ("channel", "original_message", "customer", "remedy_sought"),
    ),
    Action.confirm: Rule(
        frozenset({Step.accept}),
        Step.investigate,
        AGENTS,
        ("acknowledged_at", "acknowledgement", "category", "severity"),
    ),
    Action.reject: Rule(frozenset({Step.accept}), Step.rejected, SUPERVISORS, ("reason",)),
    Action.assign: Rule(OPEN, None, SUPERVISORS, ("owner",)),
    Action.send_reply: Rule(
        frozenset({Step.investigate}),
        Step.reply,
        AGENTS,
        ("assessment", "owner", "notes", "reply", "actions_taken"),
    ),
    Action.customer_accepts: Rule(
        frozenset({Step.reply}),
        Step.improve,
        frozenset({Actor.customer, Actor.agent, Actor.supervisor}),
        ("answer", "satisfaction"),
    ),
    Action.customer_rejects: Rule(
        frozenset({Step.reply}),
        Step.investigate,
        frozenset({Actor.customer, Actor.agent, Actor.supervisor}),
        ("answer",),
    ),
    Action.deemed_accepted: Rule(
        frozenset({Step.reply}), Step.improve, frozenset({Actor.system}), ("deemed_after_days",)
    ),
    Action.close: Rule(
        frozenset({Step.improve}),
        Step.closed,
        SUPERVISORS,
        ("root_cause", "corrective_action", "action_owner"),
    ),
    Action.reopen: Rule(frozenset({Step.closed}), Step.investigate, SUPERVISORS, ("reason",)),
}

SATISFACTION = range(1, 6)


@dataclass(frozen=True, slots=True)
class Attempt:
    """An action asked of a complaint in `step`, by `actor`, with its records. `owns`: the
    actor is the complaint's owner; `reopen_window_open`: a closed complaint may still be
    reopened (the service knows the clock and the policy's window)."""

    step: Step
    action: Action
    actor: Actor
    records: Mapping[str, object]
    owns: bool = False
    reopen_window_open: bool = False


class Why(enum.StrEnum):
    """What a refusal is about, so the service answers it with the right status."""

    step = "step"  # not taken at this step (an illegal jump)
    actor = "actor"  # not for this kind of actor
    owner = "owner"  # an agent acting on a complaint it does not own
    window = "window"  # reopened too late
    records = "records"  # a record missing or out of range


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action is refused, for the error's detail; `missing` names the records wanted."""

    reason: str
    why: Why
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Move:
    """The action is allowed: the complaint goes to `to` (the same step for `assign`)."""

    to: Step


def decide(attempt: Attempt) -> Move | Refusal:
    """Whether the action may be taken now, and where it leads; else why not."""
    rule = RULES[attempt.action]
    action = attempt.action.value
    if attempt.step not in rule.from_steps:
        allowed = ", ".join(sorted(s.value for s in rule.from_steps))
        return Refusal(f"{action} is taken at {allowed}, not at {attempt.step.value}", Why.step)
    if attempt.actor not in rule.who:
        who = ", ".join(sorted(a.value for a in rule.who))
        return Refusal(f"{action} is for {who}, not for a {attempt.actor.value}", Why.actor)
    if attempt.actor is Actor.agent and rule.owner_only and not attempt.owns:
        return Refusal(f"an agent may {action} only a complaint it owns", Why.owner)
    if attempt.action is Action.reopen and not attempt.reopen_window_open:
        return Refusal(
            "the complaint was closed too long ago to reopen: raise a new one", Why.window
        )
    missing = tuple(name for name in rule.needs if _empty(attempt.records.get(name)))
    if missing:
        return Refusal(f"{action} needs {', '.join(missing)}", Why.records, missing)
    if "satisfaction" in rule.needs and attempt.records["satisfaction"] not in SATISFACTION:
        return Refusal("satisfaction is a score from 1 to 5", Why.records, ("satisfaction",))
    return Move(attempt.step if rule.to is None else rule.to)


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())

"""Which state an agent may move to, from which, and for what cause. Pure.

    available ◀──▶ busy ◀──▶ wrap_up ◀──▶ available   what it holds changed (in routing only)
    any state ──▶ available, away or offline          it asks (or a supervisor asks for it)
    in routing (or away) ──▶ away                      it missed an offer; in routing: silence
    any state ──▶ offline                              its desk closed; its user deactivated

An agent in routing (available, busy, wrap_up) follows what it holds: wrap_up while a call it
took is in wrap-up, busy while it holds any other work or a pending offer, available when free.
Away and offline leave routing; what it holds then changes nothing, and only asking brings it
back, through available. Staying in a state with a new reason is a move too (its event says
so), allowed wherever the state may be entered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.agents.models import AgentState
from app.core.channels import Channel
from app.core.errors import IllegalTransition

A = AgentState

EVERY_STATE = frozenset(A)
# The states routing offers work in; the others leave routing, with their pending offers.
ROUTABLE = frozenset({A.available, A.busy, A.wrap_up})
# What an agent (or its supervisor) may ask for; busy and wrap_up follow what it holds.
ASKABLE = frozenset({A.available, A.away, A.offline})
# Work whose wrap-up keeps the agent in wrap_up; a chat or email in wrap-up only keeps it busy.
CALLS = frozenset({Channel.voice, Channel.callback})
# Between these two only the load differs, which routing counts from offers and work itself.
SAME_TO_ROUTING = frozenset({A.available, A.busy})


class Cause(StrEnum):
    """Who or what moves an agent."""

    request = "request"  # the agent, or a supervisor for it: the desk's set_state or REST
    holdings = "holdings"  # what it holds changed: accepted, completed, wrapped up, transferred
    missed_offer = "missed_offer"  # it missed an offer (timed out, or its phone never answered)
    silence = "silence"  # its desk sent no heartbeat for too long
    deactivation = "deactivation"  # its user was deactivated
    disconnect = "disconnect"  # its desk socket closed


@dataclass(frozen=True, slots=True)
class Moves:
    """A cause moves an agent from any of `sources` to any of `targets`."""

    sources: frozenset[AgentState]
    targets: frozenset[AgentState]
    said: str  # the cause in a sentence: "cannot go busy {said}"


MOVES: dict[Cause, Moves] = {
    Cause.request: Moves(EVERY_STATE, ASKABLE, "on request"),
    Cause.holdings: Moves(ROUTABLE, ROUTABLE, "by what it holds"),
    # An agent sent away by one missed offer may miss another it still held.
    Cause.missed_offer: Moves(ROUTABLE | {A.away}, frozenset({A.away}), "for a missed offer"),
    Cause.silence: Moves(ROUTABLE, frozenset({A.away}), "for silence"),
    Cause.deactivation: Moves(
        EVERY_STATE - {A.offline}, frozenset({A.offline}), "when deactivated"
    ),
    Cause.disconnect: Moves(EVERY_STATE, frozenset({A.offline}), "when its desk disconnects"),
}

# Every move some cause makes, by state left: the table at a glance.
ALLOWED: dict[AgentState, frozenset[AgentState]] = {
    source: frozenset().union(*(m.targets for m in MOVES.values() if source in m.sources))
    for source in A
}


def can_move(source: AgentState, target: AgentState, *, by: Cause) -> bool:
    moves = MOVES[by]
    return source in moves.sources and target in moves.targets


def ensure_can_move(source: AgentState, target: AgentState, *, by: Cause) -> None:
    if not can_move(source, target, by=by):
        said = MOVES[by].said
        raise IllegalTransition(
            f"an agent cannot go {target.value} {said}: it is {source.value}; from there it may"
            f" go {_where(targets_from(source, by=by))} {said}"
            f" ({_where(ALLOWED[source])} by any cause)"
        )


def targets_from(source: AgentState, *, by: Cause) -> frozenset[AgentState]:
    moves = MOVES[by]
    return moves.targets if source in moves.sources else frozenset()


def _where(states: frozenset[AgentState]) -> str:
    """ "to available, away or offline", or "nowhere"."""
    if not states:
        return "nowhere"
    *others, last = sorted(state.value for state in states)
    return f"to {', '.join(others)} or {last}" if others else f"to {last}"


def state_for_holdings(
    current: AgentState, *, holds_work: bool, wrapping_up_a_call: bool
) -> AgentState:
    """The state what an agent holds calls for: wrap_up while a call it took is in wrap-up,
    busy while it holds any work (assigned or in wrap-up) or a pending offer, available when
    free. Away and offline stay as they are (SQL: `routing_refresh_agent`, with its callers'
    guard)."""
    if current not in ROUTABLE:
        return current
    if wrapping_up_a_call:
        return A.wrap_up
    return A.busy if holds_work else A.available


def state_after_accept(current: AgentState) -> AgentState:
    """Accepting an offer: an available agent becomes busy; busy and wrap-up already hold
    work, and away and offline stay out of routing (SQL: `routing_accept`)."""
    return A.busy if current is A.available else current


def becomes_idle(source: AgentState, target: AgentState) -> bool:
    """Whether the move starts the agent's idle time (routing's longest-idle tie-breaker):
    entering available, not staying in it."""
    return target is A.available and source is not A.available


def matters_to_routing(source: AgentState, target: AgentState) -> bool:
    """Whether the move changes what routing counts on, so that an offer written on the row as
    it was read must not land (`agents.routing_version`, the trigger in
    app/routing/agent_version.sql). Between available and busy only the load differs, and
    routing counts that itself."""
    return source is not target and not {source, target} <= SAME_TO_ROUTING


def state_payload(
    source: AgentState, target: AgentState, reason: str | None, *, forced: bool = False
) -> dict[str, Any]:
    """The payload of an `agent.state_changed` event (also built in `routing_complete`); a
    supervisor's move of the agent says so (`forced`)."""
    payload: dict[str, Any] = {"from": source.value, "to": target.value, "reason": reason}
    if forced:
        payload["forced"] = True
    return payload

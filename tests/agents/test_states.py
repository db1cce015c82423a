"""Which moves an agent may make, for which cause, and the states routing's rules call for:
every move of the table, the errors' words, and Hypothesis over every holding.

tests/agents/test_state_rules_in_sql.py holds the SQL that carries these rules out to them.
"""

from __future__ import annotations

import itertools
import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.agents.models import AgentState
from app.agents.schemas import AgentStateChange
from app.agents.states import (
    ALLOWED,
    ASKABLE,
    MOVES,
    ROUTABLE,
    Cause,
    becomes_idle,
    can_move,
    ensure_can_move,
    matters_to_routing,
    state_after_accept,
    state_for_holdings,
    state_payload,
    targets_from,
)
from app.core.errors import IllegalTransition
from app.desk.protocol import SetState

A = AgentState
IN_ROUTING = (A.available, A.busy, A.wrap_up)

# Written out by hand, move by move, from what routing does today (app/routing/service.py and
# the SQL of migrations 0006 and 0008).
EXPECTED: dict[Cause, set[tuple[AgentState, AgentState]]] = {
    # set_state from the desk or REST: any state to what may be asked for.
    Cause.request: {(s, t) for s in A for t in (A.available, A.away, A.offline)},
    # refresh_agent_state and routing_accept: only in routing, only within it.
    Cause.holdings: {(s, t) for s in IN_ROUTING for t in IN_ROUTING},
    # time_out_offers: the agent that held the offer, in routing or away for an earlier one.
    Cause.missed_offer: {(s, A.away) for s in (*IN_ROUTING, A.away)},
    # sweep_silent_agents reads routable agents only.
    Cause.silence: {(s, A.away) for s in IN_ROUTING},
    # sweep_deactivated_agents reads agents not offline.
    Cause.deactivation: {(s, A.offline) for s in A if s is not A.offline},
    # The desk's _leave, whatever the state.
    Cause.disconnect: {(s, A.offline) for s in A},
}


@pytest.mark.parametrize(("by", "source", "target"), list(itertools.product(Cause, A, A)), ids=str)
def test_exactly_the_designed_moves_are_allowed(
    by: Cause, source: AgentState, target: AgentState
) -> None:
    assert can_move(source, target, by=by) == ((source, target) in EXPECTED[by])


def test_every_cause_is_in_the_table() -> None:
    assert set(MOVES) == set(Cause)


def test_out_of_routing_an_agent_comes_back_only_through_available() -> None:
    """Away and offline never go straight to busy or wrap-up, by any cause."""
    for source in (A.away, A.offline):
        assert ALLOWED[source] == {A.available, A.away, A.offline}
    for source in IN_ROUTING:
        assert ALLOWED[source] == set(A)


def test_from_every_state_an_agent_can_get_back_to_work_and_can_leave() -> None:
    for start in A:
        reached, frontier = {start}, [start]
        while frontier:
            for following in ALLOWED[frontier.pop()]:
                if following not in reached:
                    reached.add(following)
                    frontier.append(following)
        assert reached == set(A)


def test_what_may_be_asked_for_is_what_the_rest_body_and_the_desk_accept() -> None:
    """The REST body and the desk's `set_state` refuse busy and wrap_up themselves (422), by
    their Literal types; those must list the table's askable states, no more and no fewer."""
    for model in (AgentStateChange, SetState):
        annotation = model.model_fields["state"].annotation
        assert set(typing.get_args(annotation)) == ASKABLE
    assert MOVES[Cause.request].targets == ASKABLE


def test_an_illegal_move_says_where_the_agent_may_go() -> None:
    with pytest.raises(IllegalTransition) as refused:
        ensure_can_move(A.away, A.busy, by=Cause.holdings)
    assert refused.value.detail == (
        "an agent cannot go busy by what it holds: it is away; from there it may go nowhere by"
        " what it holds (to available, away or offline by any cause)"
    )
    with pytest.raises(IllegalTransition) as refused:
        ensure_can_move(A.busy, A.wrap_up, by=Cause.request)
    assert refused.value.detail == (
        "an agent cannot go wrap_up on request: it is busy; from there it may go to available,"
        " away or offline on request (to available, away, busy, offline or wrap_up by any cause)"
    )
    with pytest.raises(IllegalTransition) as refused:
        ensure_can_move(A.offline, A.offline, by=Cause.deactivation)
    assert "from there it may go nowhere when deactivated" in refused.value.detail
    with pytest.raises(IllegalTransition) as refused:
        ensure_can_move(A.available, A.available, by=Cause.silence)
    assert "from there it may go to away for silence" in refused.value.detail


@pytest.mark.parametrize(
    # Sorted: EXPECTED holds sets, and every run (and every pytest-xdist worker) must collect
    # the same tests in the same order.
    ("by", "source", "target"),
    [(b, s, t) for b in Cause for s, t in sorted(EXPECTED[b])],
)
def test_an_allowed_move_passes(by: Cause, source: AgentState, target: AgentState) -> None:
    ensure_can_move(source, target, by=by)
    assert target in targets_from(source, by=by)


# --- what the agent holds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "holds_work", "wrapping_up_a_call", "wanted"),
    [
        (A.available, False, False, A.available),
        (A.available, True, False, A.busy),
        (A.available, True, True, A.wrap_up),
        (A.busy, False, False, A.available),
        (A.busy, True, False, A.busy),
        (A.busy, True, True, A.wrap_up),
        (A.wrap_up, False, False, A.available),
        (A.wrap_up, True, False, A.busy),
        (A.wrap_up, True, True, A.wrap_up),
        (A.away, True, True, A.away),
        (A.away, False, False, A.away),
        (A.offline, True, False, A.offline),
        (A.offline, False, False, A.offline),
    ],
)
def test_the_state_holdings_call_for(
    current: AgentState, holds_work: bool, wrapping_up_a_call: bool, wanted: AgentState
) -> None:
    state = state_for_holdings(
        current, holds_work=holds_work, wrapping_up_a_call=wrapping_up_a_call
    )
    assert state is wanted


states = st.sampled_from(A)


@given(states, st.booleans(), st.booleans())
def test_away_and_offline_never_change_by_holdings(
    current: AgentState, holds_work: bool, wrapping_up_a_call: bool
) -> None:
    wanted = state_for_holdings(
        current, holds_work=holds_work, wrapping_up_a_call=wrapping_up_a_call
    )
    assert (wanted is current) or current in ROUTABLE


@given(states, st.booleans())
def test_holdings_never_make_an_agent_available_while_it_holds_work(
    current: AgentState, wrapping_up_a_call: bool
) -> None:
    wanted = state_for_holdings(current, holds_work=True, wrapping_up_a_call=wrapping_up_a_call)
    assert wanted is not A.available


@given(states, st.booleans(), st.booleans())
def test_an_agent_in_routing_is_available_exactly_when_it_holds_nothing(
    current: AgentState, holds_work: bool, wrapping_up_a_call: bool
) -> None:
    wanted = state_for_holdings(
        current, holds_work=holds_work or wrapping_up_a_call, wrapping_up_a_call=wrapping_up_a_call
    )
    if current in ROUTABLE:
        assert (wanted is A.available) == (not holds_work and not wrapping_up_a_call)
        assert (wanted is A.wrap_up) == wrapping_up_a_call


@given(states, st.booleans(), st.booleans())
def test_what_holdings_call_for_is_a_move_of_the_table(
    current: AgentState, holds_work: bool, wrapping_up_a_call: bool
) -> None:
    wanted = state_for_holdings(
        current, holds_work=holds_work, wrapping_up_a_call=wrapping_up_a_call
    )
    assert wanted is current or can_move(current, wanted, by=Cause.holdings)


# --- accepting an offer ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "after"),
    [
        (A.available, A.busy),
        (A.busy, A.busy),
        (A.wrap_up, A.wrap_up),
        (A.away, A.away),
        (A.offline, A.offline),
    ],
)
def test_accepting_makes_only_an_available_agent_busy(
    current: AgentState, after: AgentState
) -> None:
    assert state_after_accept(current) is after


@given(states)
def test_accepting_is_what_holding_the_work_calls_for(current: AgentState) -> None:
    """At rest, wrap_up means a call in wrap-up is held; accepting adds work to what is held."""
    held = state_for_holdings(current, holds_work=True, wrapping_up_a_call=current is A.wrap_up)
    assert state_after_accept(current) is held


# --- what routing counts on -----------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), list(itertools.product(A, A)), ids=str)
def test_every_move_but_between_available_and_busy_matters_to_routing(
    source: AgentState, target: AgentState
) -> None:
    unnoticed = source is target or {source, target} == {A.available, A.busy}
    assert matters_to_routing(source, target) is not unnoticed
    assert matters_to_routing(source, target) is matters_to_routing(target, source)


@given(states, st.sampled_from((A.away, A.offline)))
def test_leaving_routing_always_matters_to_routing(source: AgentState, target: AgentState) -> None:
    assert matters_to_routing(source, target) or source is target


@pytest.mark.parametrize(("source", "target"), list(itertools.product(A, A)), ids=str)
def test_idle_time_starts_on_entering_available(source: AgentState, target: AgentState) -> None:
    starts = target is A.available and source is not A.available
    assert becomes_idle(source, target) is starts


def test_the_state_changed_payload_says_from_to_and_why() -> None:
    assert state_payload(A.busy, A.away, "missed an offer") == {
        "from": "busy",
        "to": "away",
        "reason": "missed an offer",
    }
    assert state_payload(A.available, A.busy, None) == {
        "from": "available",
        "to": "busy",
        "reason": None,
    }

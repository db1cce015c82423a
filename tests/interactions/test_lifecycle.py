"""Which moves an interaction may make: exhaustively, over every pair of states."""

from __future__ import annotations

import itertools

import pytest

from app.core.errors import IllegalTransition
from app.interactions.lifecycle import ALLOWED, can_move, ensure_can_move
from app.interactions.models import TERMINAL_STATES, InteractionState

S = InteractionState

EXPECTED = {
    (S.queued, S.offered),
    (S.queued, S.abandoned),
    (S.queued, S.expired),
    (S.queued, S.transferred_out),
    (S.queued, S.converted),
    (S.offered, S.assigned),
    (S.offered, S.queued),
    (S.offered, S.abandoned),
    (S.offered, S.converted),
    (S.assigned, S.wrap_up),
    (S.assigned, S.completed),
    (S.assigned, S.queued),
    (S.assigned, S.transferred_out),
    (S.wrap_up, S.completed),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_exactly_the_designed_moves_are_allowed(current: S, target: S) -> None:
    assert can_move(current, target) == ((current, target) in EXPECTED)


def test_terminal_states_are_final_and_every_state_is_known() -> None:
    assert set(ALLOWED) == set(S)
    for state in TERMINAL_STATES:
        assert ALLOWED[state] == frozenset()


def test_every_non_terminal_state_can_still_end() -> None:
    """Rule 3: from anywhere, some path leads to a terminal state."""
    for start in set(S) - TERMINAL_STATES:
        reached, frontier = {start}, [start]
        while frontier:
            for following in ALLOWED[frontier.pop()]:
                if following not in reached:
                    reached.add(following)
                    frontier.append(following)
        assert reached & TERMINAL_STATES


def test_an_illegal_move_says_where_it_may_go() -> None:
    with pytest.raises(IllegalTransition) as refused:
        ensure_can_move(S.completed, S.queued, what="requeue it")
    assert "cannot requeue it" in refused.value.detail
    assert "has ended" in refused.value.detail
    with pytest.raises(IllegalTransition) as refused:
        ensure_can_move(S.wrap_up, S.queued, what="transfer it")
    assert "completed" in refused.value.detail

"""The complaint workflow, pure: every pair of step and action for every actor against a table
written out by hand, the records each action needs, and (Hypothesis) that no path skips a step
and every path can still end closed or rejected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.tickets.workflow import (
    ENDINGS,
    RULES,
    Action,
    Actor,
    Attempt,
    Move,
    Refusal,
    Step,
    decide,
)

S, A = Step, Action
# Where each action leads from each step it is taken at: written out, not read from RULES.
LEADS: dict[tuple[Step, Action], Step] = {
    (S.intake, A.complete_intake): S.accept,
    (S.accept, A.confirm): S.investigate,
    (S.accept, A.reject): S.rejected,
    (S.investigate, A.send_reply): S.reply,
    (S.reply, A.customer_accepts): S.improve,
    (S.reply, A.customer_rejects): S.investigate,
    (S.reply, A.deemed_accepted): S.improve,
    (S.improve, A.close): S.closed,
    (S.closed, A.reopen): S.investigate,
    **{(step, A.assign): step for step in (S.intake, S.accept, S.investigate, S.reply, S.improve)},
}
# Who may take each action.
WHO: dict[Action, set[Actor]] = {
    A.complete_intake: {Actor.agent, Actor.supervisor},
    A.confirm: {Actor.agent, Actor.supervisor},
    A.send_reply: {Actor.agent, Actor.supervisor},
    A.customer_accepts: {Actor.customer, Actor.agent, Actor.supervisor},
    A.customer_rejects: {Actor.customer, Actor.agent, Actor.supervisor},
    A.deemed_accepted: {Actor.system},
    A.reject: {Actor.supervisor},
    A.assign: {Actor.supervisor},
    A.close: {Actor.supervisor},
    A.reopen: {Actor.supervisor},
}
FULL = {
    "channel": "email",
    "original_message": "My bill is wrong",
    "customer": "Li Wei",
    "remedy_sought": "a refund",
    "acknowledged_at": "2026-12-05T10:00:00+08:00",
    "acknowledgement": "We have your complaint C-2026-000001",
    "category": "billing",
    "severity": "major",
    "reason": "not a complaint",
    "owner": "mei",
    "assessment": "charged twice",
    "notes": "refund approved",
    "reply": "We refunded you",
    "actions_taken": "refund",
    "answer": "thanks",
    "satisfaction": 4,
    "deemed_after_days": 5,
    "root_cause": "billing run",
    "corrective_action": "fix the run",
    "action_owner": "billing team",
}
FORWARD = {
    S.intake: A.complete_intake,
    S.accept: A.confirm,
    S.investigate: A.send_reply,
    S.reply: A.customer_accepts,
    S.improve: A.close,
}


def attempt(step: Step, action: Action, actor: Actor, **overrides: object) -> Attempt:
    records = {**FULL, **overrides}
    return Attempt(step, action, actor, records, owns=True, reopen_window_open=True)


@pytest.mark.parametrize("actor", list(Actor))
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("step", list(Step))
def test_every_step_action_and_actor_as_the_table_says(
    step: Step, action: Action, actor: Actor
) -> None:
    outcome = decide(attempt(step, action, actor))
    expected = LEADS.get((step, action)) if actor in WHO[action] else None
    if expected is None:
        assert isinstance(outcome, Refusal), (step, action, actor)
        assert outcome.reason
    else:
        assert outcome == Move(expected)


@pytest.mark.parametrize("action", list(Action))
def test_each_missing_record_is_named(action: Action) -> None:
    step = next(s for (s, a) in LEADS if a is action)
    actor = next(iter(WHO[action]))
    for record in RULES[action].needs:
        outcome = decide(attempt(step, action, actor, **{record: " "}))
        assert isinstance(outcome, Refusal)
        assert outcome.missing == (record,)
        assert record in outcome.reason


def test_an_agent_works_only_the_complaints_it_owns() -> None:
    mine = decide(attempt(S.investigate, A.send_reply, Actor.agent))
    theirs = decide(Attempt(S.investigate, A.send_reply, Actor.agent, FULL, owns=False))
    supervisor = decide(Attempt(S.investigate, A.send_reply, Actor.supervisor, FULL))
    assert mine == Move(S.reply)
    assert isinstance(theirs, Refusal)
    assert "owns" in theirs.reason
    assert supervisor == Move(S.reply)


def test_a_reopen_needs_the_window_and_satisfaction_a_score() -> None:
    late = Attempt(S.closed, A.reopen, Actor.supervisor, FULL, reopen_window_open=False)
    assert isinstance(decide(late), Refusal)
    for score in (0, 6, "good"):
        outcome = decide(attempt(S.reply, A.customer_accepts, Actor.customer, satisfaction=score))
        assert isinstance(outcome, Refusal)
        assert outcome.missing == ("satisfaction",)


@given(st.lists(st.tuples(st.sampled_from(list(Action)), st.sampled_from(list(Actor)))))
@settings(max_examples=300, deadline=None)
def test_no_path_skips_a_step_and_every_path_can_still_end(
    moves: list[tuple[Action, Actor]],
) -> None:
    step = S.intake
    furthest = 1
    for action, actor in moves:
        outcome = decide(attempt(step, action, actor))
        if isinstance(outcome, Refusal):
            continue
        number = outcome.to.number
        if number is not None:
            # Forward one step at most; back only to step 3 (a reply not accepted, a reopen).
            assert number <= furthest + 1 or (number == 3 and furthest >= 3)
            furthest = max(furthest, number)
        else:
            assert outcome.to is S.rejected or furthest == 5
        step = outcome.to
    # From wherever it stands, the next step's action each time ends it within five moves.
    for _ in range(5):
        if step in ENDINGS:
            break
        outcome = decide(attempt(step, FORWARD[step], Actor.supervisor))
        assert isinstance(outcome, Move)
        step = outcome.to
    assert step in ENDINGS

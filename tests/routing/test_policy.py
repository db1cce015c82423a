"""The routing policy: effective priority, relaxation, capacity, agent choice and the pass.

Unit tests read as examples; Hypothesis checks the rules of DESIGN section 3 over random
snapshots and compares `match` with a plain reference written straight from the rules.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.channels import Channel
from app.routing.policy import (
    TIERS,
    AvailableAgent,
    Capacity,
    Load,
    Match,
    QueueRules,
    RelaxationStep,
    SkillNeed,
    Standing,
    WaitingInteraction,
    current_needs,
    effective_priority,
    has_room,
    match,
    qualifies,
    skills_any_of,
    with_one_more,
)
from bench.policy import full_floor

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BILLING = uuid.UUID(int=0xB1)
SALES = uuid.UUID(int=0x5A)
UNKNOWN_QUEUE = uuid.UUID(int=0xDEAD)
WEIGHTS = {"platinum": 30.0, "gold": 20.0, "iron": 10.0, "lead": 0.0}


def rules(
    queue_id: uuid.UUID = BILLING,
    *,
    weights: Mapping[str, float] = WEIGHTS,
    aging: float = 0.5,
    relaxation: Sequence[tuple[float, int]] = (),
    sticky: float = 0.0,
    follow_up: float = 0.0,
    owner_first: bool = False,
) -> QueueRules:
    return QueueRules(
        queue_id=queue_id,
        tier_weights=weights,
        aging_factor=aging,
        relaxation=tuple(RelaxationStep(after, cap) for after, cap in relaxation),
        sticky_seconds=sticky,
        follow_up_seconds=follow_up,
        complaint_owner_first=owner_first,
    )


def item_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x1000 + n)


def agent_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x2000 + n)


def item(
    n: int,
    *,
    channel: Channel = Channel.voice,
    queue: uuid.UUID = BILLING,
    priority: int = 0,
    tier: str = "lead",
    waited: float = 0.0,
    needs: Mapping[str, int] | None = None,
    last_agent: int | None = None,
    last_seen_ago: float | None = None,
    thread_agent: int | None = None,
    thread_ended_ago: float | None = None,
    complaint_owner: int | None = None,
    excluded: Sequence[int] = (),
) -> WaitingInteraction:
    return WaitingInteraction(
        id=item_id(n),
        channel=channel,
        queue_id=queue,
        priority=priority,
        tier=tier,
        waiting_since=NOW - timedelta(seconds=waited),
        needs=tuple(SkillNeed(s, lvl) for s, lvl in (needs or {}).items()),
        last_agent_id=None if last_agent is None else agent_id(last_agent),
        last_agent_at=None if last_seen_ago is None else NOW - timedelta(seconds=last_seen_ago),
        thread_agent_id=None if thread_agent is None else agent_id(thread_agent),
        thread_ended_at=(
            None if thread_ended_ago is None else NOW - timedelta(seconds=thread_ended_ago)
        ),
        complaint_owner_id=None if complaint_owner is None else agent_id(complaint_owner),
        complaint_reference=None if complaint_owner is None else f"C-2026-{n:06d}",
        excluded_agents=frozenset(agent_id(a) for a in excluded),
    )


def agent(
    n: int,
    *,
    skills: Mapping[str, int] | None = None,
    capacity: Capacity = Capacity(),
    load: Load = Load(),
    idle: float = 0.0,
    wrap_up: bool = False,
) -> AvailableAgent:
    return AvailableAgent(
        id=agent_id(n),
        skills=dict(skills or {}),
        capacity=capacity,
        load=load,
        idle_since=NOW - timedelta(seconds=idle),
        in_wrap_up=wrap_up,
    )


def pairs(matches: Sequence[Match]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    return [(m.interaction_id, m.agent_id) for m in matches]


RULES = {BILLING: rules(BILLING), SALES: rules(SALES)}


# --- effective priority ----------------------------------------------------------------------


def test_priority_adds_explicit_priority_tier_weight_and_aging() -> None:
    waiting = item(1, priority=5, tier="gold", waited=10)
    assert effective_priority(waiting, rules(aging=0.5), NOW) == 5 + 20 + 0.5 * 10


def test_platinum_after_10_s_beats_lead_after_60_s() -> None:
    """docs/routing.md, example 1: 30 + 5 = 35 against 0 + 30 = 30."""
    platinum = item(1, tier="platinum", waited=10)
    lead = item(2, tier="lead", waited=60)
    assert effective_priority(platinum, rules(), NOW) == 35.0
    assert effective_priority(lead, rules(), NOW) == 30.0


def test_aging_overtakes_the_tier_in_the_end() -> None:
    """The lead customer catches up with the platinum one after 60 s more (0.5 * 60 = 30)."""
    platinum = item(1, tier="platinum", waited=10)
    lead = item(2, tier="lead", waited=71)
    assert effective_priority(lead, rules(), NOW) > effective_priority(platinum, rules(), NOW)


def test_unknown_tier_weighs_nothing() -> None:
    assert effective_priority(item(1, tier="bronze", priority=3), rules(), NOW) == 3.0


def test_waiting_since_in_the_future_counts_as_no_wait() -> None:
    assert effective_priority(item(1, waited=-30), rules(aging=2), NOW) == 0.0


def test_no_aging_factor_means_waiting_adds_nothing() -> None:
    assert effective_priority(item(1, tier="iron", waited=500), rules(aging=0), NOW) == 10.0


# --- relaxation --------------------------------------------------------------------------------

BULLSEYE = [(60, 0), (0, 4), (30, 2)]  # written out of order on purpose


@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        (0, {"billing": 4, "mandarin": 3}),  # the 0 s step caps billing 5 at 4
        (29.9, {"billing": 4, "mandarin": 3}),
        (30, {"billing": 2, "mandarin": 2}),  # the 30 s step applies at exactly 30 s
        (59, {"billing": 2, "mandarin": 2}),
        (60, {}),  # cap 0: any agent
        (3600, {}),
    ],
)
def test_relaxation_applies_the_latest_step_reached(
    waited: float, expected: dict[str, int]
) -> None:
    waiting = item(1, waited=waited, needs={"billing": 5, "mandarin": 3})
    needs = current_needs(waiting, rules(relaxation=BULLSEYE), NOW)
    assert {n.skill: n.level for n in needs} == expected


def test_no_relaxation_keeps_the_needs() -> None:
    waiting = item(1, waited=999, needs={"billing": 5, "vip": 1})
    assert current_needs(waiting, rules(), NOW) == (SkillNeed("billing", 5), SkillNeed("vip", 1))


def test_before_the_first_step_the_needs_are_as_given() -> None:
    waiting = item(1, waited=5, needs={"billing": 5})
    assert current_needs(waiting, rules(relaxation=[(10, 1)]), NOW) == (SkillNeed("billing", 5),)


def test_a_cap_only_lowers_levels_and_zero_drops_them() -> None:
    waiting = item(1, waited=20, needs={"billing": 1, "mandarin": 4})
    assert current_needs(waiting, rules(relaxation=[(10, 2)]), NOW) == (
        SkillNeed("billing", 1),
        SkillNeed("mandarin", 2),
    )
    assert current_needs(waiting, rules(relaxation=[(10, 0)]), NOW) == ()


def test_the_latest_step_applies_even_if_it_is_stricter() -> None:
    waiting = item(1, waited=40, needs={"billing": 5})
    steps = [(30, 4), (0, 1)]
    assert current_needs(waiting, rules(relaxation=steps), NOW) == (SkillNeed("billing", 4),)


def test_two_steps_at_the_same_time_the_lower_cap_wins_in_any_order() -> None:
    waiting = item(1, waited=40, needs={"billing": 5})
    for steps in ([(30, 3), (30, 1)], [(30, 1), (30, 3)]):
        assert current_needs(waiting, rules(relaxation=steps), NOW) == (SkillNeed("billing", 1),)


def test_a_skill_named_twice_is_needed_once_at_its_highest_level() -> None:
    waiting = replace(
        item(1), needs=(SkillNeed("billing", 2), SkillNeed("vip", 1), SkillNeed("billing", 4))
    )
    assert current_needs(waiting, rules(), NOW) == (SkillNeed("billing", 4), SkillNeed("vip", 1))


@given(
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 5)), max_size=5),
    st.integers(0, 120),
)
@settings(max_examples=200, deadline=None)
def test_step_order_never_matters(steps: list[tuple[int, int]], waited: int) -> None:
    waiting = item(1, waited=waited, needs={"billing": 5, "mandarin": 3, "vip": 1})
    expected = current_needs(waiting, rules(relaxation=steps), NOW)
    assert current_needs(waiting, rules(relaxation=steps[::-1]), NOW) == expected
    assert current_needs(waiting, rules(relaxation=sorted(steps)), NOW) == expected
    assert all(need.level >= 1 for need in expected)


# --- capacity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "channel", "room"),
    [
        (Load(), Channel.voice, True),
        (Load(voice=1), Channel.voice, False),  # default capacity: one call
        (Load(voice=1), Channel.callback, False),  # a callback is a call
        (Load(voice=1), Channel.chat, False),  # a call excludes chats
        (Load(voice=1), Channel.email, True),  # email goes alongside a call
        (Load(chat=1), Channel.voice, False),  # chats exclude a call
        (Load(chat=1), Channel.callback, False),
        (Load(chat=2), Channel.chat, True),
        (Load(chat=3), Channel.chat, False),  # default capacity: three chats
        (Load(chat=3), Channel.email, True),
        (Load(email=1), Channel.voice, True),
        (Load(email=2), Channel.email, False),  # default capacity: two emails
        (Load(email=2), Channel.chat, True),
    ],
)
def test_room_per_channel(load: Load, channel: Channel, room: bool) -> None:
    assert has_room(agent(1), channel, load) is room


def test_callback_uses_the_voice_capacity() -> None:
    two_lines = agent(1, capacity=Capacity(voice=2))
    assert has_room(two_lines, Channel.callback, Load(voice=1)) is True
    assert has_room(two_lines, Channel.callback, Load(voice=2)) is False


def test_wrap_up_takes_no_voice_but_takes_chat_and_email() -> None:
    wrapping = agent(1, wrap_up=True)
    assert has_room(wrapping, Channel.voice, Load()) is False
    assert has_room(wrapping, Channel.callback, Load()) is False
    assert has_room(wrapping, Channel.chat, Load()) is True
    assert has_room(wrapping, Channel.email, Load()) is True


def test_zero_capacity_means_no_such_channel() -> None:
    email_only = agent(1, capacity=Capacity(voice=0, chat=0, email=5))
    assert has_room(email_only, Channel.voice, Load()) is False
    assert has_room(email_only, Channel.chat, Load()) is False
    assert has_room(email_only, Channel.email, Load(email=4)) is True


def test_has_room_judges_the_load_given_not_the_agents_own() -> None:
    busy = agent(1, load=Load(voice=1))
    assert has_room(busy, Channel.voice, Load()) is True


# --- qualification -----------------------------------------------------------------------------


def test_qualifies_needs_every_skill_at_its_level() -> None:
    polyglot = agent(1, skills={"billing": 3, "mandarin": 5})
    assert qualifies(polyglot, [SkillNeed("billing", 3), SkillNeed("mandarin", 4)]) is True
    assert qualifies(polyglot, [SkillNeed("billing", 4)]) is False
    assert qualifies(polyglot, [SkillNeed("vip", 1)]) is False
    assert qualifies(polyglot, []) is True
    assert qualifies(agent(2), []) is True


# --- match: order of service ---------------------------------------------------------------------


def test_higher_effective_priority_is_served_first() -> None:
    platinum = item(1, tier="platinum", waited=10)  # 35
    lead = item(2, tier="lead", waited=60)  # 30
    matches = match([lead, platinum], [agent(1)], RULES, NOW)
    assert pairs(matches) == [(platinum.id, agent_id(1))]
    assert matches[0].effective_priority == 35.0


def test_equal_priority_goes_to_the_longest_waiting() -> None:
    newer = item(1, priority=10, waited=0)
    older = item(2, priority=5, waited=10)  # 5 + 0.5 * 10 = 10 as well
    assert pairs(match([newer, older], [agent(1)], RULES, NOW)) == [(older.id, agent_id(1))]


def test_full_tie_goes_to_the_lowest_id() -> None:
    first, second = item(1, waited=5), item(2, waited=5)
    assert pairs(match([second, first], [agent(1)], RULES, NOW)) == [(first.id, agent_id(1))]


def test_unknown_queue_is_skipped() -> None:
    lost = item(1, queue=UNKNOWN_QUEUE, priority=100)
    known = item(2)
    assert pairs(match([lost, known], [agent(1)], RULES, NOW)) == [(known.id, agent_id(1))]


def test_results_come_in_service_order() -> None:
    waiting = [item(n, channel=Channel.email, priority=n) for n in range(5)]
    matches = match(waiting, [agent(1, capacity=Capacity(email=10))], RULES, NOW)
    assert [m.interaction_id for m in matches] == [item_id(n) for n in (4, 3, 2, 1, 0)]


def test_a_pass_never_overfills_an_agent() -> None:
    chats = [item(n, channel=Channel.chat) for n in range(5)]
    matches = match(chats, [agent(1, load=Load(chat=1))], RULES, NOW)
    assert len(matches) == 2  # capacity 3, one held already


def test_a_call_matched_in_the_pass_blocks_chats_for_that_agent() -> None:
    call = item(1, channel=Channel.voice, priority=10)
    chat = item(2, channel=Channel.chat)
    email = item(3, channel=Channel.email)
    matches = match([call, chat, email], [agent(1)], RULES, NOW)
    assert pairs(matches) == [(call.id, agent_id(1)), (email.id, agent_id(1))]


def test_no_candidate_leaves_the_interaction_out() -> None:
    needy = item(1, needs={"mandarin": 5})
    assert match([needy], [agent(1, skills={"mandarin": 4})], RULES, NOW) == []


def test_an_unmatched_higher_item_does_not_block_lower_ones() -> None:
    needy = item(1, priority=50, needs={"mandarin": 5})
    plain = item(2)
    matches = match([needy, plain], [agent(1, skills={"mandarin": 1})], RULES, NOW)
    assert pairs(matches) == [(plain.id, agent_id(1))]


def test_relaxed_needs_let_a_long_waiting_item_through() -> None:
    queue = {BILLING: rules(relaxation=[(30, 2)])}
    fresh = item(1, waited=10, needs={"billing": 4})
    old = item(2, waited=40, needs={"billing": 4})
    novice = agent(1, skills={"billing": 2})
    matches = match([fresh, old], [novice], queue, NOW)
    assert pairs(matches) == [(old.id, agent_id(1))]
    assert matches[0].matched_skills == {"billing": 2}


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        match([item(1), item(1)], [agent(1)], RULES, NOW)
    with pytest.raises(ValueError, match="appears twice"):
        match([item(1)], [agent(1), agent(1)], RULES, NOW)


def test_nothing_to_do() -> None:
    assert match([], [agent(1)], RULES, NOW) == []
    assert match([item(1)], [], RULES, NOW) == []


# --- match: choice of agent ----------------------------------------------------------------------


def test_best_proficiency_wins() -> None:
    waiting = item(1, needs={"billing": 2, "vip": 1})
    agents = [
        agent(1, skills={"billing": 5, "vip": 1}, idle=500),  # 6
        agent(2, skills={"billing": 4, "vip": 3}),  # 7
        agent(3, skills={"billing": 5}),  # no vip: not qualified
    ]
    [chosen] = match([waiting], agents, RULES, NOW)
    assert chosen.agent_id == agent_id(2)
    assert chosen.matched_skills == {"billing": 4, "vip": 3}
    assert chosen.reason == "best proficiency (billing 4, vip 3) among 2 qualified agents"


def test_skills_not_needed_do_not_count() -> None:
    waiting = item(1, needs={"billing": 1})
    agents = [agent(1, skills={"billing": 3, "vip": 5}), agent(2, skills={"billing": 4})]
    assert match([waiting], agents, RULES, NOW)[0].agent_id == agent_id(2)


def test_equal_proficiency_goes_to_the_least_loaded() -> None:
    waiting = item(1, channel=Channel.email, needs={"billing": 1})
    agents = [
        agent(1, skills={"billing": 3}, load=Load(email=1), idle=900),
        agent(2, skills={"billing": 3}, load=Load(chat=1, email=0)),
        agent(3, skills={"billing": 3}, load=Load()),
    ]
    [chosen] = match([waiting], agents, RULES, NOW)
    assert chosen.agent_id == agent_id(3)
    assert chosen.reason == (
        "least loaded (holds 0) among 3 qualified agents; proficiency tied (billing 3)"
    )


def test_equal_proficiency_and_load_goes_to_the_longest_idle() -> None:
    waiting = item(1, needs={"billing": 1})
    agents = [agent(1, skills={"billing": 3}, idle=30), agent(2, skills={"billing": 3}, idle=120)]
    [chosen] = match([waiting], agents, RULES, NOW)
    assert chosen.agent_id == agent_id(2)
    assert chosen.reason == (
        "longest idle (120 s) among 2 qualified agents; proficiency (billing 3) and load tied"
    )


def test_all_tied_goes_to_the_lowest_id() -> None:
    [chosen] = match([item(1)], [agent(2), agent(1)], RULES, NOW)
    assert chosen.agent_id == agent_id(1)
    assert chosen.reason == (
        "first by id among 2 qualified agents; proficiency (no skills required), "
        "load and idle time tied"
    )


def test_no_needs_means_every_agent_with_room_ties_on_proficiency() -> None:
    agents = [agent(1, skills={"vip": 5}), agent(2, idle=60)]
    [chosen] = match([item(1)], agents, RULES, NOW)
    assert chosen.agent_id == agent_id(2)
    assert chosen.matched_skills == {}


def test_the_only_candidate() -> None:
    agents = [agent(1, skills={"billing": 2}), agent(2, skills={"billing": 5}, load=Load(voice=1))]
    [chosen] = match([item(1, needs={"billing": 2})], agents, RULES, NOW)
    assert chosen.agent_id == agent_id(1)
    assert chosen.reason == "only qualified agent with room (billing 2)"


def test_load_taken_in_the_pass_counts_for_the_next_choice() -> None:
    emails = [item(1, channel=Channel.email, priority=1), item(2, channel=Channel.email)]
    agents = [agent(1, idle=100), agent(2, idle=10)]
    matches = match(emails, agents, RULES, NOW)
    # agent 1 is longest idle and takes the first; then agent 2 is less loaded.
    assert pairs(matches) == [(item_id(1), agent_id(1)), (item_id(2), agent_id(2))]


def test_wrap_up_agent_gets_the_email_not_the_call() -> None:
    call = item(1, priority=10)
    email = item(2, channel=Channel.email)
    agents = [agent(1, wrap_up=True, idle=300), agent(2)]
    assert pairs(match([call, email], agents, RULES, NOW)) == [
        (call.id, agent_id(2)),
        (email.id, agent_id(1)),
    ]


def test_excluded_agents_are_never_chosen() -> None:
    waiting = item(1, needs={"billing": 1}, excluded=[1])
    agents = [agent(1, skills={"billing": 5}), agent(2, skills={"billing": 1})]
    [chosen] = match([waiting], agents, RULES, NOW)
    assert chosen.agent_id == agent_id(2)
    assert chosen.reason == "only qualified agent with room (billing 1)"


def test_all_candidates_excluded_leaves_it_waiting_and_others_still_get_them() -> None:
    rejected = item(1, priority=9, excluded=[1, 2])
    other = item(2)
    matches = match([rejected, other], [agent(1), agent(2, idle=5)], RULES, NOW)
    assert pairs(matches) == [(other.id, agent_id(2))]


# --- match: sticky agent -------------------------------------------------------------------------

STICKY = {BILLING: rules(sticky=300)}


def test_sticky_agent_within_the_window_beats_a_better_one() -> None:
    waiting = item(1, needs={"billing": 1}, last_agent=2, last_seen_ago=120)
    agents = [agent(1, skills={"billing": 5}, idle=999), agent(2, skills={"billing": 1})]
    [chosen] = match([waiting], agents, STICKY, NOW)
    assert chosen.agent_id == agent_id(2)
    assert chosen.reason == "sticky: last agent for this customer (120 s ago)"
    assert chosen.matched_skills == {"billing": 1}


def test_sticky_at_the_edge_of_the_window() -> None:
    agents = [agent(1, idle=999), agent(2)]
    at_edge = item(1, last_agent=2, last_seen_ago=300)
    beyond = item(1, last_agent=2, last_seen_ago=300.5)
    assert match([at_edge], agents, STICKY, NOW)[0].agent_id == agent_id(2)
    assert match([beyond], agents, STICKY, NOW)[0].agent_id == agent_id(1)


def test_sticky_seconds_zero_means_no_sticky_agent() -> None:
    waiting = item(1, last_agent=2, last_seen_ago=0)
    assert match([waiting], [agent(1, idle=9), agent(2)], RULES, NOW)[0].agent_id == agent_id(1)


@pytest.mark.parametrize(
    ("last", "why"),
    [
        (agent(2, load=Load(voice=1)), "no room"),
        (agent(2, wrap_up=True), "in wrap-up"),
        (agent(2, skills={"billing": 1}), "not qualified"),
    ],
)
def test_sticky_agent_must_be_a_candidate(last: AvailableAgent, why: str) -> None:
    waiting = item(1, needs={"billing": 3}, last_agent=2, last_seen_ago=10)
    agents = [agent(1, skills={"billing": 3}), last]
    assert match([waiting], agents, STICKY, NOW)[0].agent_id == agent_id(1), why


def test_sticky_agent_excluded_or_absent_is_ignored() -> None:
    excluded = item(1, last_agent=2, last_seen_ago=10, excluded=[2])
    absent = item(2, last_agent=7, last_seen_ago=10)
    agents = [agent(1), agent(2)]
    assert match([excluded], agents, STICKY, NOW)[0].agent_id == agent_id(1)
    assert match([absent], agents, STICKY, NOW)[0].agent_id == agent_id(1)


def test_no_last_agent_time_means_no_sticky_agent() -> None:
    waiting = item(1, last_agent=2)
    assert match([waiting], [agent(1, idle=9), agent(2)], STICKY, NOW)[0].agent_id == agent_id(1)


# --- match: a follow-up goes back to its thread's agent -----------------------------------------

DAY = 86_400.0
FOLLOW_UP = {BILLING: rules(sticky=300, follow_up=7 * DAY)}


def test_a_follow_up_goes_to_its_threads_agent_within_the_days() -> None:
    waiting = item(1, thread_agent=2, thread_ended_ago=3 * DAY, last_agent=3, last_seen_ago=60)
    agents = [agent(1, idle=999), agent(2), agent(3)]
    [chosen] = match([waiting], agents, FOLLOW_UP, NOW)
    # Ahead of the customer's last agent: the thread's agent knows this conversation.
    assert chosen.agent_id == agent_id(2)
    assert chosen.reason == "follow-up: agent of the thread it continues (259200 s ago)"


def test_a_follow_up_past_its_days_or_off_goes_by_the_other_rules() -> None:
    late = item(1, thread_agent=2, thread_ended_ago=7 * DAY + 1, last_agent=3, last_seen_ago=60)
    agents = [agent(1, idle=999), agent(2), agent(3)]
    assert match([late], agents, FOLLOW_UP, NOW)[0].agent_id == agent_id(3)  # sticky
    off = {BILLING: rules(follow_up=0)}
    soon = item(1, thread_agent=2, thread_ended_ago=60)
    assert match([soon], agents, off, NOW)[0].agent_id == agent_id(1)  # longest idle


def test_a_follow_ups_thread_agent_must_be_a_candidate() -> None:
    agents = [agent(1, idle=999), agent(2, load=Load(email=2))]  # 2 holds all the email it may
    full = item(1, channel=Channel.email, thread_agent=2, thread_ended_ago=60)
    refused = item(2, channel=Channel.chat, thread_agent=2, thread_ended_ago=60, excluded=[2])
    assert match([full], agents, FOLLOW_UP, NOW)[0].agent_id == agent_id(1)
    assert match([refused], agents, FOLLOW_UP, NOW)[0].agent_id == agent_id(1)


# --- match: a customer with an open complaint goes to its owner --------------------------------

OWNER_FIRST = {BILLING: rules(sticky=300, follow_up=7 * DAY, owner_first=True)}


def test_a_complaint_owner_comes_before_the_follow_up_and_sticky_agents() -> None:
    waiting = item(
        12,
        channel=Channel.email,
        needs={"billing": 1},
        complaint_owner=2,
        thread_agent=3,
        thread_ended_ago=60,
        last_agent=4,
        last_seen_ago=60,
    )
    agents = [agent(n, skills={"billing": 1 if n == 2 else 5}) for n in (1, 2, 3, 4)]
    [chosen] = match([waiting], agents, OWNER_FIRST, NOW)
    assert chosen.agent_id == agent_id(2)
    assert chosen.reason == "complaint owner: C-2026-000012"
    assert chosen.matched_skills == {"billing": 1}


def test_a_complaint_owner_is_not_preferred_where_the_queue_says_nothing() -> None:
    waiting = item(1, complaint_owner=2, last_agent=3, last_seen_ago=60)
    agents = [agent(1, idle=999), agent(2), agent(3)]
    assert match([waiting], agents, STICKY, NOW)[0].agent_id == agent_id(3)  # sticky
    assert match([waiting], agents, RULES, NOW)[0].agent_id == agent_id(1)  # longest idle


@pytest.mark.parametrize(
    ("owner", "why"),
    [
        (agent(2, load=Load(voice=1)), "no room"),
        (agent(2, wrap_up=True), "in wrap-up"),
        (agent(2, skills={"billing": 1}), "not qualified"),
    ],
)
def test_a_complaint_owner_must_be_a_candidate(owner: AvailableAgent, why: str) -> None:
    waiting = item(1, needs={"billing": 3}, complaint_owner=2, last_agent=3, last_seen_ago=60)
    agents = [agent(1, skills={"billing": 3}, idle=999), owner, agent(3, skills={"billing": 3})]
    # The next rule decides: the customer's last agent.
    assert match([waiting], agents, OWNER_FIRST, NOW)[0].agent_id == agent_id(3), why


def test_a_complaint_owner_excluded_or_absent_is_ignored() -> None:
    excluded = item(1, complaint_owner=2, excluded=[2])
    absent = item(2, complaint_owner=7)
    agents = [agent(1, idle=999), agent(2)]
    assert match([excluded], agents, OWNER_FIRST, NOW)[0].agent_id == agent_id(1)
    assert match([absent], agents, OWNER_FIRST, NOW)[0].agent_id == agent_id(1)


# --- invariants over random snapshots ------------------------------------------------------------

SKILLS = ("billing", "mandarin", "vip")
QUEUES = (BILLING, SALES, UNKNOWN_QUEUE)


# Few distinct values, so that ties and contention (what the order rules decide) are common.
HELD = st.tuples(*(st.sampled_from((0, 1, 3, 3, 5, 5)) for _ in SKILLS))  # 0: skill not held
NEEDED = st.tuples(*(st.sampled_from((0, 0, 0, 0, 1, 3, 5)) for _ in SKILLS))  # 0: not needed


def skill_map(levels: tuple[int, ...]) -> dict[str, int]:
    return {skill: level for skill, level in zip(SKILLS, levels, strict=True) if level > 0}


def make_rules(queue_id: uuid.UUID, drawn: tuple[Any, ...]) -> QueueRules:
    weights, aging, steps, sticky, follow_up, owner_first = drawn
    return rules(
        queue_id,
        weights=dict(zip(TIERS, weights, strict=True)),
        aging=aging,
        relaxation=steps,
        sticky=sticky,
        follow_up=follow_up,
        owner_first=owner_first,
    )


RULES_PARTS = st.tuples(
    st.tuples(*(st.sampled_from([0.0, 10.0, 20.0, 30.0]) for _ in TIERS)),
    st.sampled_from([0.0, 0.5, 1.0]),
    st.lists(st.tuples(st.sampled_from([0, 10, 30, 60]), st.integers(0, 5)), max_size=3),
    st.sampled_from([0.0, 30.0, 60.0]),
    st.sampled_from([0.0, 40.0, 90.0]),
    st.booleans(),
)


def make_agent(n: int, drawn: tuple[Any, ...]) -> AvailableAgent:
    """Capacity and a load that respects it (a call or chats, never both), as the store has."""
    (cap_voice, cap_chat, cap_email), (voice, chat, email), on_call, levels, idle, wrap_up = drawn
    capacity = Capacity(voice=cap_voice, chat=cap_chat, email=cap_email)
    load = Load(
        voice=min(voice, cap_voice) if on_call else 0,
        chat=0 if on_call else min(chat, cap_chat),
        email=min(email, cap_email),
    )
    return agent(
        n, skills=skill_map(levels), capacity=capacity, load=load, idle=idle, wrap_up=wrap_up
    )


AGENT_PARTS = st.tuples(
    st.tuples(  # capacity: voice, chat, email
        st.sampled_from((0, 1, 1, 2)), st.sampled_from((0, 2, 3, 3)), st.sampled_from((0, 2, 2))
    ),
    st.tuples(
        st.sampled_from((0, 0, 1)), st.sampled_from((0, 0, 1, 2)), st.sampled_from((0, 0, 1))
    ),
    st.booleans(),
    HELD,
    st.sampled_from([0, 0, 10]),  # seconds idle
    st.booleans(),
)


def make_item(n: int, drawn: tuple[Any, ...]) -> WaitingInteraction:
    channel, queue, priority, tier, waited, levels, sticky, thread, owner, excluded = drawn
    last_agent, last_seen_ago = sticky if sticky is not None else (None, None)
    thread_agent, thread_ended_ago = thread if thread is not None else (None, None)
    return item(
        n,
        channel=channel,
        queue=queue,
        priority=priority,
        tier=tier,
        waited=waited,
        needs=skill_map(levels),
        last_agent=last_agent,
        last_seen_ago=last_seen_ago,
        thread_agent=thread_agent,
        thread_ended_ago=thread_ended_ago,
        complaint_owner=owner,
        excluded=excluded,
    )


AGENT_NUMBERS = st.integers(0, 6)  # 5 agents at most: 5 and 6 are never in the snapshot
ITEM_PARTS = st.tuples(
    st.sampled_from(tuple(Channel)),
    st.sampled_from(QUEUES),
    st.integers(0, 3),
    st.sampled_from((*TIERS, "unknown")),
    st.sampled_from([0, 10, 20, 30, 60, 90]),
    NEEDED,
    st.none() | st.tuples(AGENT_NUMBERS, st.sampled_from([0, 30, 45, 90])),
    st.none() | st.tuples(AGENT_NUMBERS, st.sampled_from([0, 40, 60, 120])),
    st.none() | AGENT_NUMBERS,  # the owner of the customer's open complaint
    st.lists(AGENT_NUMBERS, max_size=2),
)


Snapshot = tuple[list[WaitingInteraction], list[AvailableAgent], dict[uuid.UUID, QueueRules]]


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """A few agents and up to 16 interactions on two known queues and one unknown."""
    agents = [
        make_agent(n, parts)
        for n, parts in enumerate(draw(st.lists(AGENT_PARTS, min_size=1, max_size=5)))
    ]
    waiting = [
        make_item(n, parts)
        for n, parts in enumerate(draw(st.lists(ITEM_PARTS, min_size=1, max_size=16)))
    ]
    queues = {queue_id: make_rules(queue_id, draw(RULES_PARTS)) for queue_id in (BILLING, SALES)}
    return waiting, agents, queues


def service_order(
    waiting: Sequence[WaitingInteraction], queues: Mapping[uuid.UUID, QueueRules]
) -> list[WaitingInteraction]:
    known = [w for w in waiting if w.queue_id in queues]
    return sorted(
        known,
        key=lambda w: (-effective_priority(w, queues[w.queue_id], NOW), w.waiting_since, w.id),
    )


def add_one(load: Load, channel: Channel) -> Load:
    if channel in (Channel.voice, Channel.callback):
        return replace(load, voice=load.voice + 1)
    if channel is Channel.chat:
        return replace(load, chat=load.chat + 1)
    return replace(load, email=load.email + 1)


def can_take(
    someone: AvailableAgent, waiting: WaitingInteraction, rules_: QueueRules, load: Load
) -> bool:
    return (
        someone.id not in waiting.excluded_agents
        and qualifies(someone, current_needs(waiting, rules_, NOW))
        and has_room(someone, waiting.channel, load)
    )


def reference_match(
    waiting: Sequence[WaitingInteraction],
    agents: Sequence[AvailableAgent],
    queues: Mapping[uuid.UUID, QueueRules],
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """DESIGN rules 4 and 5 written the plain way: scan every agent for every interaction."""
    loads = {a.id: a.load for a in agents}
    result = []
    for w in service_order(waiting, queues):
        queue = queues[w.queue_id]
        needs = current_needs(w, queue, NOW)
        candidates = [a for a in agents if can_take(a, w, queue, loads[a.id])]
        if not candidates:
            continue
        # The owner of the customer's open complaint first (where the queue says so), then
        # the thread's agent of a follow-up, then the customer's last agent.
        owner = [
            a for a in candidates if queue.complaint_owner_first and a.id == w.complaint_owner_id
        ]
        went_back = owner + [
            a
            for agent_id_, since, window in (
                (w.thread_agent_id, w.thread_ended_at, queue.follow_up_seconds),
                (w.last_agent_id, w.last_agent_at, queue.sticky_seconds),
            )
            for a in candidates
            if a.id == agent_id_
            and since is not None
            and window > 0
            and (NOW - since).total_seconds() <= window
        ]
        chosen = (
            went_back
            or sorted(
                candidates,
                key=lambda a: (
                    -sum(a.skills.get(n.skill, 0) for n in needs),
                    sum((loads[a.id].voice, loads[a.id].chat, loads[a.id].email)),
                    a.idle_since,
                    a.id,
                ),
            )
        )[0]
        loads[chosen.id] = add_one(loads[chosen.id], w.channel)
        result.append((w.id, chosen.id))
    return result


def assert_each_match_valid_and_loads_within_rules(
    snapshot: Snapshot, matches: Sequence[Match]
) -> list[dict[uuid.UUID, Load]]:
    """Invariants 1-3; returns every agent's load just before each match, then the final one."""
    waiting, agents, queues = snapshot
    by_item = {w.id: w for w in waiting}
    by_agent = {a.id: a for a in agents}

    # (1) no interaction matched twice, none from an unknown queue
    matched = [m.interaction_id for m in matches]
    assert len(matched) == len(set(matched))
    assert all(by_item[i].queue_id in queues for i in matched)

    # (3) each match valid at its point in the pass
    loads = {a.id: a.load for a in agents}
    history = []
    for m in matches:
        w, a = by_item[m.interaction_id], by_agent[m.agent_id]
        queue = queues[w.queue_id]
        assert can_take(a, w, queue, loads[a.id])
        assert m.effective_priority == effective_priority(w, queue, NOW)
        needs = current_needs(w, queue, NOW)
        assert m.matched_skills == {n.skill: a.skills[n.skill] for n in needs}
        history.append(dict(loads))
        loads[a.id] = add_one(loads[a.id], w.channel)
    history.append(loads)

    # (2) nobody over capacity, a call and chats never together, no new call in wrap-up
    for a in agents:
        load = loads[a.id]
        assert load.voice <= a.capacity.voice
        assert load.chat <= a.capacity.chat
        assert load.email <= a.capacity.email
        assert load.voice == 0 or load.chat == 0
        if a.in_wrap_up:
            assert load.voice == a.load.voice
    return history


def assert_maximal_and_in_priority_order(
    snapshot: Snapshot, matches: Sequence[Match], history: list[dict[uuid.UUID, Load]]
) -> None:
    """Invariant 4: nothing left waiting could go to anyone, nor could have had a later pick."""
    waiting, agents, queues = snapshot
    by_agent = {a.id: a for a in agents}
    order = [w.id for w in service_order(waiting, queues)]
    matched = {m.interaction_id for m in matches}
    assert [m.interaction_id for m in matches] == [i for i in order if i in matched]

    position = {interaction: n for n, interaction in enumerate(order)}
    final = history[-1]
    for w in waiting:
        if w.id in matched or w.queue_id not in queues:
            continue
        queue = queues[w.queue_id]
        assert not any(can_take(a, w, queue, final[a.id]) for a in agents)
        for m, before in zip(matches, history, strict=False):
            if position[m.interaction_id] > position[w.id]:
                taken = by_agent[m.agent_id]
                assert not can_take(taken, w, queue, before[taken.id])


def assert_reasons_name_the_deciding_rule(
    snapshot: Snapshot, matches: Sequence[Match], history: list[dict[uuid.UUID, Load]]
) -> None:
    waiting, agents, queues = snapshot
    by_item = {w.id: w for w in waiting}
    for m, before in zip(matches, history, strict=False):
        w = by_item[m.interaction_id]
        candidates = sum(can_take(a, w, queues[w.queue_id], before[a.id]) for a in agents)
        if m.reason.startswith("complaint owner: "):
            assert m.agent_id == w.complaint_owner_id
            assert m.reason == f"complaint owner: {w.complaint_reference}"
        elif m.reason.startswith("follow-up: "):
            assert m.agent_id == w.thread_agent_id
        elif m.reason.startswith("sticky: "):
            assert m.agent_id == w.last_agent_id
        elif candidates == 1:
            assert m.reason.startswith("only qualified agent with room (")
        else:
            assert f" among {candidates} qualified agents" in m.reason


@given(snapshots())
@settings(max_examples=200, deadline=None)
def test_match_keeps_every_routing_rule(snapshot: Snapshot) -> None:
    """Invariants 1-4 and the reasons, and the same pairs as the plain reference."""
    waiting, agents, queues = snapshot
    matches = match(waiting, agents, queues, NOW)
    history = assert_each_match_valid_and_loads_within_rules(snapshot, matches)
    assert_maximal_and_in_priority_order(snapshot, matches, history)
    assert_reasons_name_the_deciding_rule(snapshot, matches, history)
    assert pairs(matches) == reference_match(waiting, agents, queues)


@given(snapshots())
@settings(max_examples=200, deadline=None)
def test_agents_holding_none_of_the_wanted_skills_change_nothing(snapshot: Snapshot) -> None:
    """The matcher reads only agents holding one of `skills_any_of`: leaving the others out
    gives exactly the same matches, reasons included."""
    waiting, agents, queues = snapshot
    wanted = skills_any_of(waiting, queues, NOW)
    kept = [a for a in agents if wanted is None or wanted & set(a.skills)]
    assert match(waiting, kept, queues, NOW) == match(waiting, agents, queues, NOW)


def test_skills_any_of_is_none_when_some_work_needs_no_skill_now() -> None:
    needs_billing = item(1, needs={"billing": 3})
    needs_two = item(2, needs={"sales": 1, "mandarin": 2})
    relaxed_away = item(3, waited=120, needs={"billing": 2})
    other_queue = item(4, queue=UNKNOWN_QUEUE, needs={})
    queues = {BILLING: rules(relaxation=[(60, 0)])}
    assert skills_any_of([needs_billing, needs_two, other_queue], queues, NOW) == frozenset(
        {"billing", "sales", "mandarin"}
    )
    assert skills_any_of([needs_billing, relaxed_away], queues, NOW) is None
    assert skills_any_of([], queues, NOW) == frozenset()


@given(snapshots())
@settings(max_examples=200, deadline=None)
def test_a_standing_serves_arrivals_one_by_one_as_match_serves_them_together(
    snapshot: Snapshot,
) -> None:
    """What app/routing/arrivals.py relies on: interactions arriving one after another, each
    served by the standing kept since the agents were read, get the pairs and reasons one
    `match` over all of them gives, when they arrive in its service order (any rule that
    holds for `match` then holds for them)."""
    waiting, agents, queues = snapshot
    expected = match(waiting, agents, queues, NOW)
    lazy, warmed = Standing(agents), Standing(agents)
    in_order = service_order(waiting, queues)
    for w in in_order:  # what the pools of the standing built lazily will be
        lazy.serve(w, queues, NOW)
    warmed.warm(lazy.pools())  # built before any arrival, as the directory does
    for standing in (Standing(agents), warmed):
        served = [standing.serve(w, queues, NOW) for w in in_order]
        assert [m for m in served if m is not None] == expected


@given(snapshots(), AGENT_NUMBERS)
@settings(max_examples=200, deadline=None)
def test_a_standing_serves_an_agent_set_aside_nothing_and_the_others_as_before(
    snapshot: Snapshot, number: int
) -> None:
    """Setting an agent aside (its row moved) is the same as leaving it out of the standing."""
    waiting, agents, queues = snapshot
    kept = [a for a in agents if a.id != agent_id(number)]
    set_apart = Standing(agents)
    set_apart.set_aside(agent_id(number))
    in_order = service_order(waiting, queues)
    served = [set_apart.serve(w, queues, NOW) for w in in_order]
    assert [m for m in served if m is not None] == match(waiting, kept, queues, NOW)


@given(snapshots(), st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_match_ignores_the_order_of_its_input(snapshot: Snapshot, rnd: random.Random) -> None:
    """Invariant 5: the same snapshot in any order gives the same matches, reasons included."""
    waiting, agents, queues = snapshot
    expected = match(waiting, agents, queues, NOW)
    shuffled_waiting, shuffled_agents = list(waiting), list(agents)
    rnd.shuffle(shuffled_waiting)
    rnd.shuffle(shuffled_agents)
    assert match(shuffled_waiting, shuffled_agents, queues, NOW) == expected


@given(
    st.sampled_from(tuple(Channel)),
    st.lists(
        st.tuples(st.sampled_from((1, 3)), st.integers(0, 1), st.sampled_from((0, 10))),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.tuples(st.sampled_from((0, 1)), st.integers(0, 2)), min_size=2, max_size=10),
)
@settings(max_examples=200, deadline=None)
def test_a_busy_pass_on_one_channel_ranks_by_load_as_it_grows(
    channel: Channel,
    agent_parts: list[tuple[int, int, int]],
    item_parts: list[tuple[int, int]],
) -> None:
    """Many interactions, few agents, many ties: the load each match adds must re-rank agents."""
    agents = [
        agent(
            n,
            skills={"billing": level},
            capacity=Capacity(voice=3, chat=3, email=3),
            load=Load(email=held) if channel is Channel.email else Load(),
            idle=idle,
        )
        for n, (level, held, idle) in enumerate(agent_parts)
    ]
    waiting = [
        item(n, channel=channel, needs={"billing": need} if need else {}, priority=priority)
        for n, (need, priority) in enumerate(item_parts)
    ]
    queues = {BILLING: rules()}
    assert pairs(match(waiting, agents, queues, NOW)) == reference_match(waiting, agents, queues)


# --- scale ---------------------------------------------------------------------------------------


def test_a_full_floor_is_matched_once_each_within_every_agents_room() -> None:
    """2,000 waiting x 500 agents, the benchmark's floor (bench/policy.py, which times it): a
    deep line with every channel, relaxation, sticky agents and exclusions keeps the rules."""
    floor = full_floor()
    matches = match(floor.waiting, floor.agents, floor.queues, floor.now)
    assert 0 < len(matches) < len(floor.waiting)
    assert len({m.interaction_id for m in matches}) == len(matches)
    items = {item.id: item for item in floor.waiting}
    agents = {a.id: a for a in floor.agents}
    loads = {a.id: a.load for a in floor.agents}
    for m in matches:
        item, agent_ = items[m.interaction_id], agents[m.agent_id]
        assert m.agent_id not in item.excluded_agents
        assert has_room(agent_, item.channel, loads[m.agent_id]), (m, loads[m.agent_id])
        loads[m.agent_id] = with_one_more(loads[m.agent_id], item.channel)

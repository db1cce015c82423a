"""The flow engine, node by node: what the caller hears, where the call goes, what it learned.

Each test reads as an example of one rule; tests/ivr/test_endings.py holds every call to an
end with Hypothesis.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.customers.models import Tier
from app.ivr.actions import Gather, Hangup, Language, Play, Record, Say, Transfer
from app.ivr.engine import (
    MAX_PATH,
    CallbackRequested,
    CallerHungUp,
    CallFacts,
    CallStarted,
    CallState,
    DigitsEntered,
    Enqueue,
    EventOutOfTurn,
    FlowStuck,
    HoursNow,
    HungUp,
    NoInput,
    RecordingDone,
    Transferred,
    VoicemailLeft,
    advance,
    begin,
)
from app.ivr.flow import Flow
from tests.ivr.calls import call, flow, heard, say

KEY = DigitsEntered  # DigitsEntered(digits="1") reads as a key pressed
SILENCE = NoInput()
QUEUE = {"type": "enqueue", "queue": "general"}
BYE = {"type": "hangup", "prompts": say("Goodbye.")}


def menu(**extra: Any) -> dict[str, Any]:
    return {
        "type": "menu",
        "prompts": say("Press 1 for billing."),
        "options": {"1": "billing"},
        "invalid_prompts": say("Not a choice."),
        "no_input_prompts": say("I heard nothing."),
        "on_invalid": "bye",
        **extra,
    }


MENU_FLOW = flow(
    {
        "menu": menu(),
        "billing": {"type": "enqueue", "queue": "billing"},
        "bye": BYE,
    }
)


# say, play, language


def test_a_say_node_plays_its_prompts_and_goes_on() -> None:
    built = flow(
        {
            "hello": {
                "type": "say",
                "prompts": [{"text": "Welcome."}, {"url": "https://example.com/chime.mp3"}],
                "next": "queue",
            },
            "queue": {**QUEUE, "prompts": say("Please hold.")},
        }
    )
    [step] = call(built)
    assert step.actions == [
        Say(text="Welcome.", language=Language.en_us),
        Play(url="https://example.com/chime.mp3"),
        Say(text="Please hold.", language=Language.en_us),
    ]
    assert isinstance(step.outcome, Enqueue)
    assert step.outcome.learned.path == ["hello", "queue"]


def test_voices_come_from_the_flow_unless_a_prompt_names_its_own() -> None:
    built = flow(
        {
            "hello": {
                "type": "say",
                "prompts": [{"text": "Hi."}, {"text": "Hey.", "voice": "Polly.Matthew"}],
                "next": "queue",
            },
            "queue": QUEUE,
        },
        voices={"en-US": "Polly.Joanna"},
    )
    assert [a.voice for a in call(built)[0].actions if isinstance(a, Say)] == [
        "Polly.Joanna",
        "Polly.Matthew",
    ]


BILINGUAL = flow(
    {
        "hello": {
            "type": "say",
            "prompts": [
                {"text": "Welcome.", "always": True},
                {"text": "欢迎。", "language": "zh-CN", "always": True},
                {"text": "English only."},
                {"text": "只有中文。", "language": "zh-CN"},
            ],
            "next": "queue",
        },
        "queue": {**QUEUE, "prompts": say("Please hold.")},
    },
    voices={"zh-CN": "Polly.Zhiyu"},
)


def test_a_call_hears_its_own_language_and_the_prompts_marked_always() -> None:
    assert heard(call(BILINGUAL)[0].actions) == [
        "Welcome.",
        "欢迎。",
        "English only.",
        "Please hold.",
    ]
    chinese = call(BILINGUAL, facts=CallFacts(language=Language.zh_cn))[0]
    # "Please hold." has no Chinese version: the caller hears it rather than silence.
    assert heard(chinese.actions) == ["Welcome.", "欢迎。", "只有中文。", "Please hold."]
    assert [a.voice for a in chinese.actions if isinstance(a, Say)][:3] == [
        None,
        "Polly.Zhiyu",
        "Polly.Zhiyu",
    ]
    assert chinese.outcome is not None
    assert chinese.outcome.learned.language is Language.zh_cn


def test_a_language_node_changes_the_language_from_there_on() -> None:
    built = flow(
        {
            "menu": menu(options={"1": "billing", "9": "chinese"}),
            "chinese": {"type": "language", "language": "zh-CN", "next": "ask"},
            "ask": {
                "type": "say",
                "prompts": [{"text": "Hold."}, {"text": "请稍候。", "language": "zh-CN"}],
                "next": "billing",
            },
            "billing": {"type": "enqueue", "queue": "billing"},
            "bye": BYE,
        }
    )
    step = call(built, KEY(digits="9"))[-1]
    assert heard(step.actions) == ["请稍候。"]
    assert step.outcome is not None
    assert step.outcome.learned.language is Language.zh_cn


# menu


def test_a_menu_asks_for_one_key_and_follows_the_option() -> None:
    start, chosen = call(MENU_FLOW, KEY(digits="1"))
    assert start.actions == [
        Gather(prompts=[Say(text="Press 1 for billing.")], num_digits=1, timeout_seconds=5)
    ]
    assert start.state.node == "menu"
    assert start.outcome is None
    assert isinstance(chosen.outcome, Enqueue)
    assert chosen.outcome.queue == "billing"
    assert chosen.outcome.learned.keys == ["1"]
    assert chosen.outcome.learned.path == ["menu", "billing"]


def test_a_wrong_key_is_told_and_asked_again_until_the_retries_run_out() -> None:
    steps = call(MENU_FLOW, KEY(digits="7"), KEY(digits="#"), KEY(digits="12"))
    assert [heard(s.actions) for s in steps[1:3]] == [["Not a choice.", "Press 1 for billing."]] * 2
    assert [s.state.retries_left for s in steps[:3]] == [2, 1, 0]
    last = steps[-1]
    assert isinstance(last.outcome, HungUp)
    assert last.outcome.by == "flow"
    assert heard(last.actions) == ["Goodbye."]
    assert last.actions[-1] == Hangup()
    assert last.outcome.learned.keys == []  # wrong keys are not choices


def test_silence_is_told_apart_from_a_wrong_key() -> None:
    built = flow(
        {
            "menu": menu(retries=1, on_no_input="queue"),
            "billing": {"type": "enqueue", "queue": "billing"},
            "queue": QUEUE,
            "bye": BYE,
        }
    )
    steps = call(built, SILENCE, SILENCE)
    assert heard(steps[1].actions) == ["I heard nothing.", "Press 1 for billing."]
    assert isinstance(steps[2].outcome, Enqueue)
    assert steps[2].outcome.queue == "general"


def test_silence_with_no_branch_of_its_own_goes_where_wrong_keys_go() -> None:
    last = call(MENU_FLOW, SILENCE, SILENCE, SILENCE)[-1]
    assert isinstance(last.outcome, HungUp)
    assert last.outcome.learned.path == ["menu", "bye"]


def test_a_menu_without_retries_takes_its_way_out_at_once() -> None:
    built = flow({"menu": menu(retries=0), "billing": QUEUE, "bye": BYE})
    assert isinstance(call(built, KEY(digits="5"))[-1].outcome, HungUp)


def test_a_retry_after_a_right_key_elsewhere_starts_afresh() -> None:
    """Retries count per visit: coming back to a menu gives it its retries again."""
    built = flow(
        {
            "menu": menu(options={"1": "billing", "0": "menu"}, retries=1),
            "billing": QUEUE,
            "bye": BYE,
        }
    )
    steps = call(built, KEY(digits="5"), KEY(digits="0"))
    assert [s.state.retries_left for s in steps] == [1, 0, 1]


# collect digits

ACCOUNT = {
    "type": "collect",
    "prompts": say("Your account number, then hash."),
    "variable": "account",
    "min_length": 8,
    "max_length": 8,
    "check": "luhn",
    "account": True,
    "retries": 1,
    "invalid_prompts": say("That is not valid."),
    "next": "queue",
    "on_invalid": "bye",
}
ACCOUNT_FLOW = flow({"ask": ACCOUNT, "queue": QUEUE, "bye": BYE})


def test_collected_digits_are_kept_and_the_account_is_verified() -> None:
    start, done = call(ACCOUNT_FLOW, KEY(digits="12345674#"))
    [gather] = start.actions
    assert isinstance(gather, Gather)
    assert (gather.num_digits, gather.finish_on_key) == (8, "#")
    assert isinstance(done.outcome, Enqueue)
    assert done.outcome.learned.collected == {"account": "12345674"}
    assert done.outcome.learned.account_verified is True


@pytest.mark.parametrize(
    "entered",
    ["12345678", "1234567", "123456740", "1234*674"],
    ids=["luhn fails", "too short", "too long", "not a digit"],
)
def test_an_entry_that_fails_a_check_is_asked_again(entered: str) -> None:
    step = call(ACCOUNT_FLOW, KEY(digits=entered))[-1]
    assert step.state.node == "ask"
    assert step.state.variables == {}
    assert heard(step.actions) == ["That is not valid.", "Your account number, then hash."]


def test_an_account_that_never_passes_is_learned_as_not_verified() -> None:
    last = call(ACCOUNT_FLOW, KEY(digits="12345678"), KEY(digits="87654321"))[-1]
    assert isinstance(last.outcome, HungUp)
    assert last.outcome.learned.account_verified is False
    assert last.outcome.learned.collected == {}


def test_a_pattern_checks_the_whole_entry_and_digits_not_for_an_account_verify_nothing() -> None:
    built = flow(
        {
            "ask": {
                **ACCOUNT,
                "check": None,
                "account": False,
                "pattern": "^9[0-9]{7}$",
                "next": "queue",
            },
            "queue": QUEUE,
            "bye": BYE,
        }
    )
    assert call(built, KEY(digits="12345674"))[-1].state.node == "ask"
    done = call(built, KEY(digits="91234567"))[-1]
    assert done.outcome is not None
    assert done.outcome.learned.collected == {"account": "91234567"}
    assert done.outcome.learned.account_verified is None


def test_silence_at_a_collect_node_takes_its_no_input_branch() -> None:
    built = flow(
        {"ask": {**ACCOUNT, "retries": 0, "on_no_input": "queue"}, "queue": QUEUE, "bye": BYE}
    )
    assert isinstance(call(built, SILENCE)[-1].outcome, Enqueue)


# branches

TIER_FLOW = flow(
    {
        "tier": {
            "type": "branch_tier",
            "tiers": {"platinum": "vip", "gold": "vip"},
            "default": "general",
        },
        "vip": {"type": "enqueue", "queue": "vip", "priority": 10},
        "general": QUEUE,
    }
)


@pytest.mark.parametrize(
    ("tier", "queue"),
    [(Tier.platinum, "vip"), (Tier.gold, "vip"), (Tier.iron, "general"), (None, "general")],
)
def test_the_callers_tier_chooses_the_way(tier: Tier | None, queue: str) -> None:
    [step] = call(TIER_FLOW, facts=CallFacts(tier=tier))
    assert isinstance(step.outcome, Enqueue)
    assert step.outcome.queue == queue


HOURS_FLOW = flow(
    {
        "hours": {
            "type": "branch_hours",
            "queue": "billing",
            "open": "billing",
            "closed": "closed",
            "holiday": "holiday",
        },
        "billing": {"type": "enqueue", "queue": "billing"},
        "closed": {"type": "hangup", "prompts": say("We are closed.")},
        "holiday": {"type": "hangup", "prompts": say("Happy holidays.")},
    }
)


@pytest.mark.parametrize(
    ("hours", "path"),
    [
        ({"billing": HoursNow.open}, ["hours", "billing"]),
        ({}, ["hours", "billing"]),  # a queue the caller says nothing of is open
        ({"billing": HoursNow.closed}, ["hours", "closed"]),
        ({"billing": HoursNow.holiday}, ["hours", "holiday"]),
    ],
)
def test_the_queues_hours_now_choose_the_way(hours: dict[str, HoursNow], path: list[str]) -> None:
    [step] = call(HOURS_FLOW, facts=CallFacts(hours=hours))
    assert step.outcome is not None
    assert step.outcome.learned.path == path


def test_a_holiday_with_no_way_of_its_own_is_closed() -> None:
    built = flow(
        {
            "hours": {"type": "branch_hours", "queue": "billing", "open": "q", "closed": "bye"},
            "q": QUEUE,
            "bye": BYE,
        }
    )
    [step] = call(built, facts=CallFacts(hours={"billing": HoursNow.holiday}))
    assert isinstance(step.outcome, HungUp)


def test_collected_input_chooses_the_way() -> None:
    built = flow(
        {
            "ask": {**ACCOUNT, "check": None, "min_length": 1, "next": "which"},
            "which": {
                "type": "branch_input",
                "variable": "account",
                "cases": {"11111111": "vip"},
                "default": "queue",
            },
            "vip": {"type": "enqueue", "queue": "vip"},
            "queue": QUEUE,
            "bye": BYE,
        }
    )
    chosen = call(built, KEY(digits="11111111"))[-1].outcome
    assert isinstance(chosen, Enqueue)
    assert chosen.queue == "vip"
    other = call(built, KEY(digits="22"))[-1].outcome
    assert isinstance(other, Enqueue)
    assert other.queue == "general"


# endings


def test_enqueue_hands_over_queue_skills_and_priority_and_leaves_the_wait_to_the_gateway() -> None:
    built = flow(
        {
            "q": {
                "type": "enqueue",
                "queue": "billing",
                "skills": [{"skill": "mandarin", "level": 3}],
                "priority": 5,
                "prompts": say("Please hold."),
            }
        }
    )
    [step] = call(built)
    assert heard(step.actions) == ["Please hold."]
    assert not any(isinstance(a, Hangup) for a in step.actions)
    assert isinstance(step.outcome, Enqueue)
    assert (step.outcome.queue, step.outcome.priority) == ("billing", 5)
    assert [(s.skill, s.level) for s in step.outcome.skills] == [("mandarin", 3)]
    assert step.state.ended
    assert step.state.node is None


CALLBACK_FLOW = flow(
    {
        "offer": {
            "type": "callback",
            "queue": "general",
            "prompts": say("Press 1 to be called back."),
            "confirm_prompts": say("We will call you."),
            "on_decline": "queue",
        },
        "queue": QUEUE,
    }
)
KNOWN_NUMBER = CallFacts(calling_number="+8613800138000")


def test_a_confirmed_callback_ends_the_call_with_the_number_to_call() -> None:
    start, done = call(CALLBACK_FLOW, KEY(digits="1"), facts=KNOWN_NUMBER)
    assert isinstance(start.actions[0], Gather)
    assert start.actions[0].num_digits == 1
    assert heard(done.actions) == ["We will call you."]
    assert done.actions[-1] == Hangup()
    assert isinstance(done.outcome, CallbackRequested)
    assert (done.outcome.queue, done.outcome.number) == ("general", "+8613800138000")


@pytest.mark.parametrize("answer", [KEY(digits="2"), SILENCE], ids=["other key", "silence"])
def test_a_declined_callback_goes_on(answer: DigitsEntered | NoInput) -> None:
    done = call(CALLBACK_FLOW, answer, facts=KNOWN_NUMBER)[-1]
    assert isinstance(done.outcome, Enqueue)


def test_no_callback_is_offered_to_a_number_we_cannot_see() -> None:
    [step] = call(CALLBACK_FLOW)
    assert not any(isinstance(a, Gather) for a in step.actions)
    assert isinstance(step.outcome, Enqueue)
    assert step.outcome.learned.path == ["offer", "queue"]


VOICEMAIL_FLOW = flow(
    {
        "vm": {
            "type": "voicemail",
            "queue": "billing",
            "prompts": say("Leave a message."),
            "max_seconds": 60,
            "goodbye_prompts": say("Thanks."),
        }
    }
)


def test_a_voicemail_records_and_ends_with_its_url() -> None:
    url = "https://api.twilio.com/recordings/RE1"
    start, done = call(VOICEMAIL_FLOW, RecordingDone(url=url))
    assert start.actions == [
        Record(prompts=[Say(text="Leave a message.")], max_seconds=60, finish_on_key="#")
    ]
    assert heard(done.actions) == ["Thanks."]
    assert done.actions[-1] == Hangup()
    assert isinstance(done.outcome, VoicemailLeft)
    assert (done.outcome.queue, done.outcome.recording_url) == ("billing", url)


def test_an_empty_voicemail_hangs_up() -> None:
    done = call(VOICEMAIL_FLOW, SILENCE)[-1]
    assert done.actions == [Hangup()]
    assert isinstance(done.outcome, HungUp)


def test_transfer_sends_the_call_to_its_number() -> None:
    built = flow(
        {"out": {"type": "transfer", "number": "+14155550132", "prompts": say("Transferring.")}}
    )
    [step] = call(built)
    assert step.actions[-1] == Transfer(number="+14155550132")
    assert isinstance(step.outcome, Transferred)
    assert step.outcome.number == "+14155550132"


def test_a_caller_who_hangs_up_ends_the_call_with_what_was_learned() -> None:
    built = flow({"ask": ACCOUNT, "queue": QUEUE, "bye": BYE})
    done = call(built, KEY(digits="1"), CallerHungUp())[-1]
    assert done.actions == []
    assert isinstance(done.outcome, HungUp)
    assert done.outcome.by == "caller"
    assert done.outcome.learned.path == ["ask"]


# bounds, turns and purity


LOOPING: dict[str, dict[str, Any]] = {
    "menu": menu(options={"1": "billing", "0": "menu"}),
    "billing": {"type": "enqueue", "queue": "billing"},
    "bye": BYE,
    "operator": {"type": "enqueue", "queue": "general", "prompts": say("Let me find someone.")},
}


def test_a_call_past_max_inputs_goes_to_the_give_up_node() -> None:
    built = flow(LOOPING, max_inputs=3, give_up="operator")
    steps = call(built, KEY(digits="0"), KEY(digits="0"), KEY(digits="0"))
    assert [s.outcome is None for s in steps] == [True, True, True, False]
    last = steps[-1]
    assert isinstance(last.outcome, Enqueue)
    assert last.outcome.queue == "general"
    assert heard(last.actions) == ["Let me find someone."]
    assert last.outcome.learned.path[-1] == "operator"


def test_with_no_give_up_node_a_call_past_max_inputs_hangs_up() -> None:
    looping = {key: node for key, node in LOOPING.items() if key != "operator"}
    last = call(flow(looping, max_inputs=2), KEY(digits="0"), SILENCE)[-1]
    assert last.actions == [Hangup()]
    assert isinstance(last.outcome, HungUp)


@pytest.mark.parametrize(
    ("events", "said"),
    [
        ([], "the call has not started"),
        ([CallStarted(), CallStarted()], "started already"),
        ([CallStarted(), RecordingDone(url="https://x.example/r")], "waits at 'menu'"),
        ([CallStarted(), KEY(digits="1"), KEY(digits="1")], "has ended"),
    ],
)
def test_an_event_the_call_is_not_waiting_for_is_refused(
    events: list[CallStarted | DigitsEntered | RecordingDone], said: str
) -> None:
    state = CallState()
    *before, last = events or [KEY(digits="1")]
    for event in before:
        state = advance(MENU_FLOW, state, event, CallFacts()).state
    with pytest.raises(EventOutOfTurn, match=said):
        advance(MENU_FLOW, state, last, CallFacts())


def test_digits_while_recording_are_refused() -> None:
    start = begin(VOICEMAIL_FLOW, CallFacts())
    with pytest.raises(EventOutOfTurn, match="waits at 'vm'"):
        advance(VOICEMAIL_FLOW, start.state, KEY(digits="1"), CallFacts())


def test_advance_changes_nothing_it_is_given() -> None:
    start = begin(ACCOUNT_FLOW, CallFacts())
    before = start.state.model_dump()
    advance(ACCOUNT_FLOW, start.state, KEY(digits="12345674"), CallFacts())
    advance(ACCOUNT_FLOW, start.state, KEY(digits="1"), CallFacts())
    assert start.state.model_dump() == before


def test_the_state_and_what_was_learned_travel_as_json() -> None:
    start = begin(ACCOUNT_FLOW, CallFacts())
    kept = CallState.model_validate_json(start.state.model_dump_json())
    done = advance(ACCOUNT_FLOW, kept, KEY(digits="12345674"), CallFacts())
    assert done.outcome is not None
    learned = json.loads(done.outcome.learned.model_dump_json())
    assert learned == {
        "path": ["ask", "queue"],
        "keys": [],
        "collected": {"account": "12345674"},
        "account_verified": True,
        "language": "en-US",
        "self_service": [],
    }


def test_the_path_keeps_the_latest_nodes() -> None:
    built = flow(LOOPING, max_inputs=100, give_up="operator")
    steps = call(built, *[KEY(digits="0")] * 99)
    assert steps[-1].outcome is None
    assert len(steps[-1].state.path) == MAX_PATH
    assert len(steps[-1].state.keys) < 99


def test_a_flow_that_was_never_validated_cannot_spin_for_ever() -> None:
    spinning = Flow.model_validate(
        {
            "start": "a",
            "nodes": {
                "a": {"type": "say", "prompts": say("a"), "next": "b"},
                "b": {"type": "say", "prompts": say("b"), "next": "a"},
            },
        }
    )
    with pytest.raises(FlowStuck):
        begin(spinning, CallFacts())


def test_self_service_steps_and_the_hold_s_callback_key_travel_with_the_outcome() -> None:
    built = flow(
        {
            "balance": {
                "type": "say",
                "prompts": say("Your balance is 42 yuan."),
                "self_service": "Balance read",
                "next": "menu",
            },
            "menu": {
                "type": "menu",
                "prompts": say("Press 1 to hear it again, 0 for an agent."),
                "options": {"1": "balance", "0": "agent"},
                "on_invalid": "agent",
            },
            "agent": {"type": "enqueue", "queue": "general", "callback_key": "*"},
        }
    )

    *_, done = call(built, KEY(digits="1"), KEY(digits="0"))

    assert isinstance(done.outcome, Enqueue)
    assert done.outcome.callback_key == "*"
    assert done.outcome.learned.self_service == ["Balance read", "Balance read"]

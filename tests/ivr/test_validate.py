"""A bad flow is refused with problems that name the node; a good one passes. And the shape of
a document (pydantic), and the checks a collect node may ask for."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.ivr.checks import check_pattern, luhn_valid
from app.ivr.flow import Flow
from app.ivr.validate import Problem, problems
from tests.ivr.calls import DEMO_FLOW, say

QUEUE = {"type": "enqueue", "queue": "general"}
BYE = {"type": "hangup"}


def menu(**extra: Any) -> dict[str, Any]:
    return {
        "type": "menu",
        "prompts": say("Press 1."),
        "options": {"1": "queue"},
        "on_invalid": "bye",
        **extra,
    }


def problems_of(nodes: dict[str, Any], **extra: Any) -> list[Problem]:
    start = extra.pop("start", next(iter(nodes)))
    return problems(Flow.model_validate({"start": start, "nodes": nodes, **extra}))


def fields(found: list[Problem]) -> list[str]:
    return [p.field for p in found]


def test_the_demo_flow_is_valid() -> None:
    assert problems(DEMO_FLOW) == []


def test_a_menu_that_retries_then_falls_to_an_exit_is_valid() -> None:
    nodes = {"menu": menu(options={"1": "queue", "0": "menu"}, on_invalid="menu"), "queue": QUEUE}
    # Its wrong keys loop back to itself, but key 1 leads out: max_inputs bounds the rest.
    assert problems_of(nodes) == []


def test_an_unknown_start_is_named() -> None:
    found = problems_of({"queue": QUEUE}, start="welcome")
    assert found == [Problem("start", "names no node 'welcome'")]


def test_a_missing_target_is_named_with_its_field() -> None:
    found = problems_of(
        {"menu": menu(options={"1": "queue", "2": "billing"}), "queue": QUEUE, "bye": BYE}
    )
    assert found == [Problem("nodes.menu.options.2", "names no node 'billing'")]


def test_an_unreachable_node_is_named() -> None:
    found = problems_of({"queue": QUEUE, "orphan": BYE})
    assert found == [Problem("nodes.orphan", "is unreachable: no way from 'queue' leads to it")]


def test_a_loop_with_no_exit_names_each_of_its_nodes() -> None:
    nodes = {
        "menu": menu(options={"1": "again"}, on_invalid="again"),
        "again": {"type": "say", "prompts": say("Once more."), "next": "menu"},
    }
    found = problems_of(nodes)
    assert fields(found) == ["nodes.menu", "nodes.again"]
    assert "can never end" in found[0].problem
    assert "(menu → again → menu)" in found[0].problem
    assert "(again → menu → again)" in found[1].problem


def test_a_node_that_leads_only_into_a_loop_with_no_exit_can_never_end() -> None:
    nodes = {
        "hello": {"type": "say", "prompts": say("Hi."), "next": "menu"},
        "menu": menu(options={"1": "menu"}, on_invalid="menu"),
    }
    found = problems_of(nodes)
    assert fields(found) == ["nodes.hello", "nodes.menu"]
    assert found[0].problem.startswith("can never end: no enqueue")
    assert "loop it is in" not in found[0].problem
    assert "(menu → menu)" in found[1].problem


def test_a_loop_that_waits_for_no_input_is_refused_even_with_an_exit() -> None:
    nodes = {
        "hello": {"type": "say", "prompts": say("Hi."), "next": "tier"},
        "tier": {"type": "branch_tier", "tiers": {"platinum": "queue"}, "default": "hello"},
        "queue": QUEUE,
    }
    found = problems_of(nodes)
    assert fields(found) == ["nodes.hello", "nodes.tier"]
    assert "waits for no input (hello → tier → hello)" in found[0].problem


def test_a_callback_does_not_count_as_waiting_in_a_loop() -> None:
    """A caller whose number we cannot see passes a callback node straight to on_decline."""
    nodes = {
        "offer": {
            "type": "callback",
            "queue": "general",
            "prompts": say("Press 1."),
            "on_decline": "sorry",
        },
        "sorry": {"type": "say", "prompts": say("Sorry."), "next": "offer"},
    }
    found = problems_of(nodes)
    assert fields(found) == ["nodes.offer", "nodes.sorry"]
    assert all("waits for no input" in p.problem for p in found)


def test_give_up_must_name_a_node_that_ends_at_once() -> None:
    nodes = {"menu": menu(), "queue": QUEUE, "bye": BYE}
    assert problems_of(nodes, give_up="nowhere") == [Problem("give_up", "names no node 'nowhere'")]
    [found] = problems_of(nodes, give_up="menu")
    assert found.field == "give_up"
    assert "is a menu node" in found.problem
    assert problems_of(nodes, give_up="bye") == []


def test_give_up_makes_its_node_reachable() -> None:
    nodes = {"menu": menu(options={"1": "menu"}, on_invalid="menu"), "operator": QUEUE}
    # The menu alone can never end; with give_up it still cannot (give_up is not a way out
    # of the graph), and the operator is reachable through give_up.
    found = problems_of(nodes, give_up="operator")
    assert fields(found) == ["nodes.menu"]


def test_a_branch_on_a_variable_no_node_collects_is_named() -> None:
    nodes = {
        "which": {
            "type": "branch_input",
            "variable": "account",
            "cases": {"1": "queue"},
            "default": "queue",
        },
        "queue": QUEUE,
    }
    found = problems_of(nodes)
    assert fields(found) == ["nodes.which.variable"]
    assert "no collect node fills 'account'" in found[0].problem


def test_problems_come_in_the_documents_order() -> None:
    nodes = {
        "menu": menu(options={"1": "queue", "2": "gone"}),
        "queue": QUEUE,
        "bye": BYE,
        "orphan": BYE,
    }
    found = problems_of(nodes, give_up="gone")
    assert fields(found) == ["give_up", "nodes.menu.options.2", "nodes.orphan"]


# the document's shape (pydantic)


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Flow.model_validate(document)
    return str(caught.value)


def one_node(node: dict[str, Any]) -> dict[str, Any]:
    return {"start": "n", "nodes": {"n": node}}


@pytest.mark.parametrize(
    ("node", "said"),
    [
        ({"type": "dance"}, "does not match any of the expected tags"),
        ({**QUEUE, "colour": "red"}, "Extra inputs are not permitted"),
        ({**QUEUE, "queue": "bad\x00name"}, "String should match pattern"),
        ({"type": "say", "prompts": say("a\x00b"), "next": "n"}, "NUL character"),
        ({"type": "say", "prompts": say("x" * 2001), "next": "n"}, "at most 2000 characters"),
        ({"type": "say", "prompts": [], "next": "n"}, "at least 1 item"),
        ({"type": "say", "prompts": [{"url": "ftp://x/y"}], "next": "n"}, "String should match"),
        (menu(options={"11": "n"}), "at most 1 character"),
        (menu(options={"a": "n"}), "String should match pattern"),
        (menu(retries=6), "less than or equal to 5"),
        ({"type": "transfer", "number": "0800 123"}, "String should match pattern"),
        (
            {
                "type": "collect",
                "prompts": say("?"),
                "variable": "acct",
                "min_length": 9,
                "max_length": 8,
                "next": "n",
                "on_invalid": "n",
            },
            "min_length (9) must not exceed max_length (8)",
        ),
        (
            {
                "type": "collect",
                "prompts": say("?"),
                "variable": "acct",
                "pattern": r"(\d+)+$",
                "next": "n",
                "on_invalid": "n",
            },
            "a repeated group must not hold a repetition",
        ),
    ],
)
def test_a_badly_shaped_node_is_refused_by_the_model(node: dict[str, Any], said: str) -> None:
    assert said in refused(one_node(node))


def test_node_ids_are_plain_names() -> None:
    assert "String should match pattern" in refused({"start": "a.b", "nodes": {"a.b": QUEUE}})


# the checks


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("79927398713", True), ("79927398710", False), ("12345674", True), ("0", False), ("", False)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@given(st.text("0123456789", min_size=1, max_size=30), st.data())
@settings(max_examples=200, deadline=None)
def test_one_check_digit_makes_any_number_pass_and_one_changed_digit_fails_it(
    body: str, data: st.DataObject
) -> None:
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    number = body + check
    position = data.draw(st.integers(0, len(number) - 1))
    changed = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + changed + number[position + 1 :])


@pytest.mark.parametrize(
    "pattern", [r"^[1-9][0-9]{7}$", r"^(86|852)[0-9]{8}$", r"^(?:0|[1-9][0-9]*)$", r"[(*]+\d"]
)
def test_patterns_that_always_match_quickly_are_kept(pattern: str) -> None:
    assert check_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        (r"(\d+)+x", "a repeated group must not hold a repetition"),
        (r"(1|12)*3", "a repeated group must not hold a repetition or an alternation"),
        (r"((\d)+)*", "a repeated group must not hold a repetition"),
        (r"\d*\d*\d*\d*x", "at most 3 repetitions"),
        (r"(?=1)\d", "no look-arounds"),
        (r"(\d)\1", "back-references"),
        (r"[0-9", "not a regular expression"),
    ],
)
def test_patterns_that_could_be_slow_or_are_broken_are_refused(pattern: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        check_pattern(pattern)

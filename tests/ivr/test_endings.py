"""Every call ends: on a valid flow, ANY sequence of keys, silences and recordings reaches an
outcome (enqueue, callback, voicemail, transfer, hang-up) within `max_inputs` + 1 events after
the start, and until then the gateway is always left waiting for the caller.

Checked on the demo flow with any facts, and on random flows built valid by construction
(which the validator is also asked to agree with).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.customers.models import Tier
from app.ivr.actions import Gather, Language, Record
from app.ivr.engine import (
    CallerHungUp,
    CallEvent,
    CallFacts,
    DigitsEntered,
    HoursNow,
    NoInput,
    RecordingDone,
    advance,
    begin,
)
from app.ivr.flow import CallbackNode, Flow, MenuNode, VoicemailNode
from app.ivr.validate import problems, reachable
from tests.ivr.calls import DEMO_FLOW

facts = st.builds(
    CallFacts,
    calling_number=st.sampled_from([None, "+8613800138000"]),
    tier=st.none() | st.sampled_from(Tier),
    language=st.none() | st.sampled_from(Language),
    hours=st.dictionaries(
        st.sampled_from(["general", "billing", "vip"]), st.sampled_from(HoursNow), max_size=3
    ),
)
keys = st.text("0123456789*#", min_size=1, max_size=12)


def event_for(data: st.DataObject, flow: Flow, node_id: str | None) -> CallEvent:
    """Whatever a caller might do where the call waits (keys the node knows, more often)."""
    node = flow.nodes[node_id or ""]
    if isinstance(node, VoicemailNode):
        recorded: list[CallEvent] = [RecordingDone(url="https://rec.example/1"), NoInput()]
        return data.draw(st.sampled_from(recorded))
    known = list(node.options) if isinstance(node, MenuNode) else []
    if isinstance(node, CallbackNode):
        known = [node.confirm_key]
    digits = st.sampled_from(known) | keys if known else keys
    return data.draw(
        st.one_of(
            st.builds(DigitsEntered, digits=digits),
            st.just(NoInput()),
            st.sampled_from(["12345674", "79927398713"]).map(lambda d: DigitsEntered(digits=d)),
        )
    )


def ends_in_bounded_steps(data: st.DataObject, flow: Flow, told: CallFacts) -> None:
    step = begin(flow, told)
    for _ in range(flow.max_inputs + 1):
        if step.outcome is not None:
            break
        assert isinstance(step.actions[-1], Gather | Record), step.actions
        step = advance(flow, step.state, event_for(data, flow, step.state.node), told)
    assert step.outcome is not None, f"still at {step.state.node} after {step.state.inputs}"
    assert step.state.ended
    assert step.outcome.learned.path[0] == flow.start or len(step.state.path) == 100


@given(st.data(), facts)
@settings(max_examples=300, deadline=None)
def test_every_call_through_the_demo_flow_ends(data: st.DataObject, told: CallFacts) -> None:
    ends_in_bounded_steps(data, DEMO_FLOW, told)


@given(st.data(), facts)
@settings(max_examples=50, deadline=None)
def test_a_caller_may_hang_up_at_any_point(data: st.DataObject, told: CallFacts) -> None:
    step = begin(DEMO_FLOW, told)
    for _ in range(data.draw(st.integers(0, 5))):
        if step.outcome is not None:
            return
        step = advance(DEMO_FLOW, step.state, event_for(data, DEMO_FLOW, step.state.node), told)
    if step.outcome is None:
        step = advance(DEMO_FLOW, step.state, CallerHungUp(), told)
        assert step.outcome is not None
        assert step.outcome.type == "hang_up"


# random flows, valid by construction

ENDINGS = ["enqueue", "transfer", "hangup", "voicemail"]
KINDS = [*ENDINGS, "say", "language", "menu", "collect", "branch_tier", "branch_hours"]
KINDS += ["branch_input", "callback"]
PROMPT = [{"text": "Hello."}]


@st.composite
def valid_flows(draw: st.DrawFn) -> Flow:
    """Nodes n0..nk: each node's first way out leads forward, so every node can reach the
    last one (an ending); nodes that wait for nothing only lead forward, so no loop goes
    without waiting; nodes that wait may also lead back, loops included. Nodes nobody
    reaches are dropped."""
    size = draw(st.integers(2, 12))
    ids = [f"n{i}" for i in range(size)]
    nodes: dict[str, dict[str, Any]] = {}
    for index, node_id in enumerate(ids):
        onward = st.sampled_from(ids[index + 1 :]) if index + 1 < size else st.nothing()
        anywhere = st.sampled_from(ids)
        # The first node leads on (else the flow is one node), the last one ends.
        kinds = KINDS[len(ENDINGS) :] if index == 0 else KINDS
        kind = draw(st.sampled_from(kinds if index + 1 < size else ENDINGS))
        nodes[node_id] = _node(draw, kind, onward, anywhere)
    at_once = [i for i in ids if nodes[i]["type"] in ENDINGS[:3]]  # enqueue, transfer, hangup
    give_up = draw(st.none() | st.sampled_from(at_once)) if at_once else None
    roots = ["n0", *([give_up] if give_up else [])]
    kept = reachable({i: _targets(node) for i, node in nodes.items()}, roots)
    if not any(nodes[i]["type"] == "collect" for i in kept):
        for node_id in kept:  # a branch on input needs a collect node: make it a plain say
            if nodes[node_id]["type"] == "branch_input":
                default = nodes[node_id]["default"]
                nodes[node_id] = {"type": "say", "prompts": PROMPT, "next": default}
        kept = reachable({i: _targets(node) for i, node in nodes.items()}, roots)
    document = {
        "start": "n0",
        "nodes": {i: nodes[i] for i in ids if i in kept},
        "max_inputs": draw(st.integers(1, 15)),
        "give_up": give_up,
    }
    return Flow.model_validate(document)


def _node(draw: st.DrawFn, kind: str, onward: Any, anywhere: Any) -> dict[str, Any]:
    waiting = {"timeout_seconds": 1, "retries": draw(st.integers(0, 3))}
    match kind:
        case "say":
            return {"type": kind, "prompts": PROMPT, "next": draw(onward)}
        case "language":
            return {"type": kind, "language": draw(st.sampled_from(Language)), "next": draw(onward)}
        case "menu":
            options = draw(
                st.dictionaries(st.sampled_from("0123456789*#"), anywhere, min_size=1, max_size=4)
            )
            return {
                "type": kind,
                "prompts": PROMPT,
                "options": options,
                "on_invalid": draw(onward),
                "on_no_input": draw(st.none() | anywhere),
                **waiting,
            }
        case "collect":
            return {
                "type": kind,
                "prompts": PROMPT,
                "variable": "v",
                "min_length": 1,
                "max_length": 12,
                "check": draw(st.sampled_from([None, "luhn"])),
                "next": draw(anywhere),
                "on_invalid": draw(onward),
                **waiting,
            }
        case "branch_tier":
            tiers = draw(st.dictionaries(st.sampled_from(Tier), onward, min_size=1))
            return {"type": kind, "tiers": tiers, "default": draw(onward)}
        case "branch_hours":
            return {
                "type": kind,
                "queue": "billing",
                "open": draw(onward),
                "closed": draw(onward),
                "holiday": draw(st.none() | onward),
            }
        case "branch_input":
            cases = draw(st.dictionaries(st.sampled_from(["1", "12345674"]), onward, min_size=1))
            return {"type": kind, "variable": "v", "cases": cases, "default": draw(onward)}
        case "callback":
            return {"type": kind, "queue": "general", "prompts": PROMPT, "on_decline": draw(onward)}
        case "enqueue":
            return {"type": kind, "queue": "general"}
        case "transfer":
            return {"type": kind, "number": "+14155550132"}
        case "voicemail":
            return {"type": kind, "queue": "billing", "prompts": PROMPT}
    return {"type": "hangup"}


def _targets(node: dict[str, Any]) -> list[str]:
    found = [node.get(field) for field in ("next", "on_invalid", "on_no_input", "default")]
    found += [node.get(field) for field in ("open", "closed", "holiday", "on_decline")]
    for mapping in ("options", "tiers", "cases"):
        found += list(node.get(mapping, {}).values())
    return [target for target in found if target is not None]


@given(valid_flows())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_random_flows_are_valid(flow: Flow) -> None:
    assert problems(flow) == []


@given(st.data(), valid_flows(), facts)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_call_through_any_valid_flow_ends(
    data: st.DataObject, flow: Flow, told: CallFacts
) -> None:
    ends_in_bounded_steps(data, flow, told)


def test_a_caller_who_keeps_choosing_chinese_is_handed_to_an_agent_at_max_inputs() -> None:
    """The demo's language option leads back to its menu: a loop with an exit, which a
    caller could ride for ever but for max_inputs."""
    step = begin(DEMO_FLOW, CallFacts())
    for _ in range(DEMO_FLOW.max_inputs):
        assert step.outcome is None
        step = advance(DEMO_FLOW, step.state, DigitsEntered(digits="9"), CallFacts())
    assert step.outcome is not None
    assert step.outcome.type == "enqueue"
    assert step.outcome.learned.path[-1] == DEMO_FLOW.give_up

"""The IVR flow engine: a call's next step, from its flow, its state, an event and the facts. Pure.

    step = begin(flow, facts)                        # the call has started
    step = advance(flow, step.state, event, facts)   # keys, silence, a recording, a hang-up

A `Step` holds the actions the gateway is told to take next (app/ivr/actions.py), the call's
new state (kept by the caller between events, as JSON), and, once the IVR's part has ended,
the `Outcome`: enqueue, callback requested, voicemail left, transfer, hang-up. Each carries
what the IVR learned (`Learned`: path, menu keys, collected digits, whether the account number
passed its check, language), small and serialisable, for the interaction and the screen pop.

The engine is told, never asks: `CallFacts` says the caller's tier, their number and language
if known, and whether each queue the flow names is open, closed or on holiday now
(`Flow.queues_named()` lists them). It takes flows that passed app/ivr/validate.py. A call
ends within `flow.max_inputs` keys or silences (then it goes to `flow.give_up`), plus the
start, a recording and a hang-up: no caller can keep it in the IVR for ever.

An enqueue's actions end with its prompts: the caller then waits in the queue, whose wait
loop (`Hold`) is the gateway's business, not the flow's.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import Conflict
from app.customers.models import Tier
from app.ivr.actions import Action, Gather, Hangup, Language, Play, Record, Say, Transfer
from app.ivr.checks import luhn_valid
from app.ivr.flow import (
    E164,
    GIVE_UP_TO,
    AudioUrl,
    CallbackNode,
    CollectNode,
    EnqueueNode,
    Flow,
    HangupNode,
    HoursBranch,
    InputBranch,
    KeyedValue,
    LanguageNode,
    MenuNode,
    PlayPrompt,
    Prompt,
    SayNode,
    TierBranch,
    TransferNode,
    VoicemailNode,
)
from app.queues.schemas import QueueName
from app.skills.schemas import SkillLevel

MAX_PATH = 100  # nodes kept in `path`: the latest, for a call that went round a menu many times
MAX_KEYS = 50  # menu keys kept in `keys`, likewise
MAX_SELF_SERVICE = 20  # self-service steps kept, likewise


class EventOutOfTurn(Conflict):
    """An event the call is not waiting for (digits while recording, anything after the end)."""

    code = "event_out_of_turn"


class FlowStuck(RuntimeError):
    """A flow went round nodes that wait for nothing: validate.problems would have refused it."""


class HoursNow(StrEnum):
    open = "open"
    closed = "closed"
    holiday = "holiday"


class CallFacts(BaseModel):
    """What the engine is told about a call; it looks nothing up itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calling_number: E164 | None = Field(default=None, description="E.164, if the gateway sent it")
    tier: Tier | None = Field(default=None, description="The caller's tier, if they are known")
    language: Language | None = Field(
        default=None, description="The caller's language, if known; else the flow's"
    )
    hours: dict[QueueName, HoursNow] = Field(
        default_factory=dict,
        max_length=200,  # a flow's nodes at most: every queue it can name
        description="Whether each queue the flow names is open now; a queue left out is open",
    )


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallStarted(_Event):
    type: Literal["started"] = "started"


class DigitsEntered(_Event):
    """Keys the caller pressed (the gateway sends silence as `NoInput`, not as no digits)."""

    type: Literal["digits"] = "digits"
    digits: KeyedValue


class NoInput(_Event):
    """The caller pressed nothing before the timeout (or recorded nothing)."""

    type: Literal["no_input"] = "no_input"


class RecordingDone(_Event):
    type: Literal["recording"] = "recording"
    url: AudioUrl


class CallerHungUp(_Event):
    type: Literal["hung_up"] = "hung_up"


CallEvent = Annotated[
    CallStarted | DigitsEntered | NoInput | RecordingDone | CallerHungUp,
    Field(discriminator="type"),
]


class CallState(BaseModel):
    """Where a call stands in its flow; the caller keeps it between events."""

    node: str | None = Field(default=None, description="The node waiting for the caller")
    retries_left: int = 0
    inputs: int = Field(default=0, description="Keys or silences given so far")
    variables: dict[str, str] = Field(default_factory=dict)
    path: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list, description="Menu keys chosen, in order")
    language: Language | None = None
    account_verified: bool | None = None
    self_service: list[str] = Field(default_factory=list, description="Served in the IVR")
    ended: bool = False


class Learned(BaseModel):
    """What the IVR learned, for the interaction and the agent's screen pop."""

    model_config = ConfigDict(frozen=True)

    path: list[str] = Field(description="The nodes the call went through, in order")
    keys: list[str] = Field(description="The menu keys chosen, in order")
    collected: dict[str, str] = Field(description="Digits collected, by variable")
    account_verified: bool | None = Field(
        description="Whether the account number passed its check; null: none was asked"
    )
    language: Language
    self_service: list[str] = Field(
        default_factory=list, description="What the caller was served in the IVR, in order"
    )


class _Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    learned: Learned


class Enqueue(_Outcome):
    type: Literal["enqueue"] = "enqueue"
    queue: str
    skills: list[SkillLevel]
    priority: int
    callback_key: str | None = None
    complaint: bool = False


class CallbackRequested(_Outcome):
    type: Literal["callback"] = "callback"
    queue: str
    number: str


class VoicemailLeft(_Outcome):
    type: Literal["voicemail"] = "voicemail"
    queue: str
    recording_url: str


class Transferred(_Outcome):
    type: Literal["transfer"] = "transfer"
    number: str


class HungUp(_Outcome):
    type: Literal["hang_up"] = "hang_up"
    by: Literal["flow", "caller"]


Outcome = Annotated[
    Enqueue | CallbackRequested | VoicemailLeft | Transferred | HungUp,
    Field(discriminator="type"),
]


class Step(BaseModel):
    model_config = ConfigDict(frozen=True)

    actions: list[Action]
    state: CallState
    outcome: Outcome | None = None
    visited: list[str] = Field(default_factory=list, description="Nodes entered by this step")


def begin(flow: Flow, facts: CallFacts) -> Step:
    """The first step of a call that has just reached the IVR."""
    return advance(flow, CallState(), CallStarted(), facts)


def advance(flow: Flow, state: CallState, event: CallEvent, facts: CallFacts) -> Step:
    """The call's next step after `event`; EventOutOfTurn if it was not waiting for it."""
    if state.ended:
        raise EventOutOfTurn("the IVR's part of this call has ended")
    turn = _Turn(flow, state, facts)
    if isinstance(event, CallerHungUp):
        return turn.end(HungUp(by="caller", learned=turn.learned()))
    if isinstance(event, CallStarted):
        if state.path:
            raise EventOutOfTurn("the call has started already")
        turn.call.language = facts.language or flow.language
        return turn.go(flow.start)
    node = flow.nodes.get(state.node or "")
    match node, event:
        case MenuNode() | CollectNode() | CallbackNode(), DigitsEntered() | NoInput():
            turn.call.inputs += 1
            return turn.answer(node, event)
        case VoicemailNode(), RecordingDone() | NoInput():
            return turn.recorded(node, event)
    waiting = "the call has not started" if node is None else f"the call waits at {state.node!r}"
    raise EventOutOfTurn(f"{waiting}; a {event.type!r} event is out of turn")


class _Turn:
    """One event's work on a copy of the call's state: the actions gathered so far."""

    def __init__(self, flow: Flow, state: CallState, facts: CallFacts) -> None:
        self.flow, self.facts = flow, facts
        self.call = state.model_copy(deep=True)
        self.actions: list[Action] = []
        self.visited: list[str] = []

    def go(self, target: str) -> Step:
        """Enter `target` and move on through the nodes that wait for nothing."""
        for _ in range(len(self.flow.nodes) + 1):
            node = self.flow.nodes[target]
            self.enter(target)
            match node:
                case SayNode():
                    self.say(node.prompts)
                    if node.self_service is not None:
                        served = [*self.call.self_service, node.self_service]
                        self.call.self_service = served[-MAX_SELF_SERVICE:]
                    target = node.next
                case LanguageNode():
                    self.call.language = node.language
                    target = node.next
                case TierBranch():
                    tier = self.facts.tier
                    target = node.default if tier is None else node.tiers.get(tier, node.default)
                case HoursBranch():
                    target = self._by_hours(node)
                case InputBranch():
                    value = self.call.variables.get(node.variable, "")
                    target = node.cases.get(value, node.default)
                case CallbackNode() if self.facts.calling_number is None:
                    target = node.on_decline  # no number to call back
                case MenuNode() | CollectNode() | CallbackNode():
                    self.call.retries_left = 0 if isinstance(node, CallbackNode) else node.retries
                    return self.ask(target, node, node.prompts)
                case VoicemailNode():
                    self.call.node = target
                    prompts = self.spoken(node.prompts)
                    self.actions.append(
                        Record(
                            prompts=prompts,
                            max_seconds=node.max_seconds,
                            finish_on_key=node.finish_on_key,
                        )
                    )
                    return self.step()
                case EnqueueNode() | TransferNode() | HangupNode():
                    return self.finish(node)
        raise FlowStuck(f"the flow went round nodes that wait for nothing, up to {target!r}")

    def enter(self, node_id: str) -> None:
        self.visited.append(node_id)
        self.call.path = [*self.call.path, node_id][-MAX_PATH:]

    def _by_hours(self, node: HoursBranch) -> str:
        match self.facts.hours.get(node.queue, HoursNow.open):
            case HoursNow.open:
                return node.open
            case HoursNow.closed:
                return node.closed
            case HoursNow.holiday:
                return node.holiday or node.closed

    def ask(
        self, node_id: str, node: MenuNode | CollectNode | CallbackNode, prompts: list[Prompt]
    ) -> Step:
        """Wait at `node` for keys, unless the call has given all the inputs it may."""
        if self.call.inputs >= self.flow.max_inputs:
            return self.give_up()
        self.call.node = node_id
        self.actions.append(
            Gather(
                prompts=self.spoken(prompts),
                num_digits=node.max_length if isinstance(node, CollectNode) else 1,
                finish_on_key=node.finish_on_key if isinstance(node, CollectNode) else None,
                timeout_seconds=node.timeout_seconds,
            )
        )
        return self.step()

    def answer(self, node: MenuNode | CollectNode | CallbackNode, event: CallEvent) -> Step:
        digits = event.digits if isinstance(event, DigitsEntered) else None
        if isinstance(node, CallbackNode):
            return self.callback_answer(node, digits)
        if isinstance(node, MenuNode) and digits in node.options:
            self.call.keys = [*self.call.keys, digits][-MAX_KEYS:]
            return self.go(node.options[digits])
        if isinstance(node, CollectNode):
            value = None if digits is None else _entry(node, digits)
            if value is not None:
                self.call.variables[node.variable] = value
                if node.account:
                    self.call.account_verified = True
                return self.go(node.next)
            if node.account and self.call.retries_left == 0:
                self.call.account_verified = False
        return self.retry(node, silent=digits is None)

    def callback_answer(self, node: CallbackNode, digits: str | None) -> Step:
        number = self.facts.calling_number
        if digits != node.confirm_key or number is None:
            return self.go(node.on_decline)
        self.say(node.confirm_prompts)
        self.actions.append(Hangup())
        return self.end(CallbackRequested(queue=node.queue, number=number, learned=self.learned()))

    def retry(self, node: MenuNode | CollectNode, *, silent: bool) -> Step:
        """Ask again after a wrong entry or silence, or take the way out once out of tries."""
        if self.call.retries_left > 0:
            self.call.retries_left -= 1
            sorry = node.no_input_prompts if silent else node.invalid_prompts
            return self.ask(self.call.node or "", node, [*sorry, *node.prompts])
        if silent and node.on_no_input is not None:
            return self.go(node.on_no_input)
        return self.go(node.on_invalid)

    def recorded(self, node: VoicemailNode, event: RecordingDone | NoInput) -> Step:
        if isinstance(event, NoInput):  # nothing was recorded
            self.actions.append(Hangup())
            return self.end(HungUp(by="flow", learned=self.learned()))
        self.say(node.goodbye_prompts)
        self.actions.append(Hangup())
        return self.end(
            VoicemailLeft(queue=node.queue, recording_url=event.url, learned=self.learned())
        )

    def give_up(self) -> Step:
        """The call has given `max_inputs` keys or silences: end it where the flow says."""
        node = self.flow.nodes.get(self.flow.give_up or "")
        if isinstance(node, GIVE_UP_TO):
            self.enter(self.flow.give_up or "")
            return self.finish(node)
        self.actions.append(Hangup())
        return self.end(HungUp(by="flow", learned=self.learned()))

    def finish(self, node: EnqueueNode | TransferNode | HangupNode) -> Step:
        self.say(node.prompts)
        learned = self.learned()
        match node:
            case EnqueueNode():
                outcome: Outcome = Enqueue(
                    queue=node.queue,
                    skills=node.skills,
                    priority=node.priority,
                    callback_key=node.callback_key,
                    complaint=node.complaint,
                    learned=learned,
                )
            case TransferNode():
                self.actions.append(Transfer(number=node.number))
                outcome = Transferred(number=node.number, learned=learned)
            case HangupNode():
                self.actions.append(Hangup())
                outcome = HungUp(by="flow", learned=learned)
        return self.end(outcome)

    def say(self, prompts: list[Prompt]) -> None:
        self.actions.extend(self.spoken(prompts))

    def spoken(self, prompts: list[Prompt]) -> list[Say | Play]:
        """The prompts in the call's language (and those marked `always`); all of them when
        none is in its language, rather than silence."""
        language = self.call.language or self.flow.language
        chosen = [p for p in prompts if p.always or (p.language or self.flow.language) == language]
        return [self._action(prompt) for prompt in chosen or prompts]

    def _action(self, prompt: Prompt) -> Say | Play:
        if isinstance(prompt, PlayPrompt):
            return Play(url=prompt.url)
        language = prompt.language or self.flow.language
        voice = prompt.voice or self.flow.voices.get(language)
        return Say(text=prompt.text, language=language, voice=voice)

    def learned(self) -> Learned:
        return Learned(
            path=self.call.path,
            keys=self.call.keys,
            collected=self.call.variables,
            account_verified=self.call.account_verified,
            language=self.call.language or self.flow.language,
            self_service=self.call.self_service,
        )

    def step(self) -> Step:
        return Step(actions=self.actions, state=self.call, visited=self.visited)

    def end(self, outcome: Outcome) -> Step:
        self.call.node, self.call.ended = None, True
        return Step(actions=self.actions, state=self.call, outcome=outcome, visited=self.visited)


_DIGITS = re.compile(r"[0-9]+")


def _entry(node: CollectNode, digits: str) -> str | None:
    """What the caller typed at a collect node, if it passes the node's checks."""
    if node.finish_on_key is not None:
        digits = digits.removesuffix(node.finish_on_key)
    if not _DIGITS.fullmatch(digits) or not node.min_length <= len(digits) <= node.max_length:
        return None
    if node.check == "luhn" and not luhn_valid(digits):
        return None
    if node.pattern is not None and re.fullmatch(node.pattern, digits) is None:
        return None
    return digits

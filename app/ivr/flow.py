"""An IVR flow as data: the document an admin writes, checked for its shape. Pure.

A flow is a `start` node id and `nodes` keyed by id; each node has a `type`:

- `say` plays prompts and goes on; `language` sets the language the call is spoken in;
- `menu` asks for one key (options, retries, invalid-input and no-input branches);
- `collect` asks for digits (an account number: length, a Luhn check or a pattern) into a
  variable;
- `branch_tier`, `branch_hours`, `branch_input` choose the next node from the caller's tier,
  the queue's hours now, or a collected variable;
- `enqueue`, `callback`, `voicemail`, `transfer` and `hangup` end the IVR's part of the call.

Every string is bounded and refuses NUL (app/core/inputs.py), as the document arrives over the
API. Whether the nodes fit together (targets exist, every node is reachable, every loop has an
exit) is app/ivr/validate.py's; what a call does at each node is app/ivr/engine.py's.
docs/ivr.md shows each node with an example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from app.core.inputs import REFUSES_NUL
from app.customers.models import Tier
from app.ivr.actions import Language
from app.ivr.checks import check_pattern
from app.queues.schemas import QueueName
from app.skills.schemas import SkillLevel

NodeId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$"),
    REFUSES_NUL,
]
PromptText = Annotated[str, StringConstraints(min_length=1, max_length=2000), REFUSES_NUL]
VoiceName = Annotated[str, StringConstraints(min_length=1, max_length=64), REFUSES_NUL]
AudioUrl = Annotated[
    str, StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://\S+$"), REFUSES_NUL
]
Key = Annotated[str, StringConstraints(max_length=1, pattern=r"^[0-9*#]$"), REFUSES_NUL]
E164 = Annotated[
    str, StringConstraints(max_length=16, pattern=r"^\+[1-9][0-9]{1,14}$"), REFUSES_NUL
]
VariableName = Annotated[
    str, StringConstraints(max_length=32, pattern=r"^[a-z][a-z0-9_]{0,31}$"), REFUSES_NUL
]
# What a caller can type: keys of a phone's keypad, at most as many as a gateway gathers.
KeyedValue = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[0-9*#]+$"), REFUSES_NUL
]
SelfServiceLabel = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), REFUSES_NUL
]
CheckPattern = Annotated[str, StringConstraints(min_length=1, max_length=200), REFUSES_NUL]

MAX_DIGITS = 32  # the most keys a collect node takes (actions.Gather's num_digits bound)


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SayPrompt(_Part):
    """Text spoken by the gateway's text to speech."""

    text: PromptText
    language: Language | None = Field(
        default=None, description="The language it is spoken in; null: the flow's `language`"
    )
    voice: VoiceName | None = Field(
        default=None, description="A gateway's voice (Polly.Joanna); null: the flow's voice"
    )
    always: bool = Field(
        default=False,
        description="Played whatever the call's language (a bilingual welcome, a language hint)",
    )


class PlayPrompt(_Part):
    """A recording the gateway fetches and plays."""

    url: AudioUrl
    language: Language | None = Field(
        default=None, description="The language it speaks; null: the flow's `language`"
    )
    always: bool = False


def _prompt_kind(value: Any) -> str:
    """A prompt with a `url` is a recording, any other is text: no `type` to write."""
    if isinstance(value, dict):
        return "play" if "url" in value else "say"
    return "play" if isinstance(value, PlayPrompt) else "say"


Prompt = Annotated[
    Annotated[SayPrompt, Tag("say")] | Annotated[PlayPrompt, Tag("play")],
    Discriminator(_prompt_kind),
]
Prompts = Annotated[list[Prompt], Field(max_length=10)]
SomePrompts = Annotated[list[Prompt], Field(min_length=1, max_length=10)]
Retries = Annotated[int, Field(ge=0, le=5, description="Tries after the first")]
Timeout = Annotated[int, Field(ge=1, le=60, description="Seconds of silence that end a try")]


class SayNode(_Part):
    """Play `prompts`, then go to `next`. `self_service` names what the caller was served
    here (a balance read out, the opening hours), for the agent's screen pop."""

    type: Literal["say"]
    prompts: SomePrompts
    next: NodeId
    self_service: SelfServiceLabel | None = None


class LanguageNode(_Part):
    """From here on, prompts are played in `language` (the caller chose it)."""

    type: Literal["language"]
    language: Language
    next: NodeId


class MenuNode(_Part):
    """Ask for one key. A key not in `options`, or silence, tries again (`retries` times,
    after `invalid_prompts` or `no_input_prompts`), then goes to `on_invalid` or
    `on_no_input` (null: `on_invalid`)."""

    type: Literal["menu"]
    prompts: SomePrompts
    options: dict[Key, NodeId] = Field(min_length=1, max_length=12)
    timeout_seconds: Timeout = 5
    retries: Retries = 2
    invalid_prompts: Prompts = Field(default_factory=list)
    no_input_prompts: Prompts = Field(default_factory=list)
    on_invalid: NodeId
    on_no_input: NodeId | None = None


class CollectNode(_Part):
    """Ask for digits (ended by `finish_on_key` or at `max_length`), kept in `variable`
    when they pass: `min_length` to `max_length` digits, the Luhn check if asked, the
    `pattern` if given. Failures try again like a menu's, then go to `on_invalid`."""

    type: Literal["collect"]
    prompts: SomePrompts
    variable: VariableName
    min_length: Annotated[int, Field(ge=1, le=MAX_DIGITS)] = 1
    max_length: Annotated[int, Field(ge=1, le=MAX_DIGITS)] = MAX_DIGITS
    finish_on_key: Key | None = "#"
    check: Literal["luhn"] | None = Field(
        default=None, description="luhn: the last digit is the Luhn check digit of the others"
    )
    pattern: CheckPattern | None = Field(
        default=None,
        description="A regular expression the whole entry must match (^[1-9][0-9]{7}$); "
        "at most three repetitions, none inside another, no look-arounds or back-references",
    )
    account: bool = Field(
        default=False,
        description="This is the caller's account number: what the IVR learned says whether "
        "it passed the check (`account_verified`)",
    )
    timeout_seconds: Timeout = 5
    retries: Retries = 2
    invalid_prompts: Prompts = Field(default_factory=list)
    no_input_prompts: Prompts = Field(default_factory=list)
    next: NodeId
    on_invalid: NodeId
    on_no_input: NodeId | None = None

    @field_validator("pattern")
    @classmethod
    def _safe_pattern(cls, value: str | None) -> str | None:
        return None if value is None else check_pattern(value)

    @model_validator(mode="after")
    def _lengths_in_order(self) -> CollectNode:
        if self.min_length > self.max_length:
            raise ValueError(
                f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})"
            )
        return self


class TierBranch(_Part):
    """Go where the caller's tier says (platinum and gold may skip the menu); a tier not
    listed, or a caller not known, goes to `default`."""

    type: Literal["branch_tier"]
    tiers: dict[Tier, NodeId] = Field(min_length=1, max_length=4)
    default: NodeId


class HoursBranch(_Part):
    """Go where `queue`'s business hours are now: open, closed, or a holiday (null: as
    closed). The engine is told which (app/ivr/engine.py `CallFacts.hours`)."""

    type: Literal["branch_hours"]
    queue: QueueName
    open: NodeId
    closed: NodeId
    holiday: NodeId | None = None


class InputBranch(_Part):
    """Go where the value collected in `variable` says; anything else goes to `default`."""

    type: Literal["branch_input"]
    variable: VariableName
    cases: dict[KeyedValue, NodeId] = Field(min_length=1, max_length=20)
    default: NodeId


class EnqueueNode(_Part):
    """Hand the call to `queue` (with extra `skills` and a `priority`), after `prompts`. While
    the caller holds, `callback_key` (if set) turns the wait into a callback at the calling
    number that keeps the caller's place. `complaint`: the caller chose to complain (the
    menu's complaints option), so the call raises a complaint at step 1 as it is queued, for
    the agent who takes it (docs/complaints.md)."""

    type: Literal["enqueue"]
    queue: QueueName
    skills: list[SkillLevel] = Field(default_factory=list, max_length=20)
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    prompts: Prompts = Field(default_factory=list)
    callback_key: Key | None = None
    complaint: bool = False


class CallbackNode(_Part):
    """Offer a callback: `confirm_key` asks for one to `queue` at the calling number, after
    `confirm_prompts`; any other key, silence, or a number we cannot see go to `on_decline`."""

    type: Literal["callback"]
    queue: QueueName
    prompts: SomePrompts
    confirm_key: Key = "1"
    timeout_seconds: Timeout = 5
    confirm_prompts: Prompts = Field(default_factory=list)
    on_decline: NodeId


class VoicemailNode(_Part):
    """Record a message of at most `max_seconds` after `prompts`; it becomes a callback in
    `queue`. `goodbye_prompts` are played before hanging up."""

    type: Literal["voicemail"]
    queue: QueueName
    prompts: SomePrompts
    max_seconds: Annotated[int, Field(ge=1, le=600)] = 120
    finish_on_key: Key | None = "#"
    goodbye_prompts: Prompts = Field(default_factory=list)


class TransferNode(_Part):
    """Send the call to an outside number (E.164), after `prompts`."""

    type: Literal["transfer"]
    number: E164
    prompts: Prompts = Field(default_factory=list)


class HangupNode(_Part):
    """Play `prompts` and hang up."""

    type: Literal["hangup"]
    prompts: Prompts = Field(default_factory=list)


Node = Annotated[
    SayNode
    | LanguageNode
    | MenuNode
    | CollectNode
    | TierBranch
    | HoursBranch
    | InputBranch
    | EnqueueNode
    | CallbackNode
    | VoicemailNode
    | TransferNode
    | HangupNode,
    Field(discriminator="type"),
]

# Nodes that end the IVR's part of a call (a callback node may also lead on, when declined).
ENDINGS = (EnqueueNode, CallbackNode, VoicemailNode, TransferNode, HangupNode)
# Nodes that wait for the caller (keys, silence or a recording) before the call moves on.
WAITING = (MenuNode, CollectNode, CallbackNode, VoicemailNode)
# Where a call may be sent when it has taken too many inputs: nodes that end at once.
GIVE_UP_TO = (EnqueueNode, TransferNode, HangupNode)


def targets(node: Node) -> dict[str, str]:
    """The nodes `node` may go to, by the field that names each (`options.1`, `on_invalid`)."""
    found: dict[str, str | None] = {}
    match node:
        case SayNode() | LanguageNode():
            found["next"] = node.next
        case MenuNode():
            found.update({f"options.{key}": target for key, target in node.options.items()})
            found.update(on_invalid=node.on_invalid, on_no_input=node.on_no_input)
        case CollectNode():
            found.update(next=node.next, on_invalid=node.on_invalid, on_no_input=node.on_no_input)
        case TierBranch():
            found.update({f"tiers.{tier.value}": target for tier, target in node.tiers.items()})
            found["default"] = node.default
        case HoursBranch():
            found.update(open=node.open, closed=node.closed, holiday=node.holiday)
        case InputBranch():
            found.update({f"cases.{value}": target for value, target in node.cases.items()})
            found["default"] = node.default
        case CallbackNode():
            found["on_decline"] = node.on_decline
    return {field: target for field, target in found.items() if target is not None}


class Flow(_Part):
    """An IVR flow: where a call starts, and the nodes it moves through."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start": "welcome",
                    "nodes": {
                        "welcome": {
                            "type": "say",
                            "prompts": [{"text": "Welcome to Example."}],
                            "next": "front_desk",
                        },
                        "front_desk": {"type": "enqueue", "queue": "general"},
                    },
                }
            ]
        }
    )

    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1, max_length=200)
    language: Language = Field(
        default=Language.en_us, description="What a call is spoken in until a `language` node"
    )
    voices: dict[Language, VoiceName] = Field(
        default_factory=dict, description="The voice each language is spoken with by default"
    )
    max_inputs: Annotated[int, Field(ge=1, le=100)] = Field(
        default=20,
        description="Keys or silences a call may give in all; then it goes to `give_up`",
    )
    give_up: NodeId | None = Field(
        default=None,
        description="An enqueue, transfer or hangup node for a call past `max_inputs` "
        "(null: hang up)",
    )

    def queues_named(self) -> set[str]:
        """The queues the flow names: the caller of the engine says which are open now."""
        return {
            node.queue
            for node in self.nodes.values()
            if isinstance(node, HoursBranch | EnqueueNode | CallbackNode | VoicemailNode)
        }


DEMO_FLOW_FILE = Path(__file__).with_name("demo_flow.json")


def demo_flow() -> Flow:
    """The demo's default flow (app/demo.py loads it; docs/ivr.md walks through it)."""
    return Flow.model_validate_json(DEMO_FLOW_FILE.read_text(encoding="utf-8"))

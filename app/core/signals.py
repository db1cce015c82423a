"""Signals: what passes between sockets and is never kept, on every replica (a chat's typing
indicator, a message's receipt).

Messages are events, kept in the log and replayed to a socket that reconnects; a typing dot is
not history, and a receipt is kept on its message (`delivered_at`, `read_at`), so neither is
written to the log. A signal goes by PostgreSQL's NOTIFY on a channel of its own
(`SIGNAL_CHANNEL`), sent and heard by each replica's event hub on the connection it already
listens on (app/core/hub.py: `EventHub.signal`, `EventHub.signals`): a signal sent on one
replica reaches the sockets on all of them, its own included. Best effort: a signal sent while
a hub reconnects is lost, which costs a typing dot, never a message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.core.logging import get_logger

log = get_logger(__name__)

SIGNAL_CHANNEL = "cc_signals"
# NOTIFY's payload holds under 8,000 bytes: a signal is small (a kind, an id or two).
SIGNAL_LIMIT = 7000


@dataclass(frozen=True, slots=True)
class Signal:
    """`kind` (e.g. `chat.typing`) about `topic` (whose sockets hear it: a chat's interaction
    id), with a small payload."""

    topic: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        text = json.dumps({"topic": self.topic, "kind": self.kind, "payload": self.payload})
        if len(text.encode()) > SIGNAL_LIMIT:
            raise ValueError(f"a signal is at most {SIGNAL_LIMIT} bytes: {self.kind} is larger")
        return text


def decode(text: str) -> Signal | None:
    """The signal a NOTIFY carried; None for a payload that is not one."""
    try:
        raw = json.loads(text)
        return Signal(str(raw["topic"]), str(raw["kind"]), dict(raw.get("payload") or {}))
    except (ValueError, KeyError, TypeError):
        return None


def chat_topic(interaction_id: object) -> str:
    """What a chat's customer socket hears: the agent typing, receipts of the agent's lines."""
    return f"chat:{interaction_id}"


def agent_topic(agent_id: object) -> str:
    """What an agent's desk hears: its chats' customers typing, receipts of its lines."""
    return f"agent:{agent_id}"


Handler = Callable[[Signal], None]


@dataclass(eq=False)
class Listening:
    """One handler's hold on a topic, given back to `SignalBoard.stop`."""

    topic: str
    handler: Handler


class SignalBoard:
    """The handlers of this replica, by topic. A handler runs on the loop and must not wait
    (a socket's `send` queues)."""

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Listening]] = {}

    def listen(self, topic: str, handler: Handler) -> Listening:
        listening = Listening(topic, handler)
        self._by_topic.setdefault(topic, set()).add(listening)
        return listening

    def stop(self, listening: Listening) -> None:
        held = self._by_topic.get(listening.topic)
        if held is not None:
            held.discard(listening)
            if not held:
                del self._by_topic[listening.topic]

    def deliver(self, signal: Signal) -> None:
        for listening in list(self._by_topic.get(signal.topic, ())):
            try:
                listening.handler(signal)
            except Exception:  # one socket's trouble is not the others'
                log.exception("a signal's handler failed", kind=signal.kind)

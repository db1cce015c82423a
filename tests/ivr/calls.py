"""Helpers the IVR tests share: flows written briefly, calls run event by event."""

from __future__ import annotations

from typing import Any

from app.ivr.actions import Action, Gather, Play, Record, Say
from app.ivr.engine import CallEvent, CallFacts, Step, advance, begin
from app.ivr.flow import Flow, demo_flow
from app.ivr.validate import problems

DEMO_FLOW = demo_flow()


def say(*texts: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"text": text, **extra} for text in texts]


def flow(nodes: dict[str, dict[str, Any]], *, start: str | None = None, **extra: Any) -> Flow:
    """A flow from plain dicts, starting at the first node unless told; checked to be valid."""
    built = Flow.model_validate({"start": start or next(iter(nodes)), "nodes": nodes, **extra})
    assert problems(built) == [], problems(built)
    return built


def call(built: Flow, *events: CallEvent, facts: CallFacts | None = None) -> list[Step]:
    """Every step of a call: its start, then one per event."""
    facts = facts or CallFacts()
    steps = [begin(built, facts)]
    for event in events:
        steps.append(advance(built, steps[-1].state, event, facts))
    return steps


def heard(actions: list[Action]) -> list[str]:
    """What the caller hears, in order: the texts said and the URLs played, prompts included."""
    found: list[str] = []
    for action in actions:
        prompts: list[Say | Play] = (
            list(action.prompts) if isinstance(action, Gather | Record) else []
        )
        if isinstance(action, Say | Play):
            prompts = [action]
        found += [p.text if isinstance(p, Say) else p.url for p in prompts]
    return found

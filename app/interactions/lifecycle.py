"""Which state an interaction may move to from which. Pure.

queued ──offer──▶ offered ──accept──▶ assigned ──complete──▶ wrap_up ──end──▶ completed
  ▲                 │                   │  └──complete (no wrap-up)──────────▶ completed
  ├──reject/timeout─┘                   ├──transfer to a queue──▶ queued (new queue)
  └──the agent's phone never answered───┘  (its place in line kept)
queued/offered ──caller hangs up──▶ abandoned      queued ──sweeper──▶ expired
queued/offered ──caller takes a callback instead──▶ converted
queued/assigned ──transfer out of the contact center──▶ transferred_out

A caller who hangs up during the talk ends the talk: assigned ──▶ wrap_up (app/routing/line.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from app.core.errors import IllegalTransition
from app.interactions.models import TERMINAL_STATES, InteractionState

S = InteractionState

ALLOWED: dict[InteractionState, frozenset[InteractionState]] = {
    S.queued: frozenset({S.offered, S.abandoned, S.expired, S.transferred_out, S.converted}),
    S.offered: frozenset({S.assigned, S.queued, S.abandoned, S.converted}),
    S.assigned: frozenset({S.wrap_up, S.completed, S.queued, S.transferred_out}),
    S.wrap_up: frozenset({S.completed}),
    **{state: frozenset() for state in TERMINAL_STATES},
}


def can_move(current: InteractionState, target: InteractionState) -> bool:
    return target in ALLOWED[current]


def ensure_can_move(current: InteractionState, target: InteractionState, *, what: str) -> None:
    if not can_move(current, target):
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current])) or "nothing (it has ended)"
        raise IllegalTransition(
            f"cannot {what}: the interaction is {current.value}; from there it may go to {allowed}"
        )


def move_payload(
    source: InteractionState,
    agent_id: uuid.UUID | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload of an `interaction.<state>` event: where it came from, who holds it."""
    return {
        "from": source.value,
        "agent_id": None if agent_id is None else str(agent_id),
        **(extra or {}),
    }

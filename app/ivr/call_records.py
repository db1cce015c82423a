"""A live call's row while an event is applied to it: found and locked, its answers counted in
turns, its deliveries remembered, its end recorded.

A gateway retries: the same request may come twice, or late. Every answer is a new `turn`
(Twilio's callback URLs carry it), and the latest deliveries (a generic gateway's event ids,
Twilio's step and turn) are kept with the call, so a delivery seen before, or a request for a
turn the call has left behind, is answered with the last answer and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import IllegalTransition, NotFound
from app.core.logging import get_logger
from app.ivr.actions import Action
from app.ivr.models import Call, CallOutcome, CallPhase, Gateway

log = get_logger(__name__)

ACTIONS = TypeAdapter(list[Action])
DELIVERIES_KEPT = 20  # a retry comes soon after its first delivery: the latest are enough


class UnknownCall(NotFound):
    code = "unknown_call"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway does next: `actions` in order, for the call's `turn` (Twilio's callback
    URLs carry it). `repeat`: a delivery seen before, answered as then."""

    call_id: uuid.UUID
    call_ref: str
    turn: int
    actions: list[Action]
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class CallKey:
    """How a request names its call: the gateway's id, with our id when the request carries it
    (Twilio's callback URLs), and the turn it answers (an older one is a retry)."""

    gateway: Gateway
    call_ref: str
    call_id: uuid.UUID | None = None
    turn: int | None = None


class AgentLeg:
    """How the agent's leg of a `connect` ended, in the switchboard's words."""

    answered_and_over = "completed"
    busy = "busy"
    no_answer = "no_answer"
    failed = "failed"
    canceled = "canceled"

    NEVER_ANSWERED = frozenset({busy, no_answer, failed, canceled})


async def locked(session: AsyncSession, key: CallKey) -> Call:
    """The call, locked for this event; 404 for a call we never saw (or one another gateway's
    request names)."""
    query = select(Call).where(Call.gateway == key.gateway, Call.call_ref == key.call_ref)
    if key.call_id is not None:
        query = query.where(Call.id == key.call_id)
    call = await session.scalar(query.with_for_update())
    if call is None:
        raise UnknownCall(
            f"no {key.gateway.value} call {key.call_ref!r}"
            + ("" if key.call_id is None else f" with id {key.call_id}")
            + ": a call starts with its incoming request"
        )
    return call


async def claim(session: AsyncSession, call: Call) -> bool:
    """Write a new call's row at once; False when a concurrent delivery of its start wrote it
    first (the unique gateway and id wait for that one's commit): its row is then the answer."""
    try:
        async with session.begin_nested():
            session.add(call)
            await session.flush()
    except IntegrityError as error:
        if "uq_calls_gateway_call_ref" not in str(error.orig):
            raise
        return False
    return True


async def by_ref(session: AsyncSession, gateway: Gateway, call_ref: str) -> Call | None:
    """The call a gateway's id names, locked, if we know it."""
    query = select(Call).where(Call.gateway == gateway, Call.call_ref == call_ref)
    return await session.scalar(query.with_for_update())


async def of_interaction(session: AsyncSession, interaction_id: uuid.UUID) -> Call | None:
    """The call an interaction came from, locked, if it came from one."""
    query = select(Call).where(Call.interaction_id == interaction_id)
    return await session.scalar(query.with_for_update())


def answer(call: Call, actions: Sequence[Action]) -> Answer:
    """A new turn: its actions kept as the call's last answer."""
    call.turn += 1
    call.last_answer = [action.model_dump(mode="json") for action in actions]
    return Answer(call.id, call.call_ref, call.turn, list(actions))


def repeat(call: Call) -> Answer:
    """The last answer again, for a retry."""
    actions = ACTIONS.validate_python(call.last_answer)
    return Answer(call.id, call.call_ref, call.turn, actions, repeat=True)


def seen(call: Call, key: CallKey, delivery: str | None) -> bool:
    """A delivery applied before, or a request for a turn the call has left behind."""
    stale = key.turn is not None and key.turn != call.turn
    return stale or (delivery is not None and delivery in call.deliveries)


def note(call: Call, delivery: str | None) -> None:
    if delivery is not None:
        call.deliveries = [*call.deliveries, delivery][-DELIVERIES_KEPT:]


def end(call: Call, outcome: str, *, cause: str | None = None) -> None:
    """The call is over: how (`hang_up`, `transfer`, `callback`, `voicemail`, `abandoned`,
    `answered`) and, when the line said, why."""
    call.phase, call.outcome = CallPhase.ended, CallOutcome(outcome).value
    call.ended_at, call.end_cause = datetime.now(UTC), cause


async def tolerating_moves(move: Awaitable[object]) -> None:
    """Carry out a routing move that a race may have made moot (the agent completed, the
    supervisor moved the work): the line's news is then history, not an error."""
    try:
        await move
    except IllegalTransition as error:
        log.info("a call's news found its interaction moved on", reason=str(error))

"""Connecting an accepted call: when an agent accepts a call's offer, its caller is bridged to the
agent's voice endpoint within a second; when an agent accepts a callback a Twilio call left, the
call back is placed (app/ivr/callbacks.py).

The acceptance is routing's one autocommitted statement (app/routing/decisions.sql), on the
desk's hot path; wrapping it in a transaction to write the gateway's message beside it would
cost every accept of every channel. Instead each replica's `Bridge` hears `interaction.assigned`
on its event hub (its own accepts at once, the others' by NOTIFY or poll) and has the switchboard
connect the call: the call's row lock and phase let one replica through, and the outbox
message's key (`bridge:<interaction>:<event>`) makes it one message however many try. If every
replica missed the event (an overflow, a crash at the wrong moment), the wait loop's next round
finds the call assigned and connects it (`Switchboard.hold`): late, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg

from app.core import pg
from app.core.channels import Channel
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.ivr.calls import Switchboard

log = get_logger(__name__)


# A call of ours waiting for this interaction's agent (the partial index on interaction_id).
CALL_WAITING = "SELECT EXISTS (SELECT FROM calls WHERE interaction_id = $1 AND phase = 'queued')"
CALL_CHANNELS = frozenset({Channel.voice.value, Channel.callback.value})


def _is_acceptance(event: EventRecord) -> bool:
    """An agent accepted an offer that may be a call's (this replica's own acceptances carry
    the interaction, so a chat's or an email's costs nothing here; others' are looked up)."""
    if event.kind != "interaction.assigned" or event.agent_id is None:
        return False
    channel = event.attached.get("interaction", {}).get("channel")
    return channel is None or channel in CALL_CHANNELS


class Bridge:
    """One per replica (started and stopped by main's lifespan)."""

    def __init__(self, hub: EventHub, switchboard: Switchboard, pool: asyncpg.Pool) -> None:
        self._hub, self._switchboard, self._pool = hub, switchboard, pool
        self._task: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    def start(self) -> None:
        self._subscription = self._hub.subscribe(_is_acceptance)
        self._task = asyncio.create_task(self._run(self._subscription), name="voice-bridge")

    async def stop(self) -> None:
        if self._subscription is not None:
            self._hub.unsubscribe(self._subscription)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, subscription: Subscription) -> None:
        while True:
            if subscription.overflowed.is_set():
                # The wait loop connects what was missed; the queue starts afresh.
                while not subscription.queue.empty():
                    subscription.queue.get_nowait()
                subscription.overflowed.clear()
                log.warning("voice bridge missed acceptances: the wait loop will connect them")
            event = await subscription.queue.get()
            try:
                if not await self._may_be_waiting(event):
                    continue
                await self._switchboard.bridge(
                    uuid.UUID(event.subject_id), uuid.UUID(str(event.agent_id)), event.id
                )
            except Exception as error:  # a failed bridge is the wait loop's to connect
                log.warning(
                    "could not bridge an accepted call",
                    interaction_id=event.subject_id,
                    error=type(error).__name__,
                )

    async def _may_be_waiting(self, event: EventRecord) -> bool:
        """Whether a call waits for this acceptance: one indexed read on the hot pool, so that
        the voice work intake takes from elsewhere (no call of ours) costs no unit of work.
        A callback's acceptance always goes on (it may be one to place)."""
        channel = event.attached.get("interaction", {}).get("channel")
        if channel == Channel.callback.value:
            return True
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            found = await connection.fetchval(CALL_WAITING, uuid.UUID(event.subject_id))
        return bool(found) or channel is None

"""The matcher's loop: when to run a pass, on the replica that leads.

Every replica runs one `Matcher`; only the leader's runs passes (app/routing/leadership.py), so
passes never overlap across replicas. A pass runs when an event says work arrived or capacity
was freed while work waits, and on a tick for timeouts and aging; once a tick the leader also
runs the upkeep (app/routing/sweeper.py). A pass itself is app/routing/passes.py; the event hub
on every replica carries each offer to the agent's socket. DESIGN.md section 3 lists the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from app.core.events import Events
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.instruments import MATCHER_PASS_SECONDS
from app.core.logging import get_logger
from app.routing import passes, policy
from app.routing.directory import AgentDirectory
from app.routing.leadership import Lead
from app.routing.offers import OfferWriter
from app.routing.passes import PassResult
from app.routing.sweeper import run_upkeep
from app.routing.waiting import QueueBook, QueueSettings

log = get_logger(__name__)

# Events after which a pass may find new pairs: work arrived, or an agent has room again.
WAKING_KINDS = frozenset(
    {
        "interaction.queued",
        "interaction.completed",
        "interaction.wrap_up",
        "interaction.transferred_out",
        "interaction.abandoned",
        "interaction.converted",
        # A supervisor's: waiting work moved to another queue, or its priority changed.
        "interaction.moved",
        "interaction.priority_changed",
        "agent.state_changed",
        "agent.updated",
        "agent.skills_changed",
    }
)


# New work: always worth a pass. The other waking kinds only free capacity or change agents,
# which can make new pairs only while something waits (see Matcher._listen).
NEW_WORK = "interaction.queued"
# Waiting work that a supervisor moved or reordered: worth a pass, as new work is.
REORDERED = frozenset({"interaction.moved", "interaction.priority_changed"})

# Skill names are kept by the agent directory: a renamed or removed skill makes it forget.
CATALOGUE_KINDS = frozenset({"skill.updated", "skill.deleted"})

# Changes of state that free no capacity; waking a pass for them is work for nothing.
NON_FREEING_STATES = frozenset({"busy", "away", "offline"})


def may_find_new_pairs(event: EventRecord) -> bool:
    if event.kind not in WAKING_KINDS:
        return False
    return not (
        event.kind == "agent.state_changed" and event.payload.get("to") in NON_FREEING_STATES
    )


@dataclass(frozen=True, slots=True)
class ArrivalView:
    """The leader's routing state between passes, for an arrival matched as it comes in."""

    directory: AgentDirectory
    queues: dict[uuid.UUID, QueueSettings]
    left: tuple[policy.WaitingInteraction, ...]  # what the last pass read and did not offer
    silence: timedelta


class Matcher:
    """Runs passes in the background: on every waking event, and on a tick for timeouts/aging.

    Every replica runs one; the one that holds the lead (`Lead`) runs passes. A pass needs no
    BEGIN, lock and COMMIT of its own (app/routing/passes.py). `writer` writes the offers, with
    the details the desks want read alongside (main gives it the screen pop).
    """

    def __init__(
        self,
        database_url: str,
        hub: EventHub,
        *,
        tick: float,
        silence: timedelta,
        sweep_every: float = 1.0,
        writer: OfferWriter | None = None,
        lead: Lead | None = None,
    ) -> None:
        self._lead = lead or Lead(database_url, hub, tick=tick)
        self._writer = writer or OfferWriter()
        self._directory = AgentDirectory()
        self._book = QueueBook()
        self._hub = hub
        self._tick = tick
        self._silence = silence
        self._sweep_every = sweep_every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._last_sweep = 0.0
        self._last_timeouts = 0.0
        # What the last pass left waiting; until a pass says, work is taken to wait.
        self._last = PassResult(offers=0, left_unread=True)
        self._unread = 0  # interactions queued here since the last pass began
        self._woken_for: dict[str, float] = {}  # interaction id -> when woken for it
        self._stopping = False

    @property
    def leading(self) -> bool:
        return self._lead.leading

    def wake(self, *, queued: uuid.UUID | None = None) -> None:
        """Run a pass soon. `queued`: the interaction just committed here, whose own event,
        when the hub brings it, then needs no second pass."""
        if queued is not None:
            self._expect(queued)
            self._unread += 1
        self._wake.set()

    def arrival_view(self, queues_version: str | None) -> ArrivalView | None:
        """What a new arrival may be matched against at once (app.routing.arrivals): None
        unless this replica leads, the queues' settings it keeps are of `queues_version`, and
        no interaction queued here since the last pass began waits to be read (an arrival
        would only find it queued ahead of it: under load, passes match in batches), nor
        while the last pass left work unread (it cannot be weighed against it)."""
        if not self._lead.leading or self._unread or self._last.left_unread:
            return None
        queues = self._book.current(queues_version)
        if queues is None:
            return None
        return ArrivalView(self._directory, queues, self._last.left, self._silence)

    def placed(self, interaction_id: uuid.UUID) -> None:
        """An arrival was offered as it came in: its `interaction.queued`, when the hub brings
        it, needs no pass."""
        self._expect(interaction_id)

    def _expect(self, interaction_id: uuid.UUID) -> None:
        """The `interaction.queued` of this interaction needs no pass of its own."""
        if len(self._woken_for) > 10_000:  # events lost in an overflow: start afresh
            self._woken_for.clear()
        self._woken_for[str(interaction_id)] = time.monotonic()

    def wake_if_waiting(self) -> None:
        """Capacity may have been freed here: a pass helps only if work is waiting."""
        if self._last.left_waiting:
            self._wake.set()

    def start(self) -> None:
        subscription = self._hub.subscribe(
            lambda event: (
                event.agent_id is not None
                or event.kind in CATALOGUE_KINDS
                or may_find_new_pairs(event)
            )
        )
        self._listener = asyncio.create_task(self._listen(subscription), name="matcher-wake")
        self._task = asyncio.create_task(self._run(), name="matcher")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [task for task in (self._listener, self._task) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # A cancel that lands inside a database call can come back as a database error;
            # the flag ends the loop then, and the timeout keeps shutdown bounded regardless.
            await asyncio.wait(tasks, timeout=5)
        await self._lead.resign()

    async def _listen(self, subscription: Subscription) -> None:
        """Any waking event wakes a pass; a pass reads everything, so missed events cost nothing
        (events missed in an overflow may have renamed a skill: the directory forgets then)."""
        while True:
            if subscription.overflowed.is_set():
                while not subscription.queue.empty():
                    subscription.queue.get_nowait()
                subscription.overflowed.clear()
                self._directory.forget()
                self._wake.set()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps the wait in a task
            # of its own, one per event heard and one per pass.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    event = await subscription.queue.get()
                self._heard(event)

    def _heard(self, event: EventRecord) -> None:
        with contextlib.suppress(ValueError):  # an event naming no agent id in good form
            if (agent_id := event.agent_id) is not None:
                self._directory.mark([uuid.UUID(agent_id)])
        if event.kind in CATALOGUE_KINDS:
            self._directory.forget()
        elif not may_find_new_pairs(event):
            return
        # Freed capacity with nothing waiting makes no pair: at 50 interactions a second that
        # skips two of every three passes. Work that arrives later wakes a pass by its own
        # event, and the tick runs one regardless.
        woken_at = self._woken_for.pop(event.subject_id, None)
        if event.kind == NEW_WORK and woken_at and time.monotonic() - woken_at < 1.0:
            pass  # the pass after that wake read it already
        elif event.kind == NEW_WORK or event.kind in REORDERED or self._last.left_waiting:
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._turn(loop.time())
            except Exception as error:  # a failed pass is retried on the next tick
                if self._stopping:
                    return
                log.exception("matcher pass failed", error=repr(error))
                await self._lead.resign()
                await asyncio.sleep(0.2)

    async def _turn(self, moment: float) -> None:
        """The upkeep when due, then a pass, if this replica leads."""
        held = await self._lead.hold(moment)
        if held is None or held[1]:  # only the leader's passes say what waits
            self._last = PassResult(offers=0)
            self._unread = 0
        if held is None:
            return
        connection, gained = held
        if gained:
            self._directory.forget()  # kept from before, while another replica routed
        unread = self._unread  # committed already: this pass reads them
        await self._upkeep(connection, moment)
        events = Events()
        reader = await self._lead.reader()
        started = time.perf_counter()
        result = await passes.run_pass(
            connection,
            events,
            self._directory,
            self._book,
            self._writer,
            silence=self._silence,
            reader=reader,
        )
        MATCHER_PASS_SECONDS.observe(time.perf_counter() - started)
        self._hub.publish(events.written)
        self._last = result
        self._unread -= unread
        if not self._unread:  # arrivals may be matched at once: build it now
            self._directory.standing(self._silence)
        if result.skipped:  # its agents are marked: the next pass reads them afresh
            self._wake.set()

    async def _upkeep(self, connection: asyncpg.Connection, started: float) -> None:
        sweep = started - self._last_sweep >= self._sweep_every
        timeouts = started - self._last_timeouts >= self._tick
        if not (sweep or timeouts):
            return
        events = Events()
        async with connection.transaction():
            await run_upkeep(
                connection, events, silence=self._silence, sweep=sweep, timeouts=timeouts
            )
            await events.write(connection)
        self._hub.publish(events.written)
        if sweep:
            self._last_sweep = started
        if timeouts:
            self._last_timeouts = started

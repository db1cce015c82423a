"""The live board: one per replica, the supervisors' sockets' one source.

It hears every event on the replica's hub, folds each into the ledger (the period figures) and
marks what the event touched: its queues, its agents (and the queues they qualify for), its
complaint. At most once a window (WINDOW, half a second) it reads what the marked things are
now, in one batch of statements on one pool connection (app/supervisor/reads.py), and every
view that changed goes out as one frame, encoded once, to every supervisor socket on the
replica. The work is per change, never per socket: fifty supervisors cost fifty sends of the
same text. A window opens on the first change after a quiet spell, so a lone change shows at
once; under a stream of them each queue's frame comes at most every WINDOW, with the latest
figures (the changes between are coalesced, never queued).

Sending never waits (`Watcher.send_encoded`): each socket's session queues the text for its
own writer (app/core/socket_session.py), and a supervisor too slow to read falls behind alone;
once it is further behind than `backlog_allowed` the board closes that socket (TOO_SLOW) and
goes on. Every REFRESH the queues are read again even without events, so the figures of a
sliding period and the longest wait move on a quiet floor. While no socket watches, the board
only folds (the ledger must not miss an event) and reads nothing; the next socket has it read
everything before its snapshot (`settled`).

The board keeps each view with the window that computed it, so a socket can be served a
snapshot (the views as they stand, from memory: no read) and then, without a gap, every view
computed after it (`join`), and a reconnecting supervisor can be sent only what changed since
the event id it last saw (`changes_since`), or a snapshot when the board cannot tell (it began
after that id, or lost events and read everything again).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import asyncpg

from app.core import socket_session
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.core.pg import ACQUIRE_TIMEOUT, now
from app.core.socket_session import TOO_SLOW, Closing
from app.supervisor import reads
from app.supervisor.kept import KeptViews, Window
from app.supervisor.ledger import Ledger, QueuePeriods, Touched
from app.supervisor.ledger_reads import read_queue_periods, seed_ledger, take
from app.supervisor.views import (
    AgentsByState,
    AgentView,
    ChangeFrame,
    ComplaintView,
    IntervalOut,
    PeriodFiguresOut,
    QueueView,
    SnapshotFrame,
)

log = get_logger(__name__)

WINDOW = 0.5  # seconds: at most one frame per queue (and per agent, per complaint) in each
REFRESH = 5.0  # seconds: the queues read again without events (sliding periods, waits)
FIRST_READ_WAIT = 15.0  # seconds a first socket waits for a new board's first read
RETRY = 1.0  # seconds before a window that failed (the database down) is tried again

# Events after which the board reads its layout again: the queues (names, targets), and who
# qualifies for which (an agent's skills, a queue's). The ledger reads a queue's settings itself.
LAYOUT_KINDS = frozenset(
    {
        "queue.created",
        "queue.updated",
        "queue.deleted",
        "agent.created",
        "agent.updated",
        "agent.skills_changed",
        "user.created",
        "user.updated",
    }
)


class Watcher(Protocol):
    """A supervisor's socket as the board sees it (core's SocketSession)."""

    @property
    def backlog(self) -> int: ...

    def send_encoded(self, message: str) -> None: ...

    def close(self, why: Closing) -> None: ...


@dataclass(slots=True)
class Marks:
    """What changed since the last window."""

    queues: set[uuid.UUID] = field(default_factory=set)
    agents: set[uuid.UUID] = field(default_factory=set)
    complaints: set[uuid.UUID] = field(default_factory=set)
    all_agents: bool = False
    layout: bool = False

    def __bool__(self) -> bool:
        return bool(self.queues or self.agents or self.complaints or self.all_agents or self.layout)


@dataclass(frozen=True, slots=True)
class Reading:
    """What one window read."""

    lines: dict[uuid.UUID, reads.Line]
    staff: dict[uuid.UUID, AgentsByState]
    periods: dict[uuid.UUID, QueuePeriods]
    agents: list[AgentView]
    complaints: list[ComplaintView] | None


Clock = Callable[[], datetime]


class LiveBoard:
    def __init__(
        self,
        pool: asyncpg.Pool,
        hub: EventHub,
        *,
        default_zone: str = "UTC",
        window: float = WINDOW,
        refresh: float = REFRESH,
        clock: Clock = now,
    ) -> None:
        self._pool = pool
        self._hub = hub
        self._default_zone = default_zone
        self._window = window
        self._refresh = refresh
        self._clock = clock
        self._queues: dict[uuid.UUID, reads.QueueRow] = {}
        self._ledger = Ledger(default_zone=default_zone)
        self._seeded_up_to: int | None = None  # None: the ledger is still to be seeded
        self._unfolded: list[EventRecord] = []  # heard, for the next window to fold
        self._queues_of_agent: dict[uuid.UUID, set[uuid.UUID]] = {}
        self._kept = KeptViews()
        self._marks = Marks(layout=True, all_agents=True)
        self._complaints_read = False
        self._event_id = 0  # the last event folded in
        self._since = 0  # the oldest event id a resume may name
        self._generation = 0
        self._watchers: set[Watcher] = set()
        self._changed = asyncio.Event()
        self._welcoming = 0  # sockets being caught up, not yet joined
        self._dormant = False  # nobody watched: the views are stale, the ledger is not
        self._windows_taken = 0  # windows that took their marks
        self._windows_done = 0  # windows over, read or failed
        self._window_over = asyncio.Event()
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def event_id(self) -> int:
        return self._event_id

    @property
    def watching(self) -> int:
        """The supervisor sockets this board sends to."""
        return len(self._watchers)

    @property
    def backlog_allowed(self) -> int:
        """How many frames a socket may have waiting before it is too slow: two whole boards
        (a window may change every view, and a joining socket is sent them all at once)
        beyond the sessions' usual bound. The board holds its sockets to it, as it grows with
        the floor; their queues themselves are unbounded. Cheap: a broadcast's waiting frames
        are one string shared by every socket's queue."""
        return 2 * len(self._kept) + socket_session.LIMITS.queue

    @property
    def generation(self) -> int:
        return self._generation

    async def start(self) -> None:
        """Subscribe, then read everything once (a database down is retried by the windows)."""
        self._subscribe()
        self._changed.set()
        self._tasks = [
            asyncio.create_task(self._hear(), name="live-board-events"),
            asyncio.create_task(self._run_windows(), name="live-board-windows"),
            asyncio.create_task(self._tick(), name="live-board-refresh"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._subscription is not None:
            self._hub.unsubscribe(self._subscription)

    # --- the sockets' side ----------------------------------------------------------------------

    def snapshot(self) -> SnapshotFrame:
        """Every view as it stands, from memory."""
        return self._kept.snapshot(self._event_id, self._clock(), self._queues)

    @contextlib.contextmanager
    def welcoming(self) -> Iterator[None]:
        """While a socket is caught up (before it joins), the board reads as though watched."""
        self._welcoming += 1
        try:
            yield
        finally:
            self._welcoming -= 1

    async def settled(self, within: float = 2.0) -> None:
        """Wait (at most `within`) for the windows that read what the board has heard, if any
        is under way or due: a socket's snapshot then shows every event heard before it
        opened, not the board as it stood a window ago. A dormant board reads everything."""
        if self._dormant:
            self._dormant = False
            self._complaints_read = False
            self._remark(Marks(queues=set(self._queues), layout=True, all_agents=True))
        # The window under way, and the next one when marks wait for it.
        wanted = self._windows_taken + (1 if self._marks or self._unfolded else 0)
        # A board that never finished a window has no layout yet: its snapshot would list no
        # queue at all, so its first read is worth a longer wait (the seed, on a busy machine).
        limit = within if self._windows_done else FIRST_READ_WAIT
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while self._windows_done < wanted:
                    await self._window_over.wait()

    def changes_since(self, event_id: int) -> list[ChangeFrame] | None:
        """The frames of every view computed since the event `event_id` was folded in (in the
        window that folded it too: the client may have missed the rest of that window), or
        None when the board cannot tell (it did not hear that event)."""
        if event_id < self._since:
            return None
        return self._kept.frames_after(lambda _generation, kept_event_id: kept_event_id >= event_id)

    def join(self, watcher: Watcher, generation: int) -> None:
        """From now on `watcher` gets every frame; first, those of the windows after
        `generation` (computed while its snapshot or changes were on their way)."""
        for frame in self._kept.frames_after(
            lambda kept_generation, _event_id: kept_generation > generation
        ):
            watcher.send_encoded(frame.model_dump_json())
        self._watchers.add(watcher)

    def leave(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    # --- hearing events -------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """A subscription to every event; what came before it is the seed's and the reads'."""
        if self._subscription is not None:
            self._hub.unsubscribe(self._subscription)
        self._subscription = self._hub.subscribe(lambda _event: True)
        self._since = self._event_id = max(self._event_id, self._hub.last_event_id)
        self._seeded_up_to = None
        self._unfolded = []

    async def _hear(self) -> None:
        """Events are kept for the next window, which folds them: the ledger needs them in
        order, after its seed, and some with a read (a queue's settings)."""
        while True:
            assert self._subscription is not None
            subscription = self._subscription
            if subscription.overflowed.is_set():
                self._lost_events()
                continue
            self._unfolded.append(await subscription.queue.get())
            while not subscription.queue.empty():  # the rest of a batch, before a window
                self._unfolded.append(subscription.queue.get_nowait())
            self._changed.set()

    def _lost_events(self) -> None:
        """The board fell too far behind the hub (a long stall): fold a new ledger from the
        log, read everything again, and answer older resumes with a snapshot."""
        log.warning("live board lost events; reading everything again")
        self._ledger = Ledger(default_zone=self._default_zone)
        self._subscribe()
        self._marks = Marks(layout=True, all_agents=True)
        self._complaints_read = False
        self._changed.set()

    async def _fold(self, connection: asyncpg.Connection, marks: Marks) -> None:
        """Seed the ledger if it is new, then fold the events heard since the last window and
        mark what they touched. Taken only once folded: a window that fails folds them again
        (the ledger ignores an event it has applied)."""
        if self._seeded_up_to is None:
            up_to = self._since
            await seed_ledger(connection, self._ledger, self._clock(), up_to)
            self._seeded_up_to = up_to
        events = list(self._unfolded)
        for event in events:
            touched = await take(self._ledger, event, connection)  # reads only for a new queue
            self._mark(event, touched, marks)
            self._event_id = max(self._event_id, event.id)
        del self._unfolded[: len(events)]

    def _mark(self, event: EventRecord, touched: Touched, marks: Marks) -> None:
        marks.queues |= touched.queues
        agents = set(touched.agents)
        agent = event.agent_id
        if agent is not None:
            with contextlib.suppress(ValueError):
                agents.add(uuid.UUID(agent))
        for agent_id in agents:  # its state counts in the queues it qualifies for
            marks.queues |= self._queues_of_agent.get(agent_id, set())
        marks.agents |= agents
        if event.subject_type == "complaint":
            with contextlib.suppress(ValueError):
                marks.complaints.add(uuid.UUID(event.subject_id))
        if event.kind in LAYOUT_KINDS:
            marks.layout = True
            marks.all_agents = marks.all_agents or not event.kind.startswith("queue.")

    # --- the windows ----------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            self._ledger.forget_before(self._clock())
            self._marks.queues |= set(self._queues)
            self._complaints_read = False
            self._changed.set()

    async def _run_windows(self) -> None:
        loop = asyncio.get_running_loop()
        opened = -self._window
        while True:
            await self._changed.wait()
            # A window at most every `_window`: changes meanwhile wait for it and are coalesced.
            await asyncio.sleep(max(0.0, opened + self._window - loop.time()))
            self._changed.clear()
            marks, self._marks = self._marks, Marks()
            if not marks and not self._unfolded and self._complaints_read:
                continue
            opened = loop.time()
            self._windows_taken += 1
            read = await self._try_window(marks)
            self._windows_done += 1
            self._window_over.set()
            self._window_over = asyncio.Event()
            if not read:
                self._remark(marks)
                await asyncio.sleep(RETRY)

    async def _try_window(self, marks: Marks) -> bool:
        """One window; False when it failed (logged), its marks to be read again."""
        try:
            await self._window_of(marks)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("live board could not read; trying again", error=repr(error))
            return False
        except Exception:
            log.exception("live board window failed; trying again")
            return False
        return True

    def _remark(self, marks: Marks) -> None:
        self._marks.queues |= marks.queues
        self._marks.agents |= marks.agents
        self._marks.complaints |= marks.complaints
        self._marks.all_agents |= marks.all_agents
        self._marks.layout |= marks.layout
        self._changed.set()

    async def _window_of(self, marks: Marks) -> None:
        at = self._clock()  # the window's moment: its frames' `at`, one window apart at least
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            await self._fold(connection, marks)
            if not self._watchers and not self._welcoming:
                # Nobody watches: the ledger keeps up, the reads wait for the next socket
                # (`settled` then reads everything), so an unwatched replica pays no reads.
                self._dormant = True
                return
            event_id = self._event_id  # what the reads below reflect at least
            if marks.layout:
                await self._read_layout(connection)
                marks.queues = set(self._queues)
            marks.queues &= set(self._queues)  # a queue deleted, or one the board has not read
            reading = await self._read(connection, marks, at)
        self._generation += 1
        window = Window(self._generation, event_id, at)
        queues = [self._queue_view(self._queues[q], reading, at) for q in sorted(marks.queues)]
        sent = self._kept.put_queues(queues, window)
        agents = [
            agent.model_copy(update={"occupancy": self._ledger.occupancy(agent.agent_id, at)})
            for agent in reading.agents
        ]
        sent += self._kept.put_agents(agents, None if marks.all_agents else marks.agents, window)
        if reading.complaints is not None:
            sent += self._kept.put_complaints(reading.complaints, window)
        self._broadcast(sent)

    async def _read(self, connection: asyncpg.Connection, marks: Marks, at: datetime) -> Reading:
        queue_ids = list(marks.queues)
        lines = await reads.read_lines(connection, queue_ids, at) if queue_ids else {}
        staff = await reads.read_staff_by_state(connection, queue_ids) if queue_ids else {}
        periods = {
            queue_id: await read_queue_periods(connection, self._ledger, queue_id, at)
            for queue_id in queue_ids
        }
        agents: list[AgentView] = []
        if marks.all_agents:
            agents = await reads.read_agents(connection, None, at)
        elif marks.agents:
            agents = await reads.read_agents(connection, marks.agents, at)
        complaints = None
        if marks.complaints or not self._complaints_read:
            complaints = await reads.read_complaints(connection, marks.complaints, at)
            self._complaints_read = True
        return Reading(lines, staff, periods, agents, complaints)

    async def _read_layout(self, connection: asyncpg.Connection) -> None:
        """The queues, and who qualifies for each."""
        queues = {row.id: row for row in await reads.read_queues(connection)}
        self._kept.forget_queues_but(queues)
        self._queues = queues
        self._queues_of_agent = await reads.read_queues_of_agents(connection, list(queues))

    def _queue_view(self, queue: reads.QueueRow, reading: Reading, at: datetime) -> QueueView:
        line = reading.lines.get(queue.id) or reads.empty_line()
        periods = reading.periods.get(queue.id) or self._ledger.periods(queue.id, at)
        return QueueView(
            queue_id=queue.id,
            name=queue.name,
            time_zone=self._ledger.settings(queue.id).zone.key,
            sl_target_percent=queue.sl_target_percent,
            sl_target_seconds=queue.sl_target_seconds,
            waiting=line.waiting,
            longest_wait_s=line.longest_wait(at),
            agents=reading.staff.get(queue.id) or AgentsByState(),
            today=PeriodFiguresOut.model_validate(periods.today.as_json()),
            last_30_min=PeriodFiguresOut.model_validate(periods.last_30_min.as_json()),
            by_interval=[IntervalOut.model_validate(i.as_json()) for i in periods.by_interval],
        )

    def _broadcast(self, frames: list[ChangeFrame]) -> None:
        """Every frame, encoded once, to every socket: never waiting for any. A socket that
        would be further behind than `backlog_allowed` is closed instead (TOO_SLOW)."""
        if not frames:
            return
        messages = [frame.model_dump_json() for frame in frames]
        allowed = self.backlog_allowed
        for watcher in list(self._watchers):
            if watcher.backlog + len(messages) > allowed:
                log.warning("supervisor too slow; closing its socket", behind=watcher.backlog)
                self._watchers.discard(watcher)
                watcher.close(TOO_SLOW)
                continue
            for message in messages:
                watcher.send_encoded(message)

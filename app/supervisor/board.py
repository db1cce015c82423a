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

Sending never waits (`Watcher.send_encoded`): a supervisor too slow to read fills its own
session's queue and that socket alone is closed (app/core/socket_session.py), while the board
goes on. Every REFRESH the queues are read again even without events, so the figures of a
sliding period and the longest wait move on a quiet floor.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import asyncpg
from pydantic import BaseModel

from app.core import socket_session
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.core.pg import ACQUIRE_TIMEOUT, now
from app.core.socket_session import TOO_SLOW, Closing
from app.supervisor import reads
from app.supervisor.ledger import Ledger, QueuePeriods, Touched
from app.supervisor.ledger_reads import read_queue_periods, seed_ledger, take
from app.supervisor.views import (
    AgentFrame,
    AgentsByState,
    AgentView,
    ChangeFrame,
    ComplaintFrame,
    ComplaintView,
    IntervalOut,
    PeriodFiguresOut,
    QueueFrame,
    QueueView,
    SnapshotFrame,
)

log = get_logger(__name__)

WINDOW = 0.5  # seconds: at most one frame per queue (and per agent, per complaint) in each
REFRESH = 5.0  # seconds: the queues read again without events (sliding periods, waits)
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

# The payload keys that name a queue: one the ledger does not know makes it read the settings.
QUEUE_KEYS = ("queue_id", "to_queue_id", "from_queue_id")

V = TypeVar("V", bound=BaseModel)


class Watcher(Protocol):
    """A supervisor's socket as the board sees it (core's SocketSession)."""

    @property
    def backlog(self) -> int: ...

    def send_encoded(self, message: str) -> None: ...

    def close(self, why: Closing) -> None: ...


@dataclass(slots=True)
class Kept(Generic[V]):
    """A view as the board last sent it: the window that computed it (`generation`), the last
    event folded in then (`event_id`) and when (`at`)."""

    view: V
    generation: int
    event_id: int
    at: datetime


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
        self._queue_views: dict[uuid.UUID, Kept[QueueView]] = {}
        self._agent_views: dict[uuid.UUID, Kept[AgentView]] = {}
        self._complaint_views: dict[uuid.UUID, Kept[ComplaintView]] = {}
        self._marks = Marks(layout=True, all_agents=True)
        self._complaints_read = False
        self._event_id = 0  # the last event folded in
        self._since = 0  # the oldest event id a resume may name
        self._generation = 0
        self._watchers: set[Watcher] = set()
        self._changed = asyncio.Event()
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
        views = len(self._queue_views) + len(self._agent_views) + len(self._complaint_views)
        return 2 * views + socket_session.LIMITS.queue

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
        return SnapshotFrame(
            event_id=self._event_id,
            at=self._clock(),
            queues=[kept.view for kept in self._queue_views.values()],
            agents=[kept.view for kept in self._agent_views.values()],
            complaints=[kept.view for kept in self._complaint_views.values() if _late(kept.view)],
        )

    async def settled(self, within: float = 2.0) -> None:
        """Wait (at most `within`) for the windows that read what the board has heard, if any
        is under way or due: a socket's snapshot then shows every event heard before it
        opened, not the board as it stood a window ago."""
        # The window under way, and the next one when marks wait for it.
        wanted = self._windows_taken + (1 if self._marks or self._unfolded else 0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._windows_done < wanted:
                    await self._window_over.wait()

    def changes_since(self, event_id: int) -> list[ChangeFrame] | None:
        """The frames of every view computed since the event `event_id` was folded in (in the
        window that folded it too: the client may have missed the rest of that window), or
        None when the board cannot tell (it did not hear that event)."""
        if event_id < self._since:
            return None
        return self._frames_after(lambda _generation, kept_event_id: kept_event_id >= event_id)

    def join(self, watcher: Watcher, generation: int) -> None:
        """From now on `watcher` gets every frame; first, those of the windows after
        `generation` (computed while its snapshot or changes were on their way)."""
        for frame in self._frames_after(
            lambda kept_generation, _event_id: kept_generation > generation
        ):
            watcher.send_encoded(frame.model_dump_json())
        self._watchers.add(watcher)

    def leave(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def _frames_after(self, newer: Callable[[int, int], bool]) -> list[ChangeFrame]:
        """The frames of the views kept with a (generation, event id) that `newer` picks, in
        the order they were computed."""
        frames: list[tuple[int, ChangeFrame]] = []
        for queue in self._queue_views.values():
            if newer(queue.generation, queue.event_id):
                frames.append((queue.generation, self._queue_frame(queue)))
        for agent in self._agent_views.values():
            if newer(agent.generation, agent.event_id):
                frames.append((agent.generation, self._agent_frame(agent)))
        for complaint in self._complaint_views.values():
            if newer(complaint.generation, complaint.event_id):
                frames.append((complaint.generation, self._complaint_frame(complaint)))
        return [frame for _, frame in sorted(frames, key=lambda pair: pair[0])]

    @staticmethod
    def _queue_frame(kept: Kept[QueueView]) -> QueueFrame:
        return QueueFrame(event_id=kept.event_id, at=kept.at, queue=kept.view)

    @staticmethod
    def _agent_frame(kept: Kept[AgentView]) -> AgentFrame:
        return AgentFrame(event_id=kept.event_id, at=kept.at, agent=kept.view)

    @staticmethod
    def _complaint_frame(kept: Kept[ComplaintView]) -> ComplaintFrame:
        return ComplaintFrame(event_id=kept.event_id, at=kept.at, complaint=kept.view)

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
            if event.kind in ("queue.created", "queue.updated") or self._new_queue(event):
                touched = await take(self._ledger, event, connection)
            else:
                touched = self._ledger.apply(event)
            self._mark(event, touched, marks)
            self._event_id = max(self._event_id, event.id)
        del self._unfolded[: len(events)]

    def _new_queue(self, event: EventRecord) -> bool:
        """Whether the event names a queue whose settings the ledger has not read yet."""
        for key in QUEUE_KEYS:
            raw = event.payload.get(key)
            if raw and not self._ledger.knows_queue(uuid.UUID(str(raw))):
                return True
        return False

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
            event_id = self._event_id  # what the reads below reflect at least
            if marks.layout:
                await self._read_layout(connection)
                marks.queues = set(self._queues)
            reading = await self._read(connection, marks, at)
        self._generation += 1
        sent = self._apply_queues(marks.queues, reading, event_id, at)
        sent += self._apply_agents(marks, reading.agents, event_id, at)
        if reading.complaints is not None:
            sent += self._apply_complaints(reading.complaints, event_id, at)
        self._broadcast(sent)

    async def _read(self, connection: asyncpg.Connection, marks: Marks, at: datetime) -> Reading:
        queue_ids = [queue_id for queue_id in marks.queues if queue_id in self._queues]
        lines = await reads.read_lines(connection, queue_ids) if queue_ids else {}
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
        for gone in set(self._queue_views) - set(queues):
            del self._queue_views[gone]
        self._queues = queues
        self._queues_of_agent = await reads.read_queues_of_agents(connection, list(queues))

    def _apply_queues(
        self, queue_ids: set[uuid.UUID], reading: Reading, event_id: int, at: datetime
    ) -> list[ChangeFrame]:
        sent: list[ChangeFrame] = []
        for queue_id in sorted(queue_ids & set(self._queues)):
            view = self._queue_view(self._queues[queue_id], reading, at)
            kept = self._queue_views.get(queue_id)
            if kept is not None and kept.view == view:
                continue
            kept = Kept(view, self._generation, event_id, at)
            self._queue_views[queue_id] = kept
            sent.append(self._queue_frame(kept))
        return sent

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

    def _apply_agents(
        self, marks: Marks, agents: list[AgentView], event_id: int, at: datetime
    ) -> list[ChangeFrame]:
        sent: list[ChangeFrame] = []
        found = {agent.agent_id for agent in agents}
        wanted = set(self._agent_views) if marks.all_agents else marks.agents
        for gone in wanted - found:  # deactivated or deleted: off the board
            self._agent_views.pop(gone, None)
        for found_agent in agents:
            occupancy = self._ledger.occupancy(found_agent.agent_id, at)
            agent = found_agent.model_copy(update={"occupancy": occupancy})
            kept = self._agent_views.get(agent.agent_id)
            if kept is not None and _same_agent(kept.view, agent):
                continue
            kept = Kept(agent, self._generation, event_id, at)
            self._agent_views[agent.agent_id] = kept
            sent.append(self._agent_frame(kept))
        return sent

    def _apply_complaints(
        self, complaints: list[ComplaintView], event_id: int, at: datetime
    ) -> list[ChangeFrame]:
        """The late complaints, and those an event named as they are now. One that leaves the
        list goes out once more with both flags false, so screens drop it; it is kept so, for
        a resume."""
        sent: list[ChangeFrame] = []
        found = {complaint.complaint_id: complaint for complaint in complaints}
        for complaint_id, kept in self._complaint_views.items():
            if complaint_id not in found and _late(kept.view):  # no longer late, by the clock
                found[complaint_id] = kept.view.model_copy(
                    update={"overdue": False, "escalated": False}
                )
        for complaint in found.values():
            before = self._complaint_views.get(complaint.complaint_id)
            if (before is None and not _late(complaint)) or (
                before is not None and before.view == complaint
            ):
                continue  # never on the list, or unchanged
            kept = Kept(complaint, self._generation, event_id, at)
            self._complaint_views[complaint.complaint_id] = kept
            sent.append(self._complaint_frame(kept))
        return sent

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


def _late(complaint: ComplaintView) -> bool:
    return complaint.overdue or complaint.escalated


def _same_agent(before: AgentView, after: AgentView) -> bool:
    """Equal but for the time in state, which only the clock moved."""
    return before.model_copy(update={"seconds_in_state": 0.0}) == after.model_copy(
        update={"seconds_in_state": 0.0}
    )

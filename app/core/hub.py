"""The realtime hub: tails the event log and hands each new event to the subscribers that care.

Woken by a NOTIFY (the events trigger's at commit, or another hub's announcement), with a
polling fallback. Identity values
are handed out at insert but become visible at commit, so a later id can show up before an
earlier one: the hub keeps a floor (every id at or below it was handled) and the ids above it it
has seen, and skips a hole only after `gap_grace` seconds (a rolled-back insert never fills it).
A subscriber that falls behind is told so (`overflowed`) instead of slowing anyone else down.

The events this replica writes on its hot paths are handed over by their writers (`publish`),
with what the log does not keep (`EventRecord.attached`). Their connections are registered with
`own`, which turns their per-event NOTIFY off (`cc.notify`, app/core/events_notify.sql): a
NOTIFY holds PostgreSQL's global notification lock across its transaction's commit flush, so
every writer waited for the flush of the one before it. The hub announces what was published
to the other replicas instead, with one NOTIFY per batch (listing its ids) from its own
connection, outside any writing transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from app.core.logging import get_logger
from app.core.signals import SIGNAL_CHANNEL, Signal, SignalBoard, decode

log = get_logger(__name__)

# The channel of the events trigger's NOTIFY (app/core/events_notify.sql) and of this hub's
# announcements.
NOTIFY_CHANNEL = "cc_events"
FETCH_LIMIT = 2000
# An announcement lists the ids published since the last one, within NOTIFY's payload limit
# (8,000 bytes); a longer batch is announced as READ_ALL, which asks every other hub to read.
ANNOUNCEMENT_LIMIT = 7000
READ_ALL = "*"
HUB_APPLICATION = "cc-event-hub"


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    occurred_at: datetime
    kind: str
    subject_type: str
    subject_id: str
    actor: str
    payload: dict[str, Any]
    # What the writer had at hand for its own replica's subscribers and the log does not keep
    # (the matcher attaches each offer's screen pop); empty for events read from the log.
    attached: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def agent_id(self) -> str | None:
        """The agent this event concerns, if any (its subject, or named in its payload)."""
        if self.subject_type == "agent":
            return self.subject_id
        agent = self.payload.get("agent_id")
        return None if agent is None else str(agent)


@dataclass(eq=False)
class Subscription:
    wants: Callable[[EventRecord], bool]
    queue: asyncio.Queue[EventRecord] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    agent_id: str | None = None  # set for a subscription to one agent's events
    subject_id: str | None = None  # set for a subscription to one subject's events (`follow`)

    def offer(self, event: EventRecord) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()


def asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class EventHub:
    def __init__(
        self, database_url: str, *, poll_interval: float = 1.0, gap_grace: float = 2.0
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._poll_interval = poll_interval
        self._gap_grace = gap_grace
        self._subscriptions: set[Subscription] = set()
        self._by_agent: dict[str, set[Subscription]] = {}
        self._by_subject: dict[str, set[Subscription]] = {}
        self._wake = asyncio.Event()
        self._floor = 0
        self._seen: set[int] = set()
        self._gap_noticed: tuple[int, float] | None = None
        self._connection: asyncpg.Connection | None = None
        self._own_pid: int | None = None  # the session of this hub's connection
        self._unannounced: list[int] = []  # the events published, not yet announced
        self._unsent_signals: list[str] = []  # signals to send on the next turn
        self.signals = SignalBoard()  # who on this replica hears which signals
        self._read_wanted = False
        self._last_read = 0.0  # loop time of the last read (0: none yet)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._started = False

    @property
    def last_event_id(self) -> int:
        return max([self._floor, *self._seen])

    async def start(self) -> None:
        """Begin tailing from the newest event; a database that is down is retried, not fatal."""
        await self._reconnect()
        if self._connection is not None:
            self._floor = await self._connection.fetchval("SELECT coalesce(max(id), 0) FROM events")
            self._started = True
            self._last_read = asyncio.get_running_loop().time()  # the floor's read counts as one
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
        if self._connection is not None:
            self._connection.terminate()  # no goodbye needed, and none to wait for

    def subscribe(self, wants: Callable[[EventRecord], bool]) -> Subscription:
        subscription = Subscription(wants=wants)
        self._subscriptions.add(subscription)
        return subscription

    def subscribe_agent(self, agent_id: str) -> Subscription:
        """The events of one agent: found by a dict lookup, as there is one desk per agent and
        asking hundreds of predicates about every event costs more than the event itself."""
        subscription = Subscription(wants=lambda event: event.agent_id == agent_id)
        subscription.agent_id = agent_id
        self._by_agent.setdefault(agent_id, set()).add(subscription)
        return subscription

    def subscribe_subject(self) -> Subscription:
        """The events of one subject (a chat's interaction), once `follow` names it: found by
        a dict lookup, like an agent's, as a site may hold thousands of open chat sockets."""

        def wants(event: EventRecord) -> bool:
            return event.subject_id == subscription.subject_id

        subscription = Subscription(wants=wants)
        return subscription

    def follow(self, subscription: Subscription, subject_id: str) -> None:
        """From now on the subscription gets the events of `subject_id` (instead of those of
        the subject it followed before, if any)."""
        self._unfollow(subscription)
        subscription.subject_id = subject_id
        self._by_subject.setdefault(subject_id, set()).add(subscription)

    def _unfollow(self, subscription: Subscription) -> None:
        subject_id = subscription.subject_id
        if subject_id is not None and subject_id in self._by_subject:
            self._by_subject[subject_id].discard(subscription)
            if not self._by_subject[subject_id]:
                del self._by_subject[subject_id]

    def unsubscribe(self, subscription: Subscription) -> None:
        self._unfollow(subscription)
        self._subscriptions.discard(subscription)
        agent_id = subscription.agent_id
        if agent_id is not None and agent_id in self._by_agent:
            self._by_agent[agent_id].discard(subscription)
            if not self._by_agent[agent_id]:
                del self._by_agent[agent_id]

    @staticmethod
    async def own(connection: asyncpg.Connection) -> None:
        """Make a connection of this replica one whose writers hand every committed event to
        `publish`: its inserts send no NOTIFY (the hub announces them). An event a writer
        commits and fails to publish (a crash or a cancel in between) still reaches this hub
        and the others by their poll, every `poll_interval`."""
        await connection.execute("SET cc.notify TO 'off'")

    def publish(self, events: Sequence[EventRecord]) -> None:
        """Hand over events this replica has just committed, so that its desks need no read of
        them (a round trip and a few loop turns off every offer's way to the desk). The hub
        notes their ids, so its own read of them later skips them: each goes out once.

        A writer on a connection registered with `own` must call this once its transaction has
        committed: its inserts send no NOTIFY, so an event not handed over waits for the polls.
        The ids published are announced to the other replicas on the hub's next turn."""
        for event in events:
            self._unannounced.append(event.id)
            if event.id <= self._floor or event.id in self._seen:
                continue
            self._seen.add(event.id)
            self._dispatch(event)
        if self._unannounced:
            self._wake.set()

    def signal(self, signal: Signal) -> None:
        """Send a signal to every replica's sockets (this one's too), on the hub's next turn:
        it never waits (app/core/signals.py)."""
        self._unsent_signals.append(signal.encode())
        self._wake.set()

    def _on_signal(self, _connection: object, _pid: int, _channel: object, payload: str) -> None:
        signal = decode(payload)
        if signal is not None:
            self.signals.deliver(signal)

    def _on_notify(self, _connection: object, pid: int, _channel: object, payload: str) -> None:
        """The NOTIFY of committed events: an event's id (the trigger's), or the ids another
        hub published (its announcement, comma-separated). A read is needed only for an event
        not handed over by `publish` and not read yet (the REST desk's and the admin paths'
        events, and every event of another replica). Every id counts, not only the newest: ids
        are drawn before commit, so this hub may have read a batch's newest event before an
        older one of the same batch had committed; that one would then wait for the poll.
        This hub's own announcements come back too: skipped."""
        if pid == self._own_pid:
            return
        try:
            event_ids = [int(part) for part in payload.split(",")]
        except ValueError:  # READ_ALL, or a payload from someone else
            event_ids = []
        if not event_ids or any(i > self._floor and i not in self._seen for i in event_ids):
            self._read_wanted = True
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            # asyncio.timeout: unlike wait_for on Python 3.11, no task per wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._last_read + self._poll_interval - loop.time()):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._send_signals()
                await self._announce()
                if self._read_wanted or loop.time() - self._last_read >= self._poll_interval:
                    self._read_wanted = False
                    self._last_read = loop.time()
                    await self._fetch()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                if self._stopping:
                    return
                log.warning("event hub lost its connection; reconnecting", error=str(error))
                await asyncio.sleep(0.5)
                await self._reconnect()

    async def _send_signals(self) -> None:
        """Every signal waiting, in one statement; lost with the connection if it is gone."""
        unsent, self._unsent_signals = self._unsent_signals, []
        if unsent and self._connection is not None:
            await self._connection.execute(
                "SELECT pg_notify($1, s) FROM unnest($2::text[]) s", SIGNAL_CHANNEL, unsent
            )

    async def _announce(self) -> None:
        """One NOTIFY for everything published since the last, with every id: the other
        replicas read then. Sent in a transaction of its own that writes nothing, so it waits
        for no flush."""
        announced = list(self._unannounced)
        if not announced or self._connection is None:
            return
        payload = ",".join(str(event_id) for event_id in announced)
        if len(payload) > ANNOUNCEMENT_LIMIT:
            payload = READ_ALL
        await self._connection.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)
        # What was published meanwhile stays for the next turn.
        del self._unannounced[: len(announced)]

    async def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            if self._connection is not None:
                await self._connection.close()
        try:
            # Named, so that its announcements can be told apart in pg_stat_activity.
            self._connection = await asyncpg.connect(
                self._dsn, server_settings={"application_name": HUB_APPLICATION}
            )
            self._own_pid = self._connection.get_server_pid()
            await self._connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._connection.add_listener(SIGNAL_CHANNEL, self._on_signal)
        except (OSError, asyncpg.PostgresError):
            self._connection = None

    async def _fetch(self) -> None:
        if self._connection is None:
            await self._reconnect()
            if self._connection is None:
                return
        if not self._started:
            self._floor = await self._connection.fetchval("SELECT coalesce(max(id), 0) FROM events")
            self._started = True
        rows = await self._connection.fetch(
            "SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload::text "
            "FROM events WHERE id > $1 ORDER BY id LIMIT $2",
            self._floor,
            FETCH_LIMIT,
        )
        for row in rows:
            if row["id"] in self._seen:
                continue
            self._seen.add(row["id"])
            self._dispatch(record_of(row))
        self._advance_floor()
        if len(rows) == FETCH_LIMIT:  # more to read: at once, not at the next poll
            self._read_wanted = True
            self._wake.set()

    def _dispatch(self, event: EventRecord) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.offer(event)
        agent_id = event.agent_id
        if agent_id is not None:
            for subscription in list(self._by_agent.get(agent_id, ())):
                subscription.offer(event)
        for subscription in list(self._by_subject.get(event.subject_id, ())):
            subscription.offer(event)

    def _advance_floor(self) -> None:
        while self._seen:
            following = self._floor + 1
            if following in self._seen:
                self._seen.discard(following)
                self._floor = following
                self._gap_noticed = None
                continue
            if self._gap_noticed is None or self._gap_noticed[0] != following:
                self._gap_noticed = (following, time.monotonic())
                return
            if time.monotonic() - self._gap_noticed[1] < self._gap_grace:
                return
            self._floor = following  # a rolled-back insert: that id never arrives


def record_of(row: asyncpg.Record) -> EventRecord:
    """An event as the hub hands it on, from a row of the `events` table (payload as text)."""
    return EventRecord(
        id=row["id"],
        occurred_at=row["occurred_at"],
        kind=row["kind"],
        subject_type=row["subject_type"],
        subject_id=row["subject_id"],
        actor=row["actor"],
        payload=json.loads(row["payload"]),
    )

"""The matcher: one pass at a time across every replica, run by the replica that leads.

The leader holds a PostgreSQL advisory lock on a connection of its own (`Matcher`). Once a tick
it times out late offers and sweeps (one transaction); a pass reads the waiting interactions and
the routable agents with what they hold, asks the pure policy for the best pairs, and writes the
offers and their events in one statement. The event hub on every replica carries each offer to
the agent's socket. DESIGN.md section 3 lists the rules it keeps. A pass runs many times a
second, so it is plain SQL on asyncpg (app/core/pg.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from app.core.channels import Channel
from app.core.events import SYSTEM_ACTOR, Events
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.core.pg import connect, now
from app.queues.service import SETTINGS_VERSION
from app.routing import policy, screen_pop, service
from app.routing.directory import AgentDirectory

log = get_logger(__name__)

MATCHER_LOCK_KEY = 7_2026_11_29
WAITING_PAGE = 500  # waiting interactions read at a time, in the order of service
WAITING_LIMIT = 5000  # read by one pass at most
RANKED_LIMIT = 10_000  # the oldest waiting, ranked by each page's read (see WAITING)
REASON_LENGTH = 300  # offers.reason's width: the live pop and a replayed one say the same
# Events after which a pass may find new pairs: work arrived, or an agent has room again.
WAKING_KINDS = frozenset(
    {
        "interaction.queued",
        "interaction.completed",
        "interaction.wrap_up",
        "interaction.transferred_out",
        "interaction.abandoned",
        "agent.state_changed",
        "agent.updated",
        "agent.skills_changed",
    }
)


# New work: always worth a pass. The other waking kinds only free capacity or change agents,
# which can make new pairs only while something waits (see Matcher._listen).
NEW_WORK = "interaction.queued"

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
class PassResult:
    offers: int
    left: tuple[policy.WaitingInteraction, ...] = ()  # read but not offered
    skipped: int = 0  # pairs the write turned down (an agent changed, an interaction left)
    left_unread: bool = False  # work waits, not read: nobody had room for anything

    @property
    def left_waiting(self) -> int:
        return len(self.left) or int(self.left_unread)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    rules: policy.QueueRules
    offer_timeout: timedelta


QUEUES = """
    SELECT id, tier_weights, aging_factor, relaxation_steps, sticky_seconds,
           offer_timeout_seconds
    FROM queues
"""


def _queue(row: asyncpg.Record) -> QueueSettings:
    steps = tuple(
        policy.RelaxationStep(
            after_seconds=float(s["after_seconds"]), level_cap=int(s["level_cap"])
        )
        for s in row["relaxation_steps"]
    )
    rules = policy.QueueRules(
        queue_id=row["id"],
        tier_weights={k: float(v) for k, v in row["tier_weights"].items()},
        aging_factor=row["aging_factor"],
        relaxation=steps,
        sticky_seconds=float(row["sticky_seconds"]),
    )
    return QueueSettings(rules, timedelta(seconds=row["offer_timeout_seconds"]))


# A waiting interaction's effective priority at the pass's moment ($2), the policy's formula
# (`policy.effective_priority`) term for term and in its order, so that the floats, and with
# them the order of service, are the policy's own.
EFFECTIVE = """(
    i.priority::float8 + coalesce((q.tier_weights ->> c.tier::text)::float8, 0)
    + q.aging_factor * greatest(0, extract(epoch FROM $2::timestamptz - i.waiting_since))::float8
)"""

# The waiting work in the order of service (`policy.in_line`), a page at a time: after the
# entry ($3, $4, $5) given, or from the top. Each with the agents who already refused or missed
# it, and the version of the queues' rows (worked out once per statement). Only the oldest $6
# are ranked: every read ranks all it is given, and a backlog of 100,000 emails ranked on every
# pass would keep PostgreSQL busy for nothing; behind more than that, the newest wait their turn.
WAITING = f"""
    SELECT i.id, i.channel, i.queue_id, i.priority, i.waiting_since, i.needs, i.customer_id,
           c.tier, {EFFECTIVE} AS effective,
           ARRAY(SELECT o.agent_id FROM offers o WHERE o.interaction_id = i.id
                 AND o.state IN ('rejected', 'timed_out')) AS refused,
           {SETTINGS_VERSION} AS queues_version
    FROM (
        SELECT * FROM interactions WHERE state = 'queued' ORDER BY waiting_since LIMIT $6
    ) i
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    WHERE ($3::float8 IS NULL OR {EFFECTIVE} < $3
           OR ({EFFECTIVE} = $3 AND (i.waiting_since, i.id) > ($4::timestamptz, $5::uuid)))
    ORDER BY effective DESC, i.waiting_since, i.id
    LIMIT $1
"""  # noqa: S608 - constants only, no outside text


async def _page(
    connection: asyncpg.Connection, moment: datetime, after: asyncpg.Record | None
) -> list[asyncpg.Record]:
    """The next page of waiting work in the order of service, after `after` (a row of the
    last page) or from the top."""
    place = (
        (None, None, None)
        if after is None
        else (after["effective"], after["waiting_since"], after["id"])
    )
    rows: list[asyncpg.Record] = await connection.fetch(
        WAITING, WAITING_PAGE, moment, *place, RANKED_LIMIT
    )
    return rows


# A pass that finds nobody with room reads no more than this: with everyone away or full, a
# backlog of thousands read, built and weighed for every arrival and every freed slot that
# frees no room is work for nothing (it took a third of the server's CPU queueing 8,000).
ANY_WAITING = "SELECT EXISTS (SELECT 1 FROM interactions WHERE state = 'queued')"

LAST_AGENTS = """
    SELECT DISTINCT ON (customer_id) customer_id, agent_id, assigned_at
    FROM interactions
    WHERE customer_id = ANY($1::uuid[]) AND agent_id IS NOT NULL AND assigned_at IS NOT NULL
    ORDER BY customer_id, assigned_at DESC
"""


class QueueBook:
    """The queues' routing settings, kept between passes while no queue row has changed.

    They change rarely (an admin edits a queue) and are needed on every pass. The pass's read
    of the waiting work also returns the queue rows' version, so an edit is seen by the very
    next pass and costs no extra round trip.
    """

    def __init__(self) -> None:
        self._version: object = None
        self._queues: dict[uuid.UUID, QueueSettings] = {}

    def current(self, version: object) -> dict[uuid.UUID, QueueSettings] | None:
        """The settings kept, if they are those of `version`; None until a pass reads them."""
        return self._queues if version is not None and version == self._version else None

    async def settings(
        self, connection: asyncpg.Connection, version: object, needed: set[uuid.UUID]
    ) -> dict[uuid.UUID, QueueSettings]:
        if version != self._version or not needed <= self._queues.keys():
            self._queues = {row["id"]: _queue(row) for row in await connection.fetch(QUEUES)}
            self._version = version
        return self._queues


async def _waiting(
    connection: asyncpg.Connection,
    queues: dict[uuid.UUID, QueueSettings],
    rows: list[asyncpg.Record],
) -> list[policy.WaitingInteraction]:
    last: dict[uuid.UUID, asyncpg.Record] = {}
    # Only sticky queues need each customer's last agent: skip the query when none waits.
    sticky = [row["customer_id"] for row in rows if queues[row["queue_id"]].rules.sticky_seconds]
    if sticky:
        customers = list(set(sticky))
        last = {r["customer_id"]: r for r in await connection.fetch(LAST_AGENTS, customers)}
    return [_waiting_item(row, last.get(row["customer_id"])) for row in rows]


def _waiting_item(row: asyncpg.Record, last: asyncpg.Record | None) -> policy.WaitingInteraction:
    return policy.WaitingInteraction(
        id=row["id"],
        channel=Channel(row["channel"]),
        queue_id=row["queue_id"],
        priority=row["priority"],
        tier=row["tier"],
        waiting_since=row["waiting_since"],
        needs=tuple(policy.SkillNeed(n["skill"], int(n["level"])) for n in row["needs"]),
        last_agent_id=None if last is None else last["agent_id"],
        last_agent_at=None if last is None else last["assigned_at"],
        excluded_agents=frozenset(row["refused"]),
    )


async def run_upkeep(
    connection: asyncpg.Connection,
    events: Events,
    *,
    silence: timedelta,
    sweep: bool,
    timeouts: bool,
) -> None:
    """Rules 7-9, inside the caller's transaction: overdue offers end (`timeouts`), and with
    `sweep` silent and deactivated agents leave routing and overdue wrap-ups end.
    The loop asks for these once a tick, not every pass: a deadline a fraction of a tick late
    changes nothing, and the queries are not free."""
    if timeouts:
        await service.time_out_offers(connection, events)
    if sweep:
        await service.sweep_silent_agents(connection, events, silence=silence)
        await service.sweep_deactivated_agents(connection, events)
        await service.end_overdue_wrap_ups(connection, events)


async def run_pass(
    connection: asyncpg.Connection,
    events: Events,
    directory: AgentDirectory,
    book: QueueBook,
    *,
    silence: timedelta,
    reader: asyncpg.Connection | None = None,
) -> PassResult:
    """One matching pass, on the connection that holds the matcher's lock (`Matcher`).

    No transaction around it: the lock already keeps every other pass out, each read sees all
    that was committed before it, and the only write (claims, offers and their events) is one
    statement, atomic by itself. Between the reads, other transactions only ever lower a load
    (only passes add one), so what the reads saw is never less safe than the truth. With a
    second connection (`reader`), the agents are read on it while the waiting work is read on
    the first: two round trips at once instead of one after the other. Unless nobody kept has
    room for anything: then the agents are read first, and the waiting work only if someone
    has room now (else the result says only whether any waits).
    """
    moment = now()
    if reader is None or not directory.anyone_with_room(silence):
        await directory.refresh(reader or connection)
        if not directory.anyone_with_room(silence):
            return PassResult(offers=0, left_unread=bool(await connection.fetchval(ANY_WAITING)))
        rows = await _page(connection, moment, None)
    else:
        async with asyncio.TaskGroup() as both:
            both.create_task(directory.refresh(reader))
            waiting_read = both.create_task(_page(connection, moment, None))
        rows = waiting_read.result()
    if not rows:
        return PassResult(offers=0)
    served = await _serve_pages(connection, directory, book, rows, moment, silence)
    if not served.matches:
        return PassResult(offers=0, left=served.read, left_unread=served.unread)
    # Marked before the write: whether or not it lands, the next pass reads these agents afresh.
    directory.mark(match.agent_id for match in served.matches)
    offered = await _write_offers(
        connection, events, served.matches, served.read, served.queues, moment, directory
    )
    return PassResult(
        offers=len(offered),
        left=tuple(item for item in served.read if item.id not in offered),
        skipped=len(served.matches) - len(offered),
        left_unread=served.unread,
    )


@dataclass(frozen=True, slots=True)
class _Served:
    matches: list[policy.Match]
    read: tuple[policy.WaitingInteraction, ...]  # every interaction read
    queues: dict[uuid.UUID, QueueSettings]
    unread: bool  # more may wait than was read


async def _serve_pages(
    connection: asyncpg.Connection,
    directory: AgentDirectory,
    book: QueueBook,
    rows: list[asyncpg.Record],
    moment: datetime,
    silence: timedelta,
) -> _Served:
    """The agents kept, served page by page in the order of service, one policy pass kept open
    across the pages (`policy.Standing`: the pairs `policy.match` makes over the same order).
    A page is read only while someone has room: at peak a pass reads what the free agents can
    take, not the whole backlog; with room left and work that nobody free can take ahead, up to
    `WAITING_LIMIT` interactions."""
    standing = policy.Standing(directory.kept(silence))
    matches: list[policy.Match] = []
    read: list[policy.WaitingInteraction] = []
    seen: set[uuid.UUID] = set()  # a row that moved up between two pages comes once
    while True:
        queues = await book.settings(
            connection, rows[0]["queues_version"], {row["queue_id"] for row in rows}
        )
        rules = {queue_id: queue.rules for queue_id, queue in queues.items()}
        fresh = [row for row in rows if row["id"] not in seen]
        seen.update(row["id"] for row in fresh)
        page = await _waiting(connection, queues, fresh)
        read.extend(page)
        matches.extend(standing.serve_in_order(page, rules, moment))
        more = len(rows) == WAITING_PAGE
        if not more or standing.full() or len(read) >= WAITING_LIMIT:
            return _Served(matches, tuple(read), queues, unread=more)
        rows = await _page(connection, moment, rows[-1])
        if not rows:
            return _Served(matches, tuple(read), queues, unread=False)


# Every writer of an offer takes the agent's row lock and moves its `routing_version` (this
# and app.routing.arrivals), landing the offer only while the row is still as it was read: of
# two writers that counted on the same room, the second finds the row moved and writes nothing.
NEXT_VERSION = "a.routing_version + 1"

# One statement locks the agents whose row is still as the directory read it and routable (it
# may not have heard yet of a change of state, capacity or skills, of a user deactivated, or of
# an offer written by an arrival: such an offer is skipped and its agent read afresh by the
# next pass), claims their interactions if still queued (one may have been abandoned since the
# read), inserts the offers and their events in the order of the matches, and returns each
# offer's screen pop: four writes and the pop's read, one round trip, one commit. The agents
# are locked before the interactions, the order of routing_accept (migration 0006). The pop is
# read from the statement's snapshot, taken before its writes: the interaction is still
# `queued` there, and nothing the pop shows changes when it is offered.
WRITE_OFFERS = f"""
    WITH input AS (
        SELECT o.*
        FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[],
                    $7::text[], $8::text[], $11::bigint[])
            AS o(id, interaction_id, agent_id, channel, deadline, reason, matched, agent_read)
    ), locked AS (
        UPDATE agents a SET routing_version = {NEXT_VERSION}
        FROM (SELECT DISTINCT agent_id, agent_read FROM input) r, users u
        WHERE a.id = r.agent_id AND a.routing_version = r.agent_read
          AND a.state IN ('available', 'busy', 'wrap_up')
          AND u.id = a.user_id AND u.is_active
        RETURNING a.id, a.routing_version
    ), proposed AS (
        SELECT input.* FROM input JOIN locked ON locked.id = input.agent_id
    ), claimed AS (
        UPDATE interactions SET state = 'offered', offered_at = $1, updated_at = $1
        WHERE id IN (SELECT interaction_id FROM proposed) AND state = 'queued'
        RETURNING id
    ), offered AS (
        INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,
                            reason, matched)
        SELECT p.id, p.interaction_id, p.agent_id, p.channel, 'pending', $1, p.deadline,
               p.reason, p.matched::jsonb
        FROM proposed p JOIN claimed c ON c.id = p.interaction_id
        RETURNING interaction_id
    ), written AS (
        INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
        SELECT $1, 'interaction.offered', 'interaction', e.interaction_id::text, $9,
               e.payload::jsonb
        FROM unnest($3::uuid[], $10::text[]) WITH ORDINALITY AS e(interaction_id, payload, n)
        JOIN offered USING (interaction_id)
        ORDER BY e.n
        RETURNING id, subject_id
    )
    SELECT w.id, w.subject_id, l.routing_version AS agent_version, {screen_pop.COLUMNS}
    FROM written w JOIN interactions i ON i.id = w.subject_id::uuid {screen_pop.JOINS}
    JOIN proposed p ON p.interaction_id = i.id JOIN locked l ON l.id = p.agent_id
"""  # noqa: S608 - constants only, no outside text


async def _write_offers(
    connection: asyncpg.Connection,
    events: Events,
    matches: Sequence[policy.Match],
    waiting: Sequence[policy.WaitingInteraction],
    queues: dict[uuid.UUID, QueueSettings],
    moment: datetime,
    directory: AgentDirectory,
) -> set[uuid.UUID]:
    """Writes what lands of `matches`; returns the interactions offered. The directory keeps
    the offered agents' new rows, so that arrivals count these offers before the next read."""
    if not matches:
        return set()
    by_id = {item.id: item for item in waiting}
    offers = [new_offer(match, by_id[match.interaction_id], queues, moment) for match in matches]
    by_interaction = {str(o.match.interaction_id): o for o in offers}
    payloads = {key: offer.event_payload() for key, offer in by_interaction.items()}
    columns = [list(column) for column in zip(*(o.as_row() for o in offers), strict=True)]
    read = {o.match.agent_id: directory.version_read(o.match.agent_id) for o in offers}
    written = await connection.fetch(
        WRITE_OFFERS,
        moment,
        *columns,
        SYSTEM_ACTOR,
        [json.dumps(payloads[str(o.match.interaction_id)]) for o in offers],
        [read[o.match.agent_id] for o in offers],
    )
    events.note_written(
        offered_event(row["id"], moment, payloads[row["subject_id"]], row)
        for row in sorted(written, key=lambda row: row["id"])
    )
    landed: dict[uuid.UUID, tuple[int, int, list[Channel]]] = {}
    for row in written:
        offer = by_interaction[row["subject_id"]]
        agent_id = offer.match.agent_id
        entry = landed.setdefault(agent_id, (read[agent_id], row["agent_version"], []))
        entry[2].append(offer.item.channel)
    directory.pass_offered(landed)
    return {uuid.UUID(row["subject_id"]) for row in written}


def offered_event(
    event_id: int, moment: datetime, payload: dict[str, Any], pop_row: Mapping[str, Any]
) -> EventRecord:
    """An `interaction.offered` event as written, with the screen pop read alongside."""
    pop = screen_pop.from_row(pop_row, screen_pop.routing_of(payload))
    return EventRecord(
        id=event_id,
        occurred_at=moment,
        kind="interaction.offered",
        subject_type="interaction",
        subject_id=str(pop_row["pop_interaction_id"]),
        actor=SYSTEM_ACTOR,
        payload=payload,
        attached={"screen_pop": pop},
    )


@dataclass(frozen=True, slots=True)
class NewOffer:
    """An offer about to be written: its row and its event's payload."""

    id: uuid.UUID
    match: policy.Match
    item: policy.WaitingInteraction
    deadline: datetime

    def as_row(self) -> tuple[object, ...]:
        return (
            self.id,
            self.match.interaction_id,
            self.match.agent_id,
            self.item.channel.value,
            self.deadline,
            self.reason,
            self.matched(),
        )

    @property
    def reason(self) -> str:
        return self.match.reason[:REASON_LENGTH]

    def matched(self) -> str:
        """The offer row's `matched` column, as JSON text."""
        return json.dumps(
            {
                "skills": dict(self.match.matched_skills),
                "effective_priority": self.match.effective_priority,
            }
        )

    def event_payload(self) -> dict[str, object]:
        return {
            "from": "queued",
            "offer_id": str(self.id),
            "agent_id": str(self.match.agent_id),
            "channel": self.item.channel.value,
            "queue_id": str(self.item.queue_id),
            "deadline": self.deadline.isoformat(),
            "reason": self.reason,
            "matched_skills": dict(self.match.matched_skills),
            "effective_priority": self.match.effective_priority,
        }


def new_offer(
    match: policy.Match,
    item: policy.WaitingInteraction,
    queues: dict[uuid.UUID, QueueSettings],
    moment: datetime,
) -> NewOffer:
    return NewOffer(uuid.uuid4(), match, item, moment + queues[item.queue_id].offer_timeout)


@dataclass(frozen=True, slots=True)
class ArrivalView:
    """The leader's routing state between passes, for an arrival matched as it comes in."""

    directory: AgentDirectory
    queues: dict[uuid.UUID, QueueSettings]
    left: tuple[policy.WaitingInteraction, ...]  # what the last pass read and did not offer
    silence: timedelta


class Matcher:
    """Runs passes in the background: on every waking event, and on a tick for timeouts/aging.

    Every replica runs one; one of them leads. Leading means holding a session-level advisory
    lock on a connection of the matcher's own, and only the leader runs passes, so passes never
    overlap across replicas (DESIGN.md section 3). The others bid for the lock once a tick: when
    the leader's process dies, PostgreSQL ends its session, the lock goes with it, and another
    replica takes over within a tick. A pass then needs no BEGIN, lock and COMMIT of its own
    (three round trips fewer on every interaction's way to an agent; docs/benchmarks.md).
    """

    def __init__(
        self,
        database_url: str,
        hub: EventHub,
        *,
        tick: float,
        silence: timedelta,
        sweep_every: float = 1.0,
    ) -> None:
        self._database_url = database_url
        self._directory = AgentDirectory()
        self._book = QueueBook()
        self._hub = hub
        self._tick = tick
        self._silence = silence
        self._sweep_every = sweep_every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._connection: asyncpg.Connection | None = None
        self._reader: asyncpg.Connection | None = None
        self._leading = False
        self._last_bid = float("-inf")
        self._last_sweep = 0.0
        self._last_timeouts = 0.0
        # What the last pass left waiting; until a pass says, work is taken to wait.
        self._last = PassResult(offers=0, left_unread=True)
        self._unread = 0  # interactions queued here since the last pass began
        self._woken_for: dict[str, float] = {}  # interaction id -> when woken for it
        self._stopping = False

    @property
    def leading(self) -> bool:
        return self._leading

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
        if not self._leading or self._unread or self._last.left_unread:
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
        await self._resign()

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
        elif event.kind == NEW_WORK or self._last.left_waiting:
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick):
                    await self._wake.wait()
            self._wake.clear()
            try:
                connection = await self._lead(loop.time())
                if connection is not None:
                    unread = self._unread  # committed already: this pass reads them
                    await self._upkeep(connection, loop.time())
                    events = Events()
                    result = await run_pass(
                        connection,
                        events,
                        self._directory,
                        self._book,
                        silence=self._silence,
                        reader=await self._reader_connection(),
                    )
                    self._hub.publish(events.written)
                    self._last = result
                    self._unread -= unread
                    if not self._unread:  # arrivals may be matched at once: build it now
                        self._directory.standing(self._silence)
                    if result.skipped:  # its agents are marked: the next pass reads them afresh
                        self._wake.set()
            except Exception as error:  # a failed pass is retried on the next tick
                if self._stopping:
                    return
                log.exception("matcher pass failed", error=repr(error))
                await self._resign()
                await asyncio.sleep(0.2)

    async def _lead(self, moment: float) -> asyncpg.Connection | None:
        """The leader's connection, bidding for the lock at most once a tick while another
        replica holds it; None while not leading."""
        if self._leading and self._connection is not None and not self._connection.is_closed():
            return self._connection
        self._leading = False
        self._last = PassResult(offers=0)  # only the leader's passes say what waits
        self._unread = 0
        if self._reader is not None:  # a second connection only while leading
            reader, self._reader = self._reader, None
            await _close(reader)
        if moment - self._last_bid < self._tick:
            return None
        self._last_bid = moment
        if self._connection is None or self._connection.is_closed():
            self._connection = await connect(self._database_url)
            # Passes and upkeep publish what they write; the hub announces it.
            await self._hub.own(self._connection)
        if await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", MATCHER_LOCK_KEY):
            self._leading = True
            self._directory.forget()  # kept from before, while another replica routed
            log.info("this replica now runs the matcher")
            return self._connection
        return None

    async def _reader_connection(self) -> asyncpg.Connection:
        """The leader's second connection, for the agents' read while the first reads the
        waiting work (`run_pass`). It writes nothing, so it is not the hub's to own."""
        if self._reader is None or self._reader.is_closed():
            self._reader = await connect(self._database_url)
        return self._reader

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

    async def _resign(self) -> None:
        """Give up the lead (if held) by ending the session, the one way it is let go."""
        self._leading = False
        connections = (self._connection, self._reader)
        self._connection = self._reader = None
        for connection in connections:
            await _close(connection)


async def _close(connection: asyncpg.Connection | None) -> None:
    if connection is None or connection.is_closed():
        return
    try:
        await asyncio.wait_for(connection.close(), timeout=2)
    except Exception:  # closing politely failed: drop the socket; the session ends too
        connection.terminate()

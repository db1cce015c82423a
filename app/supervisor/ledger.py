"""A replica's live ledger: the event log folded into what each queue's line did, minute by
minute and quarter-hour by quarter-hour, and what each agent did over the last 30 minutes.

The supervisors' live figures read it (docs/metrics.md defines each; app/routing/figures.py
computes them from its tallies): today's and the last 30 minutes' service of each line, the
day in quarter-hours for the wallboard's chart, and each agent's occupancy. Every replica keeps
its own, seeded from the log (`seed_ledger`) and then fed every event its hub hears (`take`),
so all replicas tell the same figures without a table of their own.

Each event that ends a wait says what it needs (its queue, channel and `waited_seconds`), so a
wait is counted from its ending event alone, however long ago it began: the fold keeps no
waits open. What an agent holds changes with the events that give and take it away.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.agents.states import ROUTABLE
from app.core.hub import EventRecord
from app.queues.models import AbandonPolicy
from app.routing.figures import (
    JOINED,
    HandleTime,
    LineEnd,
    ServiceRules,
    Tally,
    abandonment_rate,
    average_speed_of_answer,
    occupancy,
    service_level,
    wait_ended,
)

RECENT = timedelta(minutes=30)
QUARTER = timedelta(minutes=15)
_MINUTE_S = 60
_QUARTER_S = 15 * 60
# A queue's day, in its own zone, began at most this long ago (UTC+14 against a day that has
# just ended): quarters older than this are no one's today any more.
_LONGEST_DAY = timedelta(hours=50)
# Event ids applied, remembered this far back: the seed's read and the hub's stream overlap.
_REMEMBERED_IDS = 20_000

# The states of an agent in routing, whose time is staffed time.
STAFFED_STATES = frozenset(state.value for state in ROUTABLE)
# Ways a wait ends, by the event that ends it (`interaction.<state>`).
ENDS = {
    "interaction.abandoned": LineEnd.abandoned,
    "interaction.expired": LineEnd.expired,
    "interaction.converted": LineEnd.converted,
    "interaction.transferred_out": LineEnd.transferred,
}
WAITING = frozenset({"queued", "offered"})
# The kinds the ledger folds; others change nothing it counts.
KINDS = (
    "interaction.queued",
    "interaction.assigned",
    "interaction.moved",
    "interaction.completed",
    *ENDS,
    "agent.state_changed",
)


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """What a queue's figures are told against: its zone (its day) and its service rules."""

    zone: ZoneInfo
    rules: ServiceRules

    @property
    def abandon_policy(self) -> AbandonPolicy:
        return self.rules.abandon_policy


DEFAULT_SETTINGS = QueueSettings(
    zone=ZoneInfo("UTC"),
    rules=ServiceRules(
        target_seconds=20, abandon_policy=AbandonPolicy.against, short_abandon_seconds=5
    ),
)


@dataclass(slots=True)
class Touched:
    """What an event changed: the queues whose figures and the agents whose views moved."""

    queues: set[uuid.UUID] = field(default_factory=set)
    agents: set[uuid.UUID] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """A queue's figures over a period: its tally and what docs/metrics.md derives from it."""

    tally: Tally
    service_level: float | None
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None

    @classmethod
    def of(
        cls, tally: Tally, policy: AbandonPolicy, aht: HandleTime | None = None
    ) -> PeriodFigures:
        return cls(
            tally=tally,
            service_level=service_level(tally, policy),
            asa_s=average_speed_of_answer(tally),
            aht_s=None if aht is None else aht.seconds,
            abandon_rate=abandonment_rate(tally),
        )

    def as_json(self) -> dict[str, Any]:
        t = self.tally
        return {
            "offered": t.offered,
            "answered": t.answered,
            "answered_in_target": t.answered_in_target,
            "abandoned": t.abandoned,
            "short_abandoned": t.short_abandoned,
            "expired": t.expired,
            "transferred": t.transferred,
            "converted": t.converted,
            "service_level": self.service_level,
            "asa_s": self.asa_s,
            "aht_s": self.aht_s,
            "abandon_rate": self.abandon_rate,
        }


@dataclass(frozen=True, slots=True)
class IntervalFigures:
    """One quarter-hour of a queue's day, for the wallboard's chart."""

    start: datetime
    offered: int
    service_level: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "offered": self.offered,
            "service_level": self.service_level,
        }


@dataclass(frozen=True, slots=True)
class QueuePeriods:
    today: PeriodFigures
    last_30_min: PeriodFigures
    by_interval: list[IntervalFigures]


def day_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start of `moment`'s day in `zone` (its local midnight), as an aware instant: a day
    with a daylight-saving change is 23 or 25 hours long."""
    local = moment.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def _bucket(moment: datetime, seconds: int) -> int:
    return int(moment.timestamp()) // seconds


@dataclass(slots=True)
class _Line:
    """One queue's tallies by minute (the last half hour) and by quarter-hour (two days)."""

    minutes: dict[int, Tally] = field(default_factory=dict)
    quarters: dict[int, Tally] = field(default_factory=dict)

    def add(self, at: datetime, tally: Tally) -> None:
        for buckets, size in ((self.minutes, _MINUTE_S), (self.quarters, _QUARTER_S)):
            key = _bucket(at, size)
            buckets[key] = buckets.get(key, Tally()) + tally

    def forget_before(self, moment: datetime) -> None:
        oldest_minute = _bucket(moment - RECENT, _MINUTE_S)
        oldest_quarter = _bucket(moment - _LONGEST_DAY, _QUARTER_S)
        for key in [k for k in self.minutes if k < oldest_minute]:
            del self.minutes[key]
        for key in [k for k in self.quarters if k < oldest_quarter]:
            del self.quarters[key]


@dataclass(slots=True)
class _Agent:
    """An agent's staffed and holding time: what held at `since`, and the changes after it."""

    since: datetime
    staffed: bool
    holding: int
    changes: list[tuple[datetime, bool, int]] = field(default_factory=list)

    def change(self, at: datetime, staffed: bool | None, held: int) -> None:
        last_staffed, last_holding = self.now()
        self.changes.append(
            (at, last_staffed if staffed is None else staffed, max(0, last_holding + held))
        )

    def now(self) -> tuple[bool, int]:
        if self.changes:
            _, staffed, holding = self.changes[-1]
            return staffed, holding
        return self.staffed, self.holding

    def occupancy(self, moment: datetime) -> float | None:
        """`figures.occupancy` over the last 30 minutes up to `moment`."""
        start = moment - RECENT
        staffed_s = handling_s = 0.0
        at, staffed, holding = self.since, self.staffed, self.holding
        for next_at, next_staffed, next_holding in [*self.changes, (moment, False, 0)]:
            begin, end = max(at, start), min(next_at, moment)
            if end > begin and staffed:
                staffed_s += (end - begin).total_seconds()
                if holding:
                    handling_s += (end - begin).total_seconds()
            at, staffed, holding = next_at, next_staffed, next_holding
        return occupancy(handling_s, staffed_s)

    def forget_before(self, moment: datetime) -> None:
        start = moment - RECENT
        while self.changes and self.changes[0][0] <= start:
            self.since, self.staffed, self.holding = self.changes.pop(0)


class Ledger:
    """The fold. `apply` takes the log's events in order (each once: a repeated id is ignored);
    `periods` and `occupancy` tell the figures at a moment."""

    def __init__(
        self, queues: Mapping[uuid.UUID, QueueSettings] | None = None, default_zone: str = "UTC"
    ) -> None:
        # The zone of a queue without business hours: the center's (`CC_TIME_ZONE`).
        self.default_zone = default_zone
        self._settings: dict[uuid.UUID, QueueSettings] = dict(queues or {})
        self._lines: dict[uuid.UUID, _Line] = {}
        self._agents: dict[uuid.UUID, _Agent] = {}
        self._applied: set[int] = set()
        self._highest = 0

    # --- what it is told ---------------------------------------------------------------------

    def set_queue(self, queue_id: uuid.UUID, settings: QueueSettings) -> None:
        self._settings[queue_id] = settings

    def settings(self, queue_id: uuid.UUID) -> QueueSettings:
        return self._settings.get(queue_id, DEFAULT_SETTINGS)

    def knows_queue(self, queue_id: uuid.UUID) -> bool:
        return queue_id in self._settings

    def start_agent(self, agent_id: uuid.UUID, at: datetime, staffed: bool, holding: int) -> None:
        """What an agent was doing at `at`, before the events the ledger will be given."""
        self._agents[agent_id] = _Agent(since=at, staffed=staffed, holding=holding)

    def apply(self, event: EventRecord) -> Touched:
        touched = Touched()
        if event.id in self._applied:
            return touched
        self._remember(event.id)
        for queue_id, tally in self.line_changes(event):
            self._lines.setdefault(queue_id, _Line()).add(event.occurred_at, tally)
            touched.queues.add(queue_id)
        for agent_id, staffed, held in agent_changes(event):
            agent = self._agents.get(agent_id)
            if agent is None:
                agent = self._agents[agent_id] = _Agent(event.occurred_at, False, 0)
            if event.occurred_at < agent.since:
                continue  # what it did then is in what it was doing at `since` (the seed's)
            agent.change(event.occurred_at, staffed, held)
            touched.agents.add(agent_id)
        return touched

    def line_changes(self, event: EventRecord) -> list[tuple[uuid.UUID, Tally]]:
        """What `event` adds to which queue's line (docs/metrics.md, "The line")."""
        payload = event.payload
        if event.kind == "interaction.queued":
            joined = payload.get("to_queue_id") if "from" in payload else payload.get("queue_id")
            return [] if joined is None else [(uuid.UUID(joined), JOINED)]
        if event.kind == "interaction.moved":
            left = uuid.UUID(payload["from_queue_id"])
            ended = self._ended(left, LineEnd.transferred, payload)
            return [(left, ended), (uuid.UUID(payload["to_queue_id"]), JOINED)]
        end = LineEnd.answered if event.kind == "interaction.assigned" else ENDS.get(event.kind)
        if end is None or "queue_id" not in payload:
            return []  # not a wait's end, or written before ends said their queue (0028)
        if end is not LineEnd.answered and payload.get("from") not in WAITING:
            return []  # sent out of the center after its answer: the wait ended then
        queue_id = uuid.UUID(payload["queue_id"])
        return [(queue_id, self._ended(queue_id, end, payload))]

    def _ended(self, queue_id: uuid.UUID, end: LineEnd, payload: Mapping[str, Any]) -> Tally:
        waited = float(payload.get("waited_seconds") or 0.0)
        return wait_ended(end, waited, self.settings(queue_id).rules)

    def _remember(self, event_id: int) -> None:
        self._applied.add(event_id)
        self._highest = max(self._highest, event_id)
        if len(self._applied) > 2 * _REMEMBERED_IDS:
            floor = self._highest - _REMEMBERED_IDS
            self._applied = {i for i in self._applied if i > floor}

    # --- what it tells ---------------------------------------------------------------------

    def tally(self, queue_id: uuid.UUID, start: datetime, moment: datetime) -> Tally:
        """The line's tally from the quarter-hour of `start` to `moment`'s (both whole)."""
        line = self._lines.get(queue_id)
        if line is None:
            return Tally()
        first, last = _bucket(start, _QUARTER_S), _bucket(moment, _QUARTER_S)
        total = Tally()
        for key, tally in line.quarters.items():
            if first <= key <= last:
                total += tally
        return total

    def recent(self, queue_id: uuid.UUID, moment: datetime) -> Tally:
        """The line's tally over the last 30 minutes: `moment`'s minute and the 29 before."""
        line = self._lines.get(queue_id)
        if line is None:
            return Tally()
        last = _bucket(moment, _MINUTE_S)
        total = Tally()
        for key, tally in line.minutes.items():
            if last - 30 < key <= last:
                total += tally
        return total

    def intervals(self, queue_id: uuid.UUID, moment: datetime) -> list[IntervalFigures]:
        """Today's quarter-hours in the queue's zone, from its midnight to `moment`'s."""
        settings = self.settings(queue_id)
        line = self._lines.get(queue_id, _Line())
        start = day_start(moment, settings.zone)
        result = []
        while start <= moment:
            tally = line.quarters.get(_bucket(start, _QUARTER_S), Tally())
            level = service_level(tally, settings.abandon_policy)
            result.append(IntervalFigures(start, tally.offered, level))
            start += QUARTER
        return result

    def periods(
        self,
        queue_id: uuid.UUID,
        moment: datetime,
        aht_today: HandleTime | None = None,
        aht_recent: HandleTime | None = None,
    ) -> QueuePeriods:
        """The queue's today (from its local midnight) and last 30 minutes, and today's
        quarter-hours. AHT is read from the interactions themselves (`read_queue_periods`)."""
        settings = self.settings(queue_id)
        today = self.tally(queue_id, day_start(moment, settings.zone), moment)
        return QueuePeriods(
            today=PeriodFigures.of(today, settings.abandon_policy, aht_today),
            last_30_min=PeriodFigures.of(
                self.recent(queue_id, moment), settings.abandon_policy, aht_recent
            ),
            by_interval=self.intervals(queue_id, moment),
        )

    def occupancy(self, agent_id: uuid.UUID, moment: datetime) -> float | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else agent.occupancy(moment)

    def forget_before(self, moment: datetime) -> None:
        """Drop what no figure at `moment` or later reads (call now and then)."""
        for line in self._lines.values():
            line.forget_before(moment)
        for agent in self._agents.values():
            agent.forget_before(moment)


def agent_changes(event: EventRecord) -> list[tuple[uuid.UUID, bool | None, int]]:
    """What `event` changes for an agent: (agent, staffed now or None for unchanged, change in
    what it holds). An interaction is held from its assignment to the end of its wrap-up."""
    payload = event.payload
    if event.kind == "agent.state_changed" and payload.get("to") is not None:
        return [(uuid.UUID(event.subject_id), payload["to"] in STAFFED_STATES, 0)]
    holder = payload.get("agent_id")
    if event.kind == "interaction.assigned" and holder:
        return [(uuid.UUID(holder), None, 1)]
    if payload.get("from") not in ("assigned", "wrap_up"):
        return []
    if event.kind == "interaction.completed" and holder:
        return [(uuid.UUID(holder), None, -1)]
    gone = payload.get("from_agent_id") or holder
    if event.kind in ("interaction.queued", "interaction.transferred_out") and gone:
        return [(uuid.UUID(gone), None, -1)]
    return []

"""A stand-in for the lead's app/supervisor/ledger.py, with its interface (HELPERS.md), until
that lands on main: it counts offered interactions only. Deleted when main is merged."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from app.core.hub import EventRecord


@dataclass(frozen=True, slots=True)
class QueueSettings:
    zone: ZoneInfo
    sl_target_seconds: int
    abandon_policy: str
    short_abandon_seconds: float = 5.0


@dataclass(slots=True)
class Touched:
    queues: set[uuid.UUID] = field(default_factory=set)
    agents: set[uuid.UUID] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    offered: int = 0
    answered: int = 0
    answered_in_target: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    expired: int = 0
    transferred: int = 0
    converted: int = 0
    service_level: float | None = None
    asa_s: float | None = None
    aht_s: float | None = None
    abandon_rate: float | None = None


@dataclass(frozen=True, slots=True)
class IntervalFigures:
    start: datetime
    offered: int = 0
    service_level: float | None = None


@dataclass(frozen=True, slots=True)
class QueuePeriods:
    today: PeriodFigures
    last_30_min: PeriodFigures
    by_interval: list[IntervalFigures]


class Ledger:
    def __init__(self, zones: Mapping[uuid.UUID, QueueSettings]) -> None:
        self._zones = dict(zones)
        self._queue_of: dict[str, uuid.UUID] = {}
        self._offered: dict[uuid.UUID, list[datetime]] = {}

    def apply(self, event: EventRecord) -> Touched:
        touched = Touched()
        agent = event.agent_id
        if agent is not None:
            touched.agents.add(uuid.UUID(agent))
        if event.subject_type != "interaction":
            return touched
        named = event.payload.get("queue_id") or event.payload.get("to_queue_id")
        if named is not None:
            self._queue_of[event.subject_id] = uuid.UUID(str(named))
        queue = self._queue_of.get(event.subject_id)
        if queue is None:
            return touched
        touched.queues.add(queue)
        if event.kind == "interaction.queued":
            self._offered.setdefault(queue, []).append(event.occurred_at)
        return touched

    def periods(self, queue_id: uuid.UUID, now: datetime) -> QueuePeriods:
        times = self._offered.get(queue_id, [])
        today = sum(1 for t in times if t.date() == now.date())
        recent = sum(1 for t in times if t > now - timedelta(minutes=30))
        return QueuePeriods(PeriodFigures(offered=today), PeriodFigures(offered=recent), [])


async def seed_ledger(connection: asyncpg.Connection, ledger: Ledger, now: datetime) -> None:
    """Nothing folded: the stand-in starts empty."""

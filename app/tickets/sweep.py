"""The deadline sweep: a complaint's owner is warned before a deadline passes, the complaint
escalates when it passes, and a reply the customer never answered is deemed accepted
(docs/complaints.md, "Warnings and escalation").

- warn: a running clock (not ended, not paused) due within the policy's `warn_minutes` and
  not yet warned gets `warned_at` and the event `complaint.deadline_warning`, which the
  owner's desk shows. Only before the deadline: one already passed escalates instead.
- escalate: a running clock past its deadline and not yet escalated gets `escalated_at`, its
  complaint is flagged overdue, and the event `complaint.escalated` says so (the supervisors'
  live view shows these, and the owner's desk).
- deem accepted: a complaint at step 4 whose `answer_due_at` has passed takes the workflow's
  `deemed_accepted` as the system (service.act records it like any move).

Every replica sweeps, every few seconds. Rows are claimed FOR UPDATE SKIP LOCKED and the
conditions read again under the lock, so two sweeps never warn, escalate or deem the same one
twice, and a complaint someone is changing right now is left to the next sweep rather than
waited for (the sweep never waits on a lock, so it cannot deadlock with an action that locks
the complaint first and its clocks after). Each pass is its own unit of work: its events are
published after its commit. The clock is injected (`now`), so tests sweep at any moment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import Wakes, unit_of_work
from app.core.errors import AppError
from app.core.events import SYSTEM_ACTOR, events_of
from app.core.hub import EventHub
from app.core.logging import get_logger
from app.core.models import utcnow
from app.core.periodic import Periodic
from app.tickets import acts, service
from app.tickets import policy as policies
from app.tickets.models import Complaint, ComplaintDeadline
from app.tickets.schemas import ActionRecords
from app.tickets.workflow import Action, Step

log = get_logger(__name__)

SWEEP_EVERY = 5.0
# Deemed acceptance counts business days, and its read has no index of its own (complaints at
# step 4): once a minute is soon enough and keeps the read off every sweep.
DEEM_EVERY = 60.0
BATCH = 100

WARNING = "complaint.deadline_warning"
ESCALATED = "complaint.escalated"

Clock = Callable[[], datetime]
Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Swept:
    """What one sweep did."""

    warned: int = 0
    escalated: int = 0
    deemed: int = 0


def _running() -> tuple[Any, ...]:
    """The clocks the partial index ix_complaint_deadlines_running holds."""
    return (ComplaintDeadline.ended_at.is_(None), ComplaintDeadline.paused_since.is_(None))


async def warn(sessions: Sessions, now: datetime, *, hub: EventHub | None = None) -> int:
    """Warn the owners of the running clocks due within the policy's warning time."""
    async with unit_of_work(sessions, hub=hub) as session:
        warn_minutes = (await policies.load(session)).warn_minutes
        claimed = await _claim(
            session,
            ComplaintDeadline.warned_at.is_(None),
            ComplaintDeadline.due_at > now,
            ComplaintDeadline.due_at <= now + timedelta(minutes=warn_minutes),
        )
        for clock, complaint in claimed:
            clock.warned_at = now
            _record(session, WARNING, clock, complaint, {"warn_minutes": warn_minutes})
        return len(claimed)


async def escalate(sessions: Sessions, now: datetime, *, hub: EventHub | None = None) -> int:
    """Escalate the running clocks past their deadline: their complaints are overdue."""
    async with unit_of_work(sessions, hub=hub) as session:
        claimed = await _claim(
            session, ComplaintDeadline.escalated_at.is_(None), ComplaintDeadline.due_at <= now
        )
        for clock, complaint in claimed:
            clock.escalated_at = now
            complaint.overdue = True
            _record(session, ESCALATED, clock, complaint, {"warned_at": _iso(clock.warned_at)})
        return len(claimed)


async def _claim(
    session: AsyncSession, *conditions: Any
) -> list[tuple[ComplaintDeadline, Complaint]]:
    """Running clocks meeting `conditions`, soonest due first, each with its complaint, both
    locked; rows another transaction holds are skipped (the next sweep finds them). Under
    READ COMMITTED a row locked after another sweep's commit is read again as committed, so
    a clock warned meanwhile no longer meets `warned_at IS NULL` and is not claimed."""
    rows = await session.execute(
        select(ComplaintDeadline, Complaint)
        .join(Complaint, Complaint.id == ComplaintDeadline.complaint_id)
        .where(*_running(), *conditions)
        .order_by(ComplaintDeadline.due_at, ComplaintDeadline.id)
        .limit(BATCH)
        .with_for_update(of=(ComplaintDeadline, Complaint), skip_locked=True)
    )
    return [(clock, complaint) for clock, complaint in rows]


def _record(
    session: AsyncSession,
    kind: str,
    clock: ComplaintDeadline,
    complaint: Complaint,
    extra: dict[str, Any],
) -> None:
    owner = None if complaint.owner_agent_id is None else str(complaint.owner_agent_id)
    events_of(session).add(
        kind,
        subject_type=acts.SUBJECT,
        subject_id=complaint.id,
        actor=SYSTEM_ACTOR,
        payload={
            "reference": complaint.reference,
            "step": complaint.step,
            "clock": clock.clock,
            "due_at": clock.due_at.isoformat(),
            "owner_agent_id": owner,
            # The hub hands an event to the desk of the agent its payload's `agent_id` names
            # (and a reconnecting desk replays those): so the owner's desk alone gets it.
            "agent_id": owner,
            **extra,
        },
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- deemed acceptance --------------------------------------------------------------------------

REPLIES_UNANSWERED = (
    select(Complaint.id)
    .where(Complaint.step == Step.reply.value, Complaint.answer_due_at.is_not(None))
    .order_by(Complaint.answer_due_at, Complaint.id)
    .limit(BATCH)
)


async def deem_accepted(
    sessions: Sessions,
    context: acts.Context,
    *,
    hub: EventHub | None = None,
    outbox: Wakes | None = None,
) -> int:
    """Replies unanswered past their `answer_due_at` are deemed accepted, one complaint per
    unit of work: one that fails is logged and the others still go."""
    async with sessions() as session:
        due = list(
            await session.scalars(REPLIES_UNANSWERED.where(Complaint.answer_due_at <= context.now))
        )
    deemed = 0
    for complaint_id in due:
        try:
            async with unit_of_work(sessions, hub=hub, outbox=outbox) as session:
                deemed += await _deem(session, complaint_id, context)
        except AppError as error:  # the workflow refused: a bug, not a reason to stop the rest
            log.error(
                "complaint not deemed accepted", complaint_id=str(complaint_id), error=repr(error)
            )
    return deemed


async def _deem(session: AsyncSession, complaint_id: uuid.UUID, context: acts.Context) -> int:
    complaint = await session.scalar(
        select(Complaint)
        .where(
            Complaint.id == complaint_id,
            Complaint.step == Step.reply.value,
            Complaint.answer_due_at <= context.now,
        )
        .with_for_update(skip_locked=True)
    )
    if complaint is None:  # answered, deemed by another sweep, or being changed right now
        return 0
    await service.act(
        session, complaint, Action.deemed_accepted, ActionRecords(), acts.SYSTEM, context
    )
    return 1


# --- the task -----------------------------------------------------------------------------------


class ComplaintSweep:
    """Warns, escalates (every `every` seconds) and deems replies accepted (every
    `deem_every`) until stopped, at the moments `now` tells."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        notices: acts.CustomerNotices,
        link_base: str,
        hub: EventHub | None = None,
        outbox: Wakes | None = None,
        now: Clock = utcnow,
        every: float = SWEEP_EVERY,
        deem_every: float = DEEM_EVERY,
    ) -> None:
        self._sessions = sessions
        self._notices = notices
        self._link_base = link_base
        self._hub = hub
        self._outbox = outbox
        self._now = now
        self._deem_every = deem_every
        self._deemed_at: float | None = None
        self._rounds = Periodic(
            "complaint sweep",
            lambda: self.sweep_once(deem=self._deem_due()),
            every,
            (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                SQLAlchemyError,
            ),
        )

    async def sweep_once(self, *, deem: bool = True) -> Swept:
        """Warn, then escalate, then (with `deem`) deem unanswered replies accepted."""
        moment = self._now()
        warned = await warn(self._sessions, moment, hub=self._hub)
        escalated = await escalate(self._sessions, moment, hub=self._hub)
        deemed = 0
        if deem:
            context = acts.Context(now=moment, notices=self._notices, link_base=self._link_base)
            deemed = await deem_accepted(
                self._sessions, context, hub=self._hub, outbox=self._outbox
            )
        return Swept(warned, escalated, deemed)

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    def _deem_due(self) -> bool:
        moment = time.monotonic()
        if self._deemed_at is not None and moment - self._deemed_at < self._deem_every:
            return False
        self._deemed_at = moment
        return True

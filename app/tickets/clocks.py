"""A complaint's clocks and visits, moved with its steps (deadlines.DEADLINE_STEPS says where
each clock starts and ends):

- raised: enters intake.
- complete_intake: leaves intake, enters accept; the accept clock starts.
- confirm: leaves accept, enters investigate; accept ends; investigate starts; the reply
  clock starts (the first time only).
- reject: leaves accept, enters rejected; accept ends.
- send_reply: leaves investigate, enters reply; investigate ends; reply pauses.
- customer_rejects: leaves reply, enters investigate; reply resumes (its deadline moves by
  the open time it was paused); investigate starts again.
- customer_accepts, deemed_accepted: leaves reply, enters improve; reply ends at the moment
  the accepted reply was sent; improve starts.
- close: leaves improve, enters closed; improve ends.
- reopen: leaves closed, enters investigate; investigate starts; a new reply clock starts.

Every clock counts the open time of the complaint's calendar (`policy.calendar_for`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tickets.deadlines import (
    Severity,
    Tier,
    add_business_time,
    business_time_between,
    deadline_for,
)
from app.tickets.models import Complaint, ComplaintDeadline, ComplaintVisit
from app.tickets.policy import Calendar, Policy
from app.tickets.workflow import Action, Step


async def enter(session: AsyncSession, complaint: Complaint, step: Step, at: datetime) -> None:
    """The complaint leaves the step it is at (if any visit is open) and enters `step`."""
    open_visit = await session.scalar(
        select(ComplaintVisit)
        .where(ComplaintVisit.complaint_id == complaint.id, ComplaintVisit.left_at.is_(None))
        .order_by(ComplaintVisit.id.desc())
        .limit(1)
    )
    if open_visit is not None:
        open_visit.left_at = at
    session.add(ComplaintVisit(complaint_id=complaint.id, step=step.value, entered_at=at))


async def running(session: AsyncSession, complaint_id: uuid.UUID) -> Sequence[ComplaintDeadline]:
    """The complaint's clocks that have not ended (running or paused)."""
    rows = await session.scalars(
        select(ComplaintDeadline)
        .where(ComplaintDeadline.complaint_id == complaint_id, ComplaintDeadline.ended_at.is_(None))
        .order_by(ComplaintDeadline.id)
    )
    return rows.all()


async def warn_the_new_owner(session: AsyncSession, complaint_id: uuid.UUID) -> None:
    """The complaint has a new owner: a running clock whose warning went to the one before
    (or to nobody, while none owned it) is warned again, to the new owner, at the next sweep
    if its deadline is still ahead (one already escalated stays so: the escalation is
    everyone's to see)."""
    for clock in await running(session, complaint_id):
        if clock.warned_at is not None and clock.escalated_at is None:
            clock.warned_at = None


class Clocks:
    """The clocks of one complaint for one move, on its calendar and policy."""

    def __init__(
        self,
        session: AsyncSession,
        complaint: Complaint,
        policy: Policy,
        calendar: Calendar,
        now: datetime,
    ) -> None:
        self.session = session
        self.complaint = complaint
        self.policy = policy
        self.calendar = calendar
        self.now = now

    async def move(self, action: Action) -> None:
        """Start, end, pause or resume the clocks `action` moves (the table above)."""
        clocks = {clock.clock: clock for clock in await running(self.session, self.complaint.id)}
        match action:
            case Action.complete_intake:
                self._start(Step.accept)
            case Action.confirm:
                self._end(clocks.get(Step.accept))
                self._start(Step.investigate)
                if Step.reply not in clocks:
                    self._start(Step.reply)
            case Action.reject:
                self._end(clocks.get(Step.accept))
            case Action.send_reply:
                self._end(clocks.get(Step.investigate))
                self._pause(clocks.get(Step.reply))
            case Action.customer_rejects:
                self._resume(clocks.get(Step.reply))
                self._start(Step.investigate)
            case Action.customer_accepts | Action.deemed_accepted:
                self._end(clocks.get(Step.reply), at=self.complaint.replied_at)
                self._start(Step.improve)
            case Action.close:
                self._end(clocks.get(Step.improve))
            case Action.reopen:
                self._start(Step.investigate)
                self._start(Step.reply)
            case Action.assign:
                pass

    def _start(self, clock: Step) -> None:
        due = deadline_for(
            clock,
            Severity(self.complaint.severity),
            _tier(self.complaint.tier),
            self.now,
            self.policy.deadlines,
            self.calendar.hours,
            self.calendar.holidays,
        )
        assert due is not None, "only steps with a deadline start a clock"
        self.session.add(
            ComplaintDeadline(
                complaint_id=self.complaint.id, clock=clock.value, started_at=self.now, due_at=due
            )
        )

    def _end(self, clock: ComplaintDeadline | None, *, at: datetime | None = None) -> None:
        if clock is not None:
            clock.ended_at = at or self.now
            clock.paused_since = None

    def _pause(self, clock: ComplaintDeadline | None) -> None:
        if clock is not None and clock.paused_since is None:
            clock.paused_since = self.now

    def _resume(self, clock: ComplaintDeadline | None) -> None:
        """The open time the clock spent paused is added to its deadline (business time adds
        up: the deadline of duration + pause is the old deadline plus the pause)."""
        if clock is None or clock.paused_since is None:
            return
        paused = business_time_between(
            clock.paused_since, self.now, self.calendar.hours, self.calendar.holidays
        )
        clock.due_at = add_business_time(
            clock.due_at, paused, self.calendar.hours, self.calendar.holidays
        )
        clock.paused_since = None


def _tier(value: str) -> Tier:
    match value:
        case "platinum" | "gold" | "iron" | "lead":
            return value
    raise ValueError(f"unknown tier {value!r}")

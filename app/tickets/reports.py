"""Complaint reports for supervisors and managers: what became of the complaints raised in a
period (docs/complaints.md, "Reports", defines each figure for people).

Every figure covers the same complaints: raised in the period (`raised_at` from its start,
before its end), narrowed by the filters given (queue, tier at raise, category, channel). The
statements below read them, one figure each, from the complaints, their visits to each step
and their deadlines; the pure functions beside them turn what was counted into the figures
(shares, the mean score, the Pareto ranking, the CSV), so each rule has one home.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidField
from app.customers.models import Tier
from app.queues.models import Queue
from app.tickets.deadlines import DEADLINE_STEPS
from app.tickets.models import CategoryKind, ComplaintCategory, ComplaintChannel
from app.tickets.workflow import Step

# The steps a complaint is worked in; `closed` and `rejected` are where it ends.
WORKING_STEPS = (Step.intake, Step.accept, Step.investigate, Step.reply, Step.improve)
CLOCKS = tuple(step.value for step in DEADLINE_STEPS)
SCORES = (1, 2, 3, 4, 5)

# Without `from`, a report looks back a year from its end: long enough that a complaint still
# open after months is counted among the open ones.
DEFAULT_PERIOD = timedelta(days=365)
LONGEST_PERIOD = timedelta(days=731)  # two years, one of them a leap year
# Moments a report may name: from the epoch, and short of the calendar's end, so a day added
# to a date (an inclusive `to`) or a year taken from one never leaves it.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
MOMENT_LENGTH = 40  # "2026-03-31T17:00:00.000000+08:00" and room to spare
OVERDUE_LISTED = 100  # the oldest ones listed; `count` counts them all
SHARE_DIGITS = 4
SECONDS_DIGITS = 1
MEAN_DIGITS = 2


# --- the period and the filters -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """Complaints raised at or after `start` and before `end` (UTC)."""

    start: datetime
    end: datetime


def period_of(raised_from: str | None, raised_to: str | None, now: datetime) -> Period:
    """The period `from` and `to` name (ISO dates or dates and times), or the 422 naming the
    field at fault. A date is a UTC day, and `to`'s is included (`to=2026-03-31` ends at the
    start of April); a date and time without an offset is UTC. Without `to` the period ends
    now; without `from` it starts `DEFAULT_PERIOD` before its end."""
    end = now if raised_to is None else _moment("query.to", raised_to, next_day=True)
    start = end - DEFAULT_PERIOD if raised_from is None else _moment("query.from", raised_from)
    # The field the caller set (`to` when both are): the default one is not theirs to fix.
    blamed = "query.from" if raised_to is None else "query.to"
    if end <= start:
        raise InvalidField(blamed, "the period must end after it starts: `to` after `from`")
    if end - start > LONGEST_PERIOD:
        raise InvalidField(blamed, f"a period of at most {LONGEST_PERIOD.days} days (two years)")
    return Period(start, end)


def _moment(field: str, given: str, *, next_day: bool = False) -> datetime:
    try:
        moment = _parsed(given, next_day=next_day)
    except (ValueError, OverflowError):
        raise InvalidField(
            field,
            f"{given!r} is not an ISO date (2026-03-31) or date and time"
            " (2026-03-31T17:00:00+08:00)",
        ) from None
    if not EARLIEST <= moment < LATEST:
        raise InvalidField(field, "a moment from 1970 to the year 9998")
    return moment


def _parsed(given: str, *, next_day: bool) -> datetime:
    try:
        day = date.fromisoformat(given)
    except ValueError:
        moment = datetime.fromisoformat(given)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.combine(day + timedelta(days=1 if next_day else 0), time(), UTC)


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """Which complaints a report covers: the period, and each filter given (None: any)."""

    period: Period
    queue_id: uuid.UUID | None = None
    tier: Tier | None = None
    category_id: uuid.UUID | None = None
    channel: ComplaintChannel | None = None

    def parameters(self) -> dict[str, Any]:
        """The values `CHOSEN` binds."""
        return {
            "raised_from": self.period.start,
            "raised_to": self.period.end,
            "queue_id": self.queue_id,
            "tier": None if self.tier is None else self.tier.value,
            "category_id": self.category_id,
            "channel": None if self.channel is None else self.channel.value,
        }


# The complaints a report covers, as a condition on `c` (complaints): one text whatever the
# filters, a filter not given bound as NULL. The period is a range of ix_complaints_raised_at,
# and each complaint's visits and deadlines one probe of ix_complaint_visits_complaint and
# ix_complaint_deadlines_complaint: no index of its own (docs/complaints.md, "Reports").
CHOSEN = """
    c.raised_at >= :raised_from AND c.raised_at < :raised_to
    AND (CAST(:queue_id AS uuid) IS NULL OR c.queue_id = :queue_id)
    AND (CAST(:tier AS text) IS NULL OR c.tier = :tier)
    AND (CAST(:category_id AS uuid) IS NULL OR c.category_id = :category_id)
    AND (CAST(:channel AS text) IS NULL OR c.channel = :channel)
"""


async def ensure_filters_known(session: AsyncSession, filters: ReportFilters) -> None:
    """A queue or category that does not exist is a mistake to say, not a report of zeros."""
    if filters.queue_id is not None and await session.get(Queue, filters.queue_id) is None:
        raise InvalidField("query.queue_id", f"no queue with id {filters.queue_id}")
    if filters.category_id is not None:
        category = await session.get(ComplaintCategory, filters.category_id)
        if category is None or category.kind != CategoryKind.complaint:
            raise InvalidField(
                "query.category_id", f"no complaint category with id {filters.category_id}"
            )


# --- the figures --------------------------------------------------------------------------------


class PeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from", description="Raised at or after (UTC)")
    to: datetime = Field(description="Raised before (UTC)")


class FiltersOut(BaseModel):
    queue_id: uuid.UUID | None
    tier: Tier | None
    category_id: uuid.UUID | None
    channel: ComplaintChannel | None


class ComplaintCounts(BaseModel):
    raised: int = Field(description="Complaints raised in the period (with the filters)")
    open: int = Field(description="Of them, not closed or rejected")
    closed: int
    rejected: int


class OverdueComplaint(BaseModel):
    id: uuid.UUID
    reference: str
    step: Step
    raised_at: datetime


class Overdue(BaseModel):
    count: int = Field(description="Open complaints overdue")
    listed: list[OverdueComplaint] = Field(
        description=f"The oldest of them (raised first), at most {OVERDUE_LISTED}"
    )


class StepTime(BaseModel):
    step: Step
    stays: int = Field(description="Finished stays in the step (a step visited twice: two)")
    median_seconds: float | None = Field(description="Null when no stay finished")
    p90_seconds: float | None = Field(description="90% of stays were at most this long")


class DeadlineShare(BaseModel):
    clock: str = Field(description="accept, investigate, reply, improve, or overall")
    met: int
    missed: int
    share_met: float | None = Field(description="met / (met + missed); null when both are 0")


class Satisfaction(BaseModel):
    scored: int = Field(description="Replies accepted with a score")
    mean: float | None = Field(description="The mean score 1-5; null when none was scored")
    distribution: dict[str, int] = Field(description="How many gave each score, 1 to 5")
    deemed_accepted: int = Field(description="Replies accepted by silence: no score")


class RootCause(BaseModel):
    root_cause_id: uuid.UUID
    name: str
    complaints: int
    share: float = Field(description="Of the complaints with a root cause")
    cumulative_share: float = Field(description="Of this cause and every one ranked above it")


class ComplaintReport(BaseModel):
    """Every figure of the complaints raised in a period (docs/complaints.md, "Reports")."""

    period: PeriodOut
    filters: FiltersOut
    generated_at: datetime
    complaints: ComplaintCounts
    open_by_step: dict[str, int] = Field(description="Open complaints in each working step")
    overdue: Overdue
    time_per_step: list[StepTime]
    deadlines: list[DeadlineShare] = Field(description="Each clock, then `overall`")
    satisfaction: Satisfaction
    root_causes: list[RootCause] = Field(description="Most complaints first (Pareto)")


def share(part: int, whole: int) -> float | None:
    """`part` of `whole`, rounded to SHARE_DIGITS; None of nothing."""
    return None if whole == 0 else round(part / whole, SHARE_DIGITS)


def deadline_shares(counted: Mapping[str, tuple[int, int]]) -> list[DeadlineShare]:
    """Each clock's met and missed deadlines and its share met, then all clocks together. A
    clock still running and not yet due is neither met nor missed: it is not counted."""
    rows = [_deadline_share(clock, *counted.get(clock, (0, 0))) for clock in CLOCKS]
    met = sum(row.met for row in rows)
    missed = sum(row.missed for row in rows)
    return [*rows, _deadline_share("overall", met, missed)]


def _deadline_share(clock: str, met: int, missed: int) -> DeadlineShare:
    return DeadlineShare(clock=clock, met=met, missed=missed, share_met=share(met, met + missed))


def satisfaction_of(scores: Mapping[int | None, int]) -> Satisfaction:
    """The scores of accepted replies (score: how many; None: accepted by silence, unscored)."""
    distribution = {str(score): scores.get(score, 0) for score in SCORES}
    scored = sum(distribution.values())
    total = sum(score * scores.get(score, 0) for score in SCORES)
    mean = None if scored == 0 else round(total / scored, MEAN_DIGITS)
    return Satisfaction(
        scored=scored,
        mean=mean,
        distribution=distribution,
        deemed_accepted=scores.get(None, 0),
    )


def pareto(causes: Iterable[tuple[uuid.UUID, str, int]]) -> list[RootCause]:
    """Root causes (id, name, complaints) ranked, most complaints first (ties by name), each
    with its share of all the complaints with a root cause and the cumulative share down to
    it: the few causes behind most complaints are the top rows whose cumulative share reaches
    0.8."""
    ranked = sorted(causes, key=lambda cause: (-cause[2], cause[1]))
    whole = sum(count for _, _, count in ranked)
    rows, running = [], 0
    for cause_id, name, count in ranked:
        running += count  # shares of running counts: the last is exactly 1.0
        rows.append(
            RootCause(
                root_cause_id=cause_id,
                name=name,
                complaints=count,
                share=share(count, whole) or 0.0,
                cumulative_share=share(running, whole) or 0.0,
            )
        )
    return rows


def seconds(value: float | None) -> float | None:
    return None if value is None else round(value, SECONDS_DIGITS)


# --- the reads ----------------------------------------------------------------------------------

STEPS_COUNTED = f"""
    SELECT c.step, count(*) AS complaints FROM complaints c WHERE {CHOSEN} GROUP BY c.step
"""  # noqa: S608 - constants only, no outside text

# Open and overdue by the rule the complaints service flags them by (service.refresh_overdue):
# a running clock past its due time. Read from the clocks, not the flag, so a clock that
# passed since the flag was last set counts at once. A paused clock (the customer has the
# reply) is not overdue: the wait is the customer's, and its deadline moves by it on resuming.
OVERDUE = f"""
    SELECT c.id, c.reference, c.step, c.raised_at, count(*) OVER () AS overdue
    FROM complaints c
    WHERE {CHOSEN} AND c.step NOT IN ('closed', 'rejected')
      AND EXISTS (
          SELECT 1 FROM complaint_deadlines d
          WHERE d.complaint_id = c.id AND d.ended_at IS NULL AND d.paused_since IS NULL
            AND d.due_at < :at)
    ORDER BY c.raised_at, c.reference
    LIMIT :listed
"""  # noqa: S608 - constants only, no outside text

# Each finished stay in a working step, per stay: a step visited twice (a reply returned,
# a complaint reopened) counts each stay on its own.
STEP_TIMES = f"""
    SELECT step, count(*) AS stays,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90
    FROM (SELECT v.step, extract(epoch FROM v.left_at - v.entered_at)::float8 AS seconds
          FROM complaint_visits v JOIN complaints c ON c.id = v.complaint_id
          WHERE {CHOSEN} AND v.left_at IS NOT NULL
            AND v.step IN ('intake', 'accept', 'investigate', 'reply', 'improve')) stays
    GROUP BY step
"""  # noqa: S608 - constants only, no outside text

# Met: ended by its due time. Missed: ended after it, or still running past it (a paused one:
# past it when it paused). Running and not yet due: neither.
DEADLINES = f"""
    SELECT d.clock,
           count(*) FILTER (WHERE d.ended_at <= d.due_at) AS met,
           count(*) FILTER (WHERE d.ended_at > d.due_at
                              OR (d.ended_at IS NULL
                                  AND d.due_at < COALESCE(d.paused_since, :at))) AS missed
    FROM complaint_deadlines d JOIN complaints c ON c.id = d.complaint_id
    WHERE {CHOSEN}
    GROUP BY d.clock
"""  # noqa: S608 - constants only, no outside text

# Accepted replies by score; NULL: accepted by silence (deemed), with no score.
SCORES_COUNTED = f"""
    SELECT c.satisfaction, count(*) AS complaints
    FROM complaints c WHERE {CHOSEN} AND c.accepted
    GROUP BY c.satisfaction
"""  # noqa: S608 - constants only, no outside text

ROOT_CAUSES = f"""
    SELECT k.id, k.name, count(*) AS complaints
    FROM complaints c JOIN complaint_categories k ON k.id = c.root_cause_id
    WHERE {CHOSEN}
    GROUP BY k.id, k.name
"""  # noqa: S608 - constants only, no outside text


async def complaint_report(
    session: AsyncSession, filters: ReportFilters, now: datetime
) -> ComplaintReport:
    """Every figure of the complaints `filters` covers, as things stand at `now`: one read
    each (each sees what was committed when it ran)."""
    bound = filters.parameters()
    steps = await _rows(session, STEPS_COUNTED, bound)
    by_step = {row.step: int(row.complaints) for row in steps}
    overdue = await _rows(session, OVERDUE, {**bound, "at": now, "listed": OVERDUE_LISTED})
    times = {row.step: row for row in await _rows(session, STEP_TIMES, bound)}
    clocks = await _rows(session, DEADLINES, {**bound, "at": now})
    scores = await _rows(session, SCORES_COUNTED, bound)
    causes = await _rows(session, ROOT_CAUSES, bound)
    return ComplaintReport(
        period=PeriodOut(from_=filters.period.start, to=filters.period.end),
        filters=FiltersOut(
            queue_id=filters.queue_id,
            tier=filters.tier,
            category_id=filters.category_id,
            channel=filters.channel,
        ),
        generated_at=now,
        complaints=_counts(by_step),
        open_by_step={step.value: by_step.get(step.value, 0) for step in WORKING_STEPS},
        overdue=Overdue(
            count=int(overdue[0].overdue) if overdue else 0,
            listed=[
                OverdueComplaint(id=r.id, reference=r.reference, step=r.step, raised_at=r.raised_at)
                for r in overdue
            ],
        ),
        time_per_step=[_step_time(step, times.get(step.value)) for step in WORKING_STEPS],
        deadlines=deadline_shares({r.clock: (int(r.met), int(r.missed)) for r in clocks}),
        satisfaction=satisfaction_of({r.satisfaction: int(r.complaints) for r in scores}),
        root_causes=pareto((r.id, r.name, int(r.complaints)) for r in causes),
    )


async def _rows(session: AsyncSession, statement: str, bound: Mapping[str, Any]) -> list[Any]:
    return list(await session.execute(text(statement), dict(bound)))


def _counts(by_step: Mapping[str, int]) -> ComplaintCounts:
    open_ = sum(by_step.get(step.value, 0) for step in WORKING_STEPS)
    closed, rejected = by_step.get(Step.closed.value, 0), by_step.get(Step.rejected.value, 0)
    return ComplaintCounts(
        raised=open_ + closed + rejected, open=open_, closed=closed, rejected=rejected
    )


def _step_time(step: Step, row: Any) -> StepTime:
    if row is None:
        return StepTime(step=step, stays=0, median_seconds=None, p90_seconds=None)
    return StepTime(
        step=step,
        stays=int(row.stays),
        median_seconds=seconds(row.median),
        p90_seconds=seconds(row.p90),
    )


# --- the CSV ------------------------------------------------------------------------------------

CSV_HEADER = ("figure", "item", "measure", "value")
# A spreadsheet runs a cell that starts with one of these as a formula (a root cause named
# "=HYPERLINK(...)"): such text is written with a leading apostrophe, as spreadsheets show it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_rows(report: ComplaintReport) -> list[tuple[str, str, str, str]]:
    """The report as rows of (figure, item, measure, value), one number each: the same
    figures as the JSON, in its order, for a spreadsheet to pivot."""
    rows: list[tuple[str, str, Any, Any]] = [
        ("period", "", "from", report.period.from_),
        ("period", "", "to", report.period.to),
        *(("filter", "", name, value) for name, value in report.filters),
        ("generated", "", "at", report.generated_at),
        *(("complaints", "", name, value) for name, value in report.complaints),
        *(("open_by_step", step, "complaints", n) for step, n in report.open_by_step.items()),
        ("overdue", "", "complaints", report.overdue.count),
    ]
    for late in report.overdue.listed:
        rows += [
            ("overdue", late.reference, "id", late.id),
            ("overdue", late.reference, "step", late.step),
            ("overdue", late.reference, "raised_at", late.raised_at),
        ]
    for stays in report.time_per_step:
        rows += [
            ("time_per_step", stays.step, "stays", stays.stays),
            ("time_per_step", stays.step, "median_seconds", stays.median_seconds),
            ("time_per_step", stays.step, "p90_seconds", stays.p90_seconds),
        ]
    for clock in report.deadlines:
        rows += [
            ("deadlines", clock.clock, "met", clock.met),
            ("deadlines", clock.clock, "missed", clock.missed),
            ("deadlines", clock.clock, "share_met", clock.share_met),
        ]
    scored = report.satisfaction
    rows += [
        ("satisfaction", "", "scored", scored.scored),
        ("satisfaction", "", "mean", scored.mean),
        *(("satisfaction", score, "complaints", n) for score, n in scored.distribution.items()),
        ("satisfaction", "", "deemed_accepted", scored.deemed_accepted),
    ]
    for cause in report.root_causes:
        rows += [
            ("root_causes", cause.name, "complaints", cause.complaints),
            ("root_causes", cause.name, "share", cause.share),
            ("root_causes", cause.name, "cumulative_share", cause.cumulative_share),
        ]
    return [
        (figure, csv_cell(item), measure, csv_cell(value)) for figure, item, measure, value in rows
    ]


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: empty for none, UTC for a moment, a formula-like text defused."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    written = str(value)
    return f"'{written}" if written.startswith(FORMULA_STARTS) else written


def report_csv(report: ComplaintReport) -> str:
    """The report's rows under CSV_HEADER (RFC 4180: CRLF line ends, quotes where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(report_rows(report))
    return out.getvalue()

"""The queues' report over HTTP, as JSON and as CSV (docs/supervisors.md, "Reports").
Supervisors and admins read it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.dependencies import Session, Staff
from app.core.channels import Channel
from app.core.db import driver_connection
from app.core.errors import InvalidField
from app.core.inputs import REFUSES_NUL
from app.customers.models import Tier
from app.supervisor.reports import (
    Breakdown,
    Interval,
    ReportFilters,
    ReportRow,
    agent_report,
    queue_report,
    report_csv,
    rows_csv,
)
from app.tickets.reports import MOMENT_LENGTH, Period, period_of

router = APIRouter(prefix="/v1/reports", tags=["reports"])

CSV_TYPE = "text/csv; charset=utf-8"


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"


DEFAULT_SPAN = timedelta(days=1)
# A report lists at most this many intervals per queue: a quarter-hour report of 100 days,
# a day report of 27 years. Ask for longer intervals for a longer period.
MOST_INTERVALS = 10_000
INTERVAL_SPAN = {
    Interval.minutes_15: timedelta(minutes=15),
    Interval.minutes_30: timedelta(minutes=30),
    Interval.minutes_60: timedelta(hours=1),
    Interval.day: timedelta(days=1),
}

From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=MOMENT_LENGTH,
        description="From this ISO date (a UTC day) or date and time; default: a day before `to`",
        examples=["2026-12-01T00:00:00+01:00"],
    ),
    REFUSES_NUL,
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=MOMENT_LENGTH,
        description="Before this date and time, or up to and including this date; default: now",
        examples=["2026-12-02T00:00:00+01:00"],
    ),
    REFUSES_NUL,
]


def _period(start: str | None, end: str | None, interval: Interval) -> Period:
    now = datetime.now(UTC)
    if start is None:
        ends = period_of(None, end, now).end if end is not None else now
        start = (ends - DEFAULT_SPAN).isoformat()
    period = period_of(start, end, now)
    if (period.end - period.start) / INTERVAL_SPAN[interval] > MOST_INTERVALS:
        raise InvalidField(
            "query.interval",
            f"at most {MOST_INTERVALS} intervals a queue: ask for longer ones or a shorter period",
        )
    return period


@dataclass(frozen=True, slots=True)
class Window:
    """A report's period and the intervals it is told in."""

    period: Period
    interval: Interval


def report_window(
    start: From = None,
    end: To = None,
    interval: Annotated[Interval, Query(description="Minutes (15, 30, 60) or `day`")] = (
        Interval.minutes_60
    ),
) -> Window:
    """The `from`, `to` and `interval` every report takes, checked together."""
    return Window(_period(start, end, interval), interval)


Windowed = Annotated[Window, Depends(report_window)]


async def _rows(
    session: Session,
    request: Request,
    period: Period,
    interval: Interval,
    by: Breakdown,
    filters: ReportFilters,
) -> list[ReportRow]:
    connection = await driver_connection(session)
    zone = request.app.state.settings.time_zone
    return await queue_report(connection, period, interval, by, filters, zone)


@router.get("/queues", summary="Each queue's figures by interval: offered, answered, SL, ASA, AHT")
async def get_queue_report(
    _: Staff,
    session: Session,
    request: Request,
    window: Windowed,
    by: Annotated[Breakdown, Query(description="Each queue whole, or by channel or tier")] = (
        Breakdown.queue
    ),
    queue_id: Annotated[uuid.UUID | None, Query(description="Only this queue")] = None,
    channel: Annotated[Channel | None, Query(description="Only this channel")] = None,
    tier: Annotated[Tier | None, Query(description="Only customers of this tier")] = None,
    format: Annotated[ReportFormat, Query(description="`json` or `csv`")] = ReportFormat.json,
) -> Any:
    """Each queue's line over the period, interval by interval in the queue's own time zone
    (its business hours', else `CC_TIME_ZONE`): offered, answered (within the target),
    abandoned (short ones apart), expired, transferred, converted, service level, ASA, AHT,
    abandonment rate, handled and the longest wait that ended in it. docs/metrics.md defines
    each figure; the report counts what the roll-up has read of the log (up to a minute old)."""
    period, interval = window.period, window.interval
    filters = ReportFilters(
        queue_id=queue_id,
        channel=None if channel is None else channel.value,
        tier=None if tier is None else tier.value,
    )
    rows = await _rows(session, request, period, interval, by, filters)
    if format is ReportFormat.csv:
        return _csv(report_csv(rows, by), "queues-report.csv")
    return {**_about(period, interval), "by": by.value, "rows": [row.as_json(by) for row in rows]}


AGENT_HEADER = ["agent_id", "agent", "starts", "handled", "aht_s", "occupancy", "available_s",
                "busy_s", "wrap_up_s", "away_s"]  # fmt: skip


@router.get("/agents", summary="Each agent's figures by interval: handled, AHT, occupancy, states")
async def get_agent_report(
    _: Staff,
    session: Session,
    request: Request,
    window: Windowed,
    agent_id: Annotated[uuid.UUID | None, Query(description="Only this agent")] = None,
    format: Annotated[ReportFormat, Query(description="`json` or `csv`")] = ReportFormat.json,
) -> Any:
    """Each agent's intervals over the period, in the center's time zone (`CC_TIME_ZONE`):
    the work they finished, their AHT, their occupancy (time holding work over their time in
    routing) and the seconds they spent available, busy, in wrap-up and away (offline time is
    not working time). docs/metrics.md defines each figure."""
    period, interval = window.period, window.interval
    connection = await driver_connection(session)
    zone = request.app.state.settings.time_zone
    rows = await agent_report(connection, period, interval, agent_id, zone)
    if format is ReportFormat.csv:
        return _csv(rows_csv(rows, AGENT_HEADER), "agents-report.csv")
    return {**_about(period, interval), "time_zone": zone, "rows": rows}


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _about(period: Period, interval: Interval) -> dict[str, Any]:
    """What a report's JSON says of itself: its period and interval."""
    return {
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "interval": interval.value,
    }

"""The queues' report: each queue's line over a period, by interval (15, 30 or 60 minutes, or
the day, in the queue's own time zone), and broken down by channel or customer tier if asked.
Summed from the roll-up's quarter-hours (app/supervisor/rollups.py), and told with the figures
of app/routing/figures.py, as the live view tells them (docs/metrics.md).
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg

from app.queues.models import AbandonPolicy
from app.routing.figures import HandleTime, Tally, occupancy
from app.supervisor.ledger import PeriodFigures
from app.tickets.reports import Period, csv_cell


class Interval(StrEnum):
    minutes_15 = "15"
    minutes_30 = "30"
    minutes_60 = "60"
    day = "day"


class Breakdown(StrEnum):
    queue = "queue"
    channel = "channel"
    tier = "tier"


@dataclass(frozen=True, slots=True)
class ReportFilters:
    queue_id: uuid.UUID | None = None
    channel: str | None = None
    tier: str | None = None


# Where a quarter falls in the report ($3: '15', '30', '60' or 'day'), on the clock of
# `{zone}` (the queue's, or the center's for agents): the local start of its interval and the
# offset kept with it. An interval of minutes starts where the clock shows a multiple of it,
# and keeps the clock's offset then, so the hour a fall-back repeats stays two intervals. A
# day is the calendar day (23 or 25 hours on a change).
_BIN = """
    CASE WHEN $3 = 'day' THEN date_trunc('day', {quarter} AT TIME ZONE {zone})
         ELSE date_bin(make_interval(mins => $3::int), {quarter} AT TIME ZONE {zone},
                       timestamp '2000-01-01') END AS local_start,
    CASE WHEN $3 = 'day' THEN interval '0'
         ELSE ({quarter} AT TIME ZONE {zone}) - ({quarter} AT TIME ZONE 'UTC') END AS kept_offset
"""

# A line's figures summed over rows of `queue_quarters` (or over sums of them: each is a sum or
# a maximum, so summing in two steps gives the same figures).
_LINE_SUMS = """
               sum(offered)::int AS offered, sum(answered)::int AS answered,
               sum(answered_in_target)::int AS answered_in_target,
               sum(answer_wait_seconds)::float8 AS answer_wait_seconds,
               sum(abandoned)::int AS abandoned,
               sum(abandoned_in_target)::int AS abandoned_in_target,
               sum(short_abandoned)::int AS short_abandoned, sum(expired)::int AS expired,
               sum(transferred)::int AS transferred, sum(converted)::int AS converted,
               sum(handled)::int AS handled, sum(handle_seconds)::float8 AS handle_seconds,
               max(longest_wait_seconds)::float8 AS longest_wait_seconds
"""

# The quarters of the period, summed by queue, interval in the queue's zone (its business
# hours', else the center's $4) and the breakdown's column ($5: 'channel', 'tier' or none),
# with the staffed and handling time of the queue's agents in the same interval (its
# occupancy: that of the queue, whatever the channel or tier of the row).
# The quarters are first summed over what the breakdown does not show (`quartered`: 16 rows a
# queue's quarter become 1 without a breakdown, 4 with one), and only those sums are placed
# in their local intervals: a month by hour took 1.25 s when every row was placed, 0.54 s so
# (bench.reports' year, docs/benchmarks.md).
REPORT = """
    WITH zoned AS (
        SELECT q.id AS queue_id, q.name, q.abandon_policy,
               coalesce(q.business_hours ->> 'timezone', $4) AS zone
        FROM queues q WHERE $6::uuid IS NULL OR q.id = $6
    ), quartered AS (
        SELECT queue_id, quarter,
               CASE $5 WHEN 'channel' THEN channel WHEN 'tier' THEN tier ELSE '' END AS part,
               {sums}
        FROM queue_quarters
        WHERE quarter >= $1 AND quarter < $2 AND queue_id IN (SELECT queue_id FROM zoned)
          AND ($7::text IS NULL OR channel = $7)
          AND ($8::text IS NULL OR tier = $8)
        GROUP BY queue_id, quarter, part
    ), binned AS (
        SELECT s.*, z.name, z.abandon_policy, z.zone, {line_bin}
        FROM quartered s JOIN zoned z USING (queue_id)
    ), staff AS (
        SELECT queue_id, local_start, kept_offset, sum(staffed_seconds)::float8 AS staffed_s,
               sum(handling_seconds)::float8 AS handling_s
        FROM (SELECT w.*, z.zone, {staff_bin}
              FROM queue_staff_quarters w JOIN zoned z USING (queue_id)
              WHERE w.quarter >= $1 AND w.quarter < $2) b
        GROUP BY queue_id, local_start, kept_offset
    ), line AS (
        SELECT queue_id, name, abandon_policy, zone, part, local_start, kept_offset,
               {sums}
        FROM binned
        GROUP BY queue_id, name, abandon_policy, zone, part, local_start, kept_offset
    )
    SELECT l.*, coalesce(f.staffed_s, 0) AS staffed_s, coalesce(f.handling_s, 0) AS handling_s,
           CASE WHEN $3 = 'day' THEN l.local_start AT TIME ZONE l.zone
                ELSE (l.local_start - l.kept_offset) AT TIME ZONE 'UTC' END AS starts
    FROM line l LEFT JOIN staff f USING (queue_id, local_start, kept_offset)
    ORDER BY l.name, l.queue_id, starts, l.part
""".format(  # noqa: S608 - the bins and sums are ours
    sums=_LINE_SUMS.strip(),
    line_bin=_BIN.format(quarter="s.quarter", zone="zone"),
    staff_bin=_BIN.format(quarter="w.quarter", zone="zone"),
)


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One queue's interval (and, broken down, one channel's or tier's part of it)."""

    queue_id: uuid.UUID
    queue: str
    time_zone: str
    starts: datetime
    part: str
    figures: PeriodFigures
    handled: int
    longest_wait_seconds: float
    staffed_seconds: float
    occupancy: float | None

    def as_json(self, breakdown: Breakdown) -> dict[str, Any]:
        row: dict[str, Any] = {
            "queue_id": str(self.queue_id),
            "queue": self.queue,
            "time_zone": self.time_zone,
            "starts": self.starts.isoformat(),
        }
        if breakdown is not Breakdown.queue:
            row[breakdown.value] = self.part
        return {
            **row,
            **self.figures.as_json(),
            "handled": self.handled,
            "longest_wait_s": self.longest_wait_seconds,
            "staffed_s": self.staffed_seconds,
            "occupancy": self.occupancy,
        }


def row_of(record: asyncpg.Record) -> ReportRow:
    tally = Tally(
        offered=record["offered"],
        answered=record["answered"],
        answered_in_target=record["answered_in_target"],
        answer_wait_seconds=record["answer_wait_seconds"],
        abandoned=record["abandoned"],
        abandoned_in_target=record["abandoned_in_target"],
        short_abandoned=record["short_abandoned"],
        expired=record["expired"],
        transferred=record["transferred"],
        converted=record["converted"],
    )
    handled = record["handled"]
    aht = HandleTime(record["handle_seconds"] / handled, handled) if handled else None
    policy = AbandonPolicy(record["abandon_policy"])
    return ReportRow(
        queue_id=record["queue_id"],
        queue=record["name"],
        time_zone=record["zone"],
        starts=record["starts"].astimezone(UTC),
        part=record["part"],
        figures=PeriodFigures.of(tally, policy, aht),
        handled=handled,
        longest_wait_seconds=record["longest_wait_seconds"],
        staffed_seconds=record["staffed_s"],
        occupancy=occupancy(record["handling_s"], record["staffed_s"]),
    )


async def queue_report(
    connection: asyncpg.Connection,
    period: Period,
    interval: Interval,
    breakdown: Breakdown,
    filters: ReportFilters,
    default_zone: str,
) -> list[ReportRow]:
    """Every queue's (or one queue's) intervals over `period`, each with its figures; an
    interval with nothing in it is not listed."""
    rows = await connection.fetch(
        REPORT,
        period.start,
        period.end,
        interval.value,
        default_zone,
        breakdown.value,
        filters.queue_id,
        filters.channel,
        filters.tier,
    )
    return [row_of(record) for record in rows]


def report_csv(rows: list[ReportRow], breakdown: Breakdown) -> str:
    """The rows as CSV, one line per row with the JSON's fields as columns."""
    return rows_csv([row.as_json(breakdown) for row in rows], _empty_header(breakdown))


LEADING = ("queue_id", "queue", "time_zone", "starts")
TRAILING = ("handled", "longest_wait_s", "staffed_s", "occupancy")


def _empty_header(breakdown: Breakdown) -> list[str]:
    empty = PeriodFigures.of(Tally(), AbandonPolicy.against).as_json()
    extra = [] if breakdown is Breakdown.queue else [breakdown.value]
    return [*LEADING, *extra, *empty, *TRAILING]


# --- the agents' report -----------------------------------------------------------------------

# Each agent's quarters of the period (or agent $4's), summed by interval of the center's clock
# ($5's zone: agents keep no zone of their own), with the same keeping of a repeated hour.
AGENT_REPORT = """
    WITH binned AS (
        SELECT s.*, u.display_name, {bin}
        FROM agent_quarters s
        JOIN agents a ON a.id = s.agent_id JOIN users u ON u.id = a.user_id
        WHERE s.quarter >= $1 AND s.quarter < $2 AND ($4::uuid IS NULL OR s.agent_id = $4)
    )
    SELECT agent_id, display_name,
           CASE WHEN $3 = 'day' THEN local_start AT TIME ZONE $5
                ELSE (local_start - kept_offset) AT TIME ZONE 'UTC' END AS starts,
           sum(available_seconds)::float8 AS available_s, sum(busy_seconds)::float8 AS busy_s,
           sum(wrap_up_seconds)::float8 AS wrap_up_s, sum(away_seconds)::float8 AS away_s,
           sum(handling_seconds)::float8 AS handling_s, sum(handled)::int AS handled,
           sum(handle_seconds)::float8 AS handle_seconds
    FROM binned
    GROUP BY agent_id, display_name, local_start, kept_offset
    ORDER BY display_name, agent_id, starts
""".format(bin=_BIN.format(quarter="s.quarter", zone="$5::text"))  # noqa: S608 - ours


def agent_row(record: asyncpg.Record) -> dict[str, Any]:
    """One agent's interval: handled, AHT, occupancy and the seconds in each working state."""
    staffed = record["available_s"] + record["busy_s"] + record["wrap_up_s"]
    handled = record["handled"]
    return {
        "agent_id": str(record["agent_id"]),
        "agent": record["display_name"],
        "starts": record["starts"].astimezone(UTC).isoformat(),
        "handled": handled,
        "aht_s": record["handle_seconds"] / handled if handled else None,
        "occupancy": occupancy(record["handling_s"], staffed),
        "available_s": record["available_s"],
        "busy_s": record["busy_s"],
        "wrap_up_s": record["wrap_up_s"],
        "away_s": record["away_s"],
    }


async def agent_report(
    connection: asyncpg.Connection,
    period: Period,
    interval: Interval,
    agent_id: uuid.UUID | None,
    zone: str,
) -> list[dict[str, Any]]:
    """Every agent's (or one agent's) intervals over `period` in the center's zone."""
    rows = await connection.fetch(
        AGENT_REPORT,
        period.start,
        period.end,
        interval.value,
        agent_id,
        zone,
    )
    return [agent_row(record) for record in rows]


def rows_csv(rows: list[dict[str, Any]], header: list[str]) -> str:
    """Rows of the same keys as CSV (RFC 4180), a column per key (`header` when none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(rows[0]) if rows else header
    writer.writerow(columns)
    writer.writerows([[csv_cell(row[name]) for name in columns] for row in rows])
    return out.getvalue()

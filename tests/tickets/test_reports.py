"""The complaint reports (app/tickets/reports.py, reports_api.py), on a history built by hand.

Twelve complaints are written straight into the tables, with their visits to each step and
their deadlines, as the complaints service writes them; every figure the report gives is
checked against the number worked out below from that history, for the whole of March 2026
and with each filter. Times are hours after the complaint was raised.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.tickets.reports import (
    CSV_HEADER,
    ComplaintReport,
    Period,
    pareto,
    period_of,
    report_rows,
    satisfaction_of,
)
from tests.support import Headers, field_problems
from tests.tickets.conftest import COMPLAINTS, Desk

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
FAR = datetime(2099, 1, 1, tzinfo=UTC)  # a deadline no test reaches


def at(day: int, hour: float = 9, month: int = 3) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


@dataclass
class Clock:
    """A deadline, in hours after the complaint was raised (or a moment, for `due`)."""

    clock: str
    due: float | datetime
    ended: float | None = None
    paused: float | None = None


@dataclass
class Made:
    """A complaint of the history: what its row holds, its stays (step, hours; None while
    there) and its clocks."""

    number: int
    raised_at: datetime
    queue: str
    channel: str
    tier: str
    category: str | None
    step: str
    stays: list[tuple[str, float | None]]
    clocks: list[Clock] = field(default_factory=list)
    overdue: bool = False
    accepted: bool | None = None
    satisfaction: int | None = None
    root_cause: str | None = None

    @property
    def reference(self) -> str:
        return f"C-2026-{self.number:06d}"


# billing and claims are queues; "Billing error" and "Late delivery" what complaints are about;
# "Wrong tariff", "Courier delay", "Training gap" the root causes found at step 5.
HISTORY = [
    Made(1, at(2), "billing", "voice", "gold", "Billing error", "closed",
         [("intake", 1), ("accept", 2), ("investigate", 24), ("reply", 24), ("improve", 24),
          ("closed", None)],
         [Clock("accept", 3, 3), Clock("investigate", 30, 27), Clock("reply", 60, 51),
          Clock("improve", 100, 75)],
         accepted=True, satisfaction=5, root_cause="Wrong tariff"),
    # Its first reply was returned: two stays in steps 3 and 4, and two investigate clocks.
    Made(2, at(3), "billing", "email", "gold", "Billing error", "closed",
         [("intake", 2), ("accept", 1), ("investigate", 10), ("reply", 20), ("investigate", 4),
          ("reply", 2), ("improve", 12), ("closed", None)],
         [Clock("accept", 2, 3), Clock("investigate", 12, 13), Clock("investigate", 40, 39),
          Clock("reply", 50, 39), Clock("improve", 60, 51)],
         accepted=True, satisfaction=4, root_cause="Wrong tariff"),
    # Accepted by silence: no score.
    Made(3, at(4), "claims", "chat", "platinum", "Late delivery", "closed",
         [("intake", 3), ("accept", 3), ("investigate", 8), ("reply", 48), ("improve", 6),
          ("closed", None)],
         [Clock("accept", 8, 6), Clock("investigate", 20, 14), Clock("reply", 40, 62),
          Clock("improve", 100, 68)],
         accepted=True, root_cause="Courier delay"),
    Made(4, at(5), "claims", "voice", "iron", "Late delivery", "rejected",
         [("intake", 4), ("accept", 6), ("rejected", None)],
         [Clock("accept", 5, 10)]),
    # Flagged overdue by the sweep: its investigate clock ran past due.
    Made(5, at(6), "billing", "voice", "gold", "Billing error", "investigate",
         [("intake", 5), ("accept", 1), ("investigate", None)],
         [Clock("accept", 8, 6), Clock("investigate", 30), Clock("reply", FAR)],
         overdue=True),
    # Its reply clock was already past due when the reply went out and paused it: missed, but
    # not overdue while the customer has the reply.
    Made(6, at(7), "billing", "email", "lead", "Billing error", "reply",
         [("intake", 1), ("accept", 2), ("investigate", 6), ("reply", None)],
         [Clock("accept", 4, 3), Clock("investigate", 12, 9), Clock("reply", 8, paused=9)]),
    # Its accept clock is past due; the sweep has not flagged it yet.
    Made(7, at(8), "claims", "voice", "gold", None, "accept",
         [("intake", 0.5), ("accept", None)],
         [Clock("accept", 2)]),
    Made(8, at(9), "billing", "voice", "platinum", "Billing error", "improve",
         [("intake", 2), ("accept", 1), ("investigate", 12), ("reply", 5), ("improve", None)],
         [Clock("accept", 4, 3), Clock("investigate", 20, 15), Clock("reply", 30, 20),
          Clock("improve", FAR)],
         accepted=True, satisfaction=2, root_cause="Training gap"),
    Made(9, at(10), "claims", "chat", "gold", None, "intake", [("intake", None)]),
    # The customer has the reply: its clock paused before it was due, so it is neither met
    # nor missed, though its due time (unmoved while paused) has passed.
    Made(10, at(11), "billing", "voice", "gold", "Billing error", "reply",
         [("intake", 1), ("accept", 1), ("investigate", 2), ("reply", None)],
         [Clock("accept", 4, 2), Clock("investigate", 10, 4), Clock("reply", 20, paused=4)]),
    # Outside March: raised in February, and at the very start of April.
    Made(11, at(20, month=2), "billing", "voice", "gold", "Billing error", "investigate",
         [("intake", 100), ("accept", 100), ("investigate", None)],
         [Clock("accept", 8, 200), Clock("investigate", 300)],
         overdue=True, root_cause="Courier delay"),
    Made(12, at(1, 0, month=4), "claims", "voice", "gold", "Late delivery", "closed",
         [("intake", 50), ("accept", 50), ("investigate", 50), ("reply", 50), ("improve", 50),
          ("closed", None)],
         accepted=True, satisfaction=1, root_cause="Training gap"),
]  # fmt: skip


@dataclass
class Floor:
    client: httpx.AsyncClient
    supervisor: Headers
    queues: dict[str, str]
    categories: dict[str, str]
    complaints: dict[int, str]

    async def report(self, **query: str) -> dict[str, Any]:
        response = await self.client.get(
            "/v1/complaints/report", params=query, headers=self.supervisor
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def _made(client: httpx.AsyncClient, admin: Headers, path: str, body: Any) -> str:
    response = await client.post(path, json=body, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _category(connection: asyncpg.Connection, kind: str, name: str) -> str:
    made = await connection.fetchval(
        "INSERT INTO complaint_categories (id, kind, name) VALUES ($1, $2, $3) RETURNING id",
        uuid.uuid4(),
        kind,
        name,
    )
    return str(made)


def _hours(made: Made, hours: float | datetime) -> datetime:
    return hours if isinstance(hours, datetime) else made.raised_at + timedelta(hours=hours)


async def _write(
    connection: asyncpg.Connection,
    made: Made,
    customer: str,
    queues: dict[str, str],
    categories: dict[str, str],
) -> str:
    complaint = uuid.uuid4()
    await connection.execute(
        "INSERT INTO complaints (id, reference, customer_id, queue_id, channel, raised_by,"
        " raised_at, step, severity, tier, summary, original_message, category_id, accepted,"
        " satisfaction, root_cause_id, overdue)"
        " VALUES ($1, $2, $3, $4, $5, 'agent:test', $6, $7, 'major', $8, 'A complaint',"
        " 'It went wrong', $9, $10, $11, $12, $13)",
        complaint,
        made.reference,
        uuid.UUID(customer),
        uuid.UUID(queues[made.queue]),
        made.channel,
        made.raised_at,
        made.step,
        made.tier,
        None if made.category is None else uuid.UUID(categories[made.category]),
        made.accepted,
        made.satisfaction,
        None if made.root_cause is None else uuid.UUID(categories[made.root_cause]),
        made.overdue,
    )
    entered = made.raised_at
    for step, hours in made.stays:
        left = None if hours is None else entered + timedelta(hours=hours)
        await connection.execute(
            "INSERT INTO complaint_visits (complaint_id, step, entered_at, left_at)"
            " VALUES ($1, $2, $3, $4)",
            complaint,
            step,
            entered,
            left,
        )
        entered = left or entered
    for clock in made.clocks:
        await connection.execute(
            "INSERT INTO complaint_deadlines (complaint_id, clock, started_at, due_at, ended_at,"
            " paused_since) VALUES ($1, $2, $3, $4, $5, $6)",
            complaint,
            clock.clock,
            made.raised_at,
            _hours(made, clock.due),
            None if clock.ended is None else _hours(made, clock.ended),
            None if clock.paused is None else _hours(made, clock.paused),
        )
    return str(complaint)


@pytest.fixture
async def floor(
    client: httpx.AsyncClient,
    admin: Headers,
    supervisor: Headers,
    connection: asyncpg.Connection,
) -> Floor:
    queues = {name: await _made(client, admin, "/v1/queues", {"name": name}) for name in
              ("billing", "claims")}  # fmt: skip
    customer = await _made(client, admin, "/v1/customers", {"name": "Ada"})
    categories = {
        name: await _category(connection, kind, name)
        for kind, name in [
            ("complaint", "Billing error"),
            ("complaint", "Late delivery"),
            ("root_cause", "Wrong tariff"),
            ("root_cause", "Courier delay"),
            ("root_cause", "Training gap"),
        ]
    }
    complaints = {
        made.number: await _write(connection, made, customer, queues, categories)
        for made in HISTORY
    }
    return Floor(client, supervisor, queues, categories, complaints)


# --- every figure, for March ----------------------------------------------------------------


async def test_the_period_and_the_complaints_raised_in_it(floor: Floor) -> None:
    report = await floor.report(**MARCH)
    # `to` as a date includes that day: March ends at the start of April 1 (complaint 12,
    # raised at that very moment, is out; complaint 11, raised in February, too).
    assert report["period"] == {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    assert report["filters"] == {
        "queue_id": None,
        "tier": None,
        "category_id": None,
        "channel": None,
    }
    # Complaints 1-10: 1-3 closed, 4 rejected, 5-10 open.
    assert report["complaints"] == {"raised": 10, "open": 6, "closed": 3, "rejected": 1}
    assert report["open_by_step"] == {
        "intake": 1,  # 9
        "accept": 1,  # 7
        "investigate": 1,  # 5
        "reply": 2,  # 6, 10
        "improve": 1,  # 8
    }


async def test_overdue_complaints_are_the_open_ones_flagged_or_past_due(floor: Floor) -> None:
    overdue = (await floor.report(**MARCH))["overdue"]
    # 5's investigate clock is past due (flagged); 7's accept clock too (not flagged yet). Not
    # 6 nor 10 (their reply clocks are paused: the customer has the reply), nor 8 (due in
    # 2099); not 11 (past due, but raised in February).
    assert overdue["count"] == 2
    assert [(late["reference"], late["step"]) for late in overdue["listed"]] == [
        ("C-2026-000005", "investigate"),
        ("C-2026-000007", "accept"),
    ]
    assert overdue["listed"][0]["id"] == floor.complaints[5]
    assert overdue["listed"][0]["raised_at"] == "2026-03-06T09:00:00Z"


async def test_median_and_p90_time_per_step_count_each_finished_stay(floor: Floor) -> None:
    times = {row["step"]: row for row in (await floor.report(**MARCH))["time_per_step"]}
    # percentile_cont(f) over n sorted stays: the value at position f*(n-1), interpolated.
    # intake, 9 stays (hours): 0.5 1 1 1 2 2 3 4 5 (9, still there, is not counted)
    #   median at 4: 2 h; p90 at 7.2: 4 + 0.2*(5-4) = 4.2 h
    assert times["intake"] == {
        "step": "intake",
        "stays": 9,
        "median_seconds": 7200.0,
        "p90_seconds": 15120.0,
    }
    # accept, 8 stays: 1 1 1 1 2 2 3 6; median at 3.5: 1.5 h; p90 at 6.3: 3 + 0.3*3 = 3.9 h
    assert (times["accept"]["stays"], times["accept"]["median_seconds"]) == (8, 5400.0)
    assert times["accept"]["p90_seconds"] == 14040.0
    # investigate, 7 stays (2 twice: 10 and 4): 2 4 6 8 10 12 24; median at 3: 8 h;
    #   p90 at 5.4: 12 + 0.4*12 = 16.8 h
    assert (times["investigate"]["stays"], times["investigate"]["median_seconds"]) == (7, 28800.0)
    assert times["investigate"]["p90_seconds"] == 60480.0
    # reply, 5 stays (2 twice: 20 and 2): 2 5 20 24 48; median at 2: 20 h;
    #   p90 at 3.6: 24 + 0.6*24 = 38.4 h
    assert (times["reply"]["stays"], times["reply"]["median_seconds"]) == (5, 72000.0)
    assert times["reply"]["p90_seconds"] == 138240.0
    # improve, 3 stays: 6 12 24; median 12 h; p90 at 1.8: 12 + 0.8*12 = 21.6 h
    assert (times["improve"]["stays"], times["improve"]["median_seconds"]) == (3, 43200.0)
    assert times["improve"]["p90_seconds"] == 77760.0
    assert list(times) == ["intake", "accept", "investigate", "reply", "improve"]


async def test_the_share_of_deadlines_met_per_clock_and_overall(floor: Floor) -> None:
    deadlines = {row["clock"]: row for row in (await floor.report(**MARCH))["deadlines"]}
    # accept: met 1 (ended at its due time exactly), 3, 5, 6, 8, 10; missed 2, 4, 7 (running)
    assert deadlines["accept"] == {"clock": "accept", "met": 6, "missed": 3, "share_met": 0.6667}
    # investigate: met 1, 2 (its second), 3, 6, 8, 10; missed 2 (its first), 5 (running)
    assert deadlines["investigate"] == {
        "clock": "investigate",
        "met": 6,
        "missed": 2,
        "share_met": 0.75,
    }
    # reply: met 1, 2, 8; missed 3, 6 (paused after due); neither 5 (2099), 10 (paused before)
    assert deadlines["reply"] == {"clock": "reply", "met": 3, "missed": 2, "share_met": 0.6}
    # improve: met 1, 2, 3; 8 runs to 2099
    assert deadlines["improve"] == {"clock": "improve", "met": 3, "missed": 0, "share_met": 1.0}
    # 18 met, 7 missed: 18/25
    assert deadlines["overall"] == {"clock": "overall", "met": 18, "missed": 7, "share_met": 0.72}
    assert list(deadlines) == ["accept", "investigate", "reply", "improve", "overall"]


async def test_satisfaction_after_the_reply(floor: Floor) -> None:
    satisfaction = (await floor.report(**MARCH))["satisfaction"]
    # Scored 5 (1), 4 (2), 2 (8): mean 11/3; 3 was accepted by silence (12, scored 1, is April's)
    assert satisfaction == {
        "scored": 3,
        "mean": 3.67,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
        "deemed_accepted": 1,
    }


async def test_root_causes_ranked_with_their_cumulative_share(floor: Floor) -> None:
    causes = (await floor.report(**MARCH))["root_causes"]
    # Wrong tariff 2 (1, 2), Courier delay 1 (3), Training gap 1 (8): 4 complaints with a
    # root cause; the two of one each are ranked by name.
    assert [(c["name"], c["complaints"], c["share"], c["cumulative_share"]) for c in causes] == [
        ("Wrong tariff", 2, 0.5, 0.5),
        ("Courier delay", 1, 0.25, 0.75),
        ("Training gap", 1, 0.25, 1.0),
    ]
    assert causes[0]["root_cause_id"] == floor.categories["Wrong tariff"]


# --- the filters ----------------------------------------------------------------------------


async def test_a_date_and_time_ends_the_period_where_it_says(floor: Floor) -> None:
    # To April 1 as a day: that day included, complaint 12 (raised at its midnight) is in.
    through_april_first = await floor.report(**{"from": "2026-03-01", "to": "2026-04-01"})
    assert through_april_first["complaints"]["raised"] == 11
    # To April 1 at midnight (a moment, UTC without an offset): raised before it only.
    to_midnight = await floor.report(**{"from": "2026-03-01", "to": "2026-04-01T00:00:00"})
    assert to_midnight["complaints"]["raised"] == 10
    # From February 20 09:00 in Beijing (01:00 UTC): complaint 11 (09:00 UTC) is in.
    with_february = await floor.report(**{"from": "2026-02-20T09:00:00+08:00", "to": "2026-03-31"})
    assert with_february["period"]["from"] == "2026-02-20T01:00:00Z"
    assert with_february["complaints"]["raised"] == 11
    assert with_february["overdue"]["count"] == 3  # 11 is flagged


async def test_the_queue_filter(floor: Floor) -> None:
    report = await floor.report(**MARCH, queue_id=floor.queues["claims"])
    assert report["filters"]["queue_id"] == floor.queues["claims"]
    # claims: 3 (closed), 4 (rejected), 7 (accept), 9 (intake)
    assert report["complaints"] == {"raised": 4, "open": 2, "closed": 1, "rejected": 1}
    assert report["open_by_step"] == {
        "intake": 1,
        "accept": 1,
        "investigate": 0,
        "reply": 0,
        "improve": 0,
    }
    assert [late["reference"] for late in report["overdue"]["listed"]] == ["C-2026-000007"]
    # intake stays 3, 4, 0.5 h: median 3 h; accept 3, 6 h: median 4.5 h
    times = {row["step"]: row for row in report["time_per_step"]}
    assert (times["intake"]["stays"], times["intake"]["median_seconds"]) == (3, 10800.0)
    assert times["accept"]["median_seconds"] == 16200.0
    assert times["improve"] == {
        "step": "improve",
        "stays": 1,
        "median_seconds": 21600.0,
        "p90_seconds": 21600.0,
    }
    assert times["reply"]["stays"] == 1
    deadlines = {row["clock"]: row for row in report["deadlines"]}
    # accept: met 3; missed 4, 7
    assert (deadlines["accept"]["met"], deadlines["accept"]["missed"]) == (1, 2)
    # met: 3's accept, investigate, improve; missed: 3's reply, 4's and 7's accept
    assert deadlines["overall"] == {"clock": "overall", "met": 3, "missed": 3, "share_met": 0.5}
    assert report["satisfaction"]["scored"] == 0
    assert report["satisfaction"]["mean"] is None
    assert report["satisfaction"]["deemed_accepted"] == 1
    assert [(c["name"], c["cumulative_share"]) for c in report["root_causes"]] == [
        ("Courier delay", 1.0)
    ]


async def test_the_tier_filter(floor: Floor) -> None:
    report = await floor.report(**MARCH, tier="platinum")
    # platinum: 3 (closed), 8 (improve)
    assert report["complaints"] == {"raised": 2, "open": 1, "closed": 1, "rejected": 0}
    assert report["open_by_step"]["improve"] == 1
    assert report["satisfaction"]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0}
    assert [c["name"] for c in report["root_causes"]] == ["Courier delay", "Training gap"]


async def test_the_category_filter(floor: Floor) -> None:
    report = await floor.report(**MARCH, category_id=floor.categories["Late delivery"])
    # Late delivery: 3 and 4 (7 and 9 have no category yet)
    assert report["complaints"] == {"raised": 2, "open": 0, "closed": 1, "rejected": 1}
    assert report["overdue"] == {"count": 0, "listed": []}


async def test_the_channel_filter(floor: Floor) -> None:
    report = await floor.report(**MARCH, channel="email")
    # email: 2 (closed), 6 (reply: its clock paused, not overdue)
    assert report["complaints"] == {"raised": 2, "open": 1, "closed": 1, "rejected": 0}
    assert report["overdue"] == {"count": 0, "listed": []}
    deadlines = {row["clock"]: row for row in report["deadlines"]}
    # 2: accept missed, investigate missed then met, reply met, improve met;
    # 6: accept met, investigate met, reply missed (paused after due): 5 of 8
    assert deadlines["overall"] == {"clock": "overall", "met": 5, "missed": 3, "share_met": 0.625}


async def test_filters_together_and_a_period_with_nothing_in_it(floor: Floor) -> None:
    report = await floor.report(
        **MARCH, queue_id=floor.queues["billing"], tier="gold", channel="voice"
    )
    # billing, gold, voice: 1 (closed), 5 (investigate), 10 (reply)
    assert report["complaints"] == {"raised": 3, "open": 2, "closed": 1, "rejected": 0}
    empty = await floor.report(**{"from": "2025-01-01", "to": "2025-12-31"})
    assert empty["complaints"] == {"raised": 0, "open": 0, "closed": 0, "rejected": 0}
    assert empty["overdue"] == {"count": 0, "listed": []}
    assert all(row["median_seconds"] is None for row in empty["time_per_step"])
    assert all(row["share_met"] is None for row in empty["deadlines"])
    assert empty["satisfaction"]["mean"] is None
    assert empty["root_causes"] == []


# --- the CSV ----------------------------------------------------------------------------------


async def test_the_csv_holds_the_same_figures(floor: Floor) -> None:
    response = await floor.client.get(
        "/v1/complaints/report.csv", params=MARCH, headers=floor.supervisor
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("figure,item,measure,value\r\n")
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(header) == CSV_HEADER
    assert all(len(row) == 4 for row in rows)
    found = {(figure, item, measure): value for figure, item, measure, value in rows}
    assert found["period", "", "from"] == "2026-03-01T00:00:00+00:00"
    assert found["period", "", "to"] == "2026-04-01T00:00:00+00:00"
    assert found["filter", "", "queue_id"] == ""
    assert found["complaints", "", "raised"] == "10"
    assert found["open_by_step", "reply", "complaints"] == "2"
    assert found["overdue", "", "complaints"] == "2"
    assert found["overdue", "C-2026-000007", "step"] == "accept"
    assert found["overdue", "C-2026-000005", "id"] == floor.complaints[5]
    assert found["time_per_step", "reply", "median_seconds"] == "72000.0"
    assert found["time_per_step", "reply", "p90_seconds"] == "138240.0"
    assert found["deadlines", "accept", "missed"] == "3"
    assert found["deadlines", "overall", "share_met"] == "0.72"
    assert found["satisfaction", "", "mean"] == "3.67"
    assert found["satisfaction", "2", "complaints"] == "1"
    assert found["satisfaction", "", "deemed_accepted"] == "1"
    assert found["root_causes", "Wrong tariff", "cumulative_share"] == "0.5"
    assert found["root_causes", "Training gap", "cumulative_share"] == "1.0"
    # Row for row, the JSON's figures: nothing in one that the other lacks.
    report = ComplaintReport.model_validate(await floor.report(**MARCH))
    report.generated_at = datetime.fromisoformat(found["generated", "", "at"])
    assert [list(row) for row in report_rows(report)] == rows


async def test_the_csv_follows_the_filters(floor: Floor) -> None:
    response = await floor.client.get(
        "/v1/complaints/report.csv",
        params={**MARCH, "channel": "email"},
        headers=floor.supervisor,
    )
    rows = {tuple(row[:3]): row[3] for row in csv.reader(io.StringIO(response.text))}
    assert rows["filter", "", "channel"] == "email"
    assert rows["complaints", "", "raised"] == "2"
    assert rows["open_by_step", "reply", "complaints"] == "1"


async def test_a_csv_cell_a_spreadsheet_would_run_is_written_as_text(floor: Floor) -> None:
    report = ComplaintReport.model_validate(await floor.report(**MARCH))
    report.root_causes = pareto([(uuid.uuid4(), '=HYPERLINK("http://x")', 1)])
    names = {row[1] for row in report_rows(report) if row[0] == "root_causes"}
    assert names == {'\'=HYPERLINK("http://x")'}


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "blamed"),
    [
        ({"from": "2026-03-31", "to": "2026-03-01"}, "query.to"),  # ends before it starts
        ({"from": "2026-03-01T10:00:00Z", "to": "2026-03-01T10:00:00Z"}, "query.to"),  # empty
        ({"from": "2024-01-01", "to": "2026-01-01"}, "query.to"),  # 732 days: longer than two years
        ({"from": "2099-01-01"}, "query.from"),  # starts after now, where it would end
        ({"from": "2026-13-01"}, "query.from"),  # no such month
        ({"to": "yesterday"}, "query.to"),
        ({"from": "1969-12-31"}, "query.from"),  # before 1970
        ({"from": "0001-01-01T00:00:00+01:00"}, "query.from"),  # past the calendar's start in UTC
        ({"to": "9999-12-31"}, "query.to"),  # its end of day is past the calendar's end
        ({"from": "2026-03-01\x00"}, "query.from"),
        ({"from": "2026-03-01" + " " * 40}, "query.from"),  # longer than any moment
        ({"tier": "diamond"}, "query.tier"),
        ({"channel": "fax"}, "query.channel"),
        ({"queue_id": "billing"}, "query.queue_id"),
        ({"queue_id": str(uuid.uuid4())}, "query.queue_id"),  # no such queue
        ({"category_id": str(uuid.uuid4())}, "query.category_id"),  # no such category
    ],
)
async def test_a_bad_filter_is_refused_naming_it(
    client: httpx.AsyncClient, supervisor: Headers, query: dict[str, str], blamed: str
) -> None:
    for path in ("/v1/complaints/report", "/v1/complaints/report.csv"):
        response = await client.get(path, params=query, headers=supervisor)
        assert blamed in field_problems(response), response.text


async def test_a_root_cause_is_no_complaint_category(floor: Floor) -> None:
    response = await floor.client.get(
        "/v1/complaints/report",
        params={"category_id": floor.categories["Wrong tariff"]},
        headers=floor.supervisor,
    )
    assert "query.category_id" in field_problems(response)


async def test_two_years_is_the_longest_period(floor: Floor) -> None:
    # 2025 and 2026 whole: 730 days, within the 731 allowed
    report = await floor.report(**{"from": "2025-01-01", "to": "2026-12-31"})
    assert report["complaints"]["raised"] == 12


# --- who may --------------------------------------------------------------------------------


async def test_supervisors_and_admins_read_reports_agents_do_not(
    client: httpx.AsyncClient, supervisor: Headers, admin: Headers, agent: Headers
) -> None:
    for path in ("/v1/complaints/report", "/v1/complaints/report.csv"):
        assert (await client.get(path, headers=supervisor)).status_code == 200
        assert (await client.get(path, headers=admin)).status_code == 200
        refused = await client.get(path, headers=agent)
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
        assert (await client.get(path)).status_code == 401
        # The role is checked before the filters: a 403 tells nothing about them.
        unknown = {"queue_id": str(uuid.uuid4())}
        assert (await client.get(path, params=unknown, headers=agent)).status_code == 403


# --- the pure rules -------------------------------------------------------------------------

NOW = datetime(2026, 12, 5, 21, 30, tzinfo=UTC)


def test_a_period_without_bounds_is_the_year_to_now() -> None:
    assert period_of(None, None, NOW) == Period(NOW - timedelta(days=365), NOW)
    ends_in_march = period_of(None, "2026-03-31", NOW)
    assert ends_in_march == Period(
        datetime(2025, 4, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    )
    assert period_of("2026-12-01", None, NOW) == Period(datetime(2026, 12, 1, tzinfo=UTC), NOW)


def test_the_mean_score_and_the_pareto_ranking() -> None:
    assert satisfaction_of({}).mean is None
    assert satisfaction_of({5: 2, 1: 1, None: 4}).model_dump() == {
        "scored": 3,
        "mean": 3.67,
        "distribution": {"1": 1, "2": 0, "3": 0, "4": 0, "5": 2},
        "deemed_accepted": 4,
    }
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ranked = pareto([(a, "Few", 1), (b, "Most", 7), (c, "Some", 2)])
    # 7/10, then 2/10 (0.9 so far), then 1/10
    assert [(r.name, r.share, r.cumulative_share) for r in ranked] == [
        ("Most", 0.7, 0.7),
        ("Some", 0.2, 0.9),
        ("Few", 0.1, 1.0),
    ]
    thirds = pareto([(a, "A", 1), (b, "B", 1), (c, "C", 1)])
    assert thirds[-1].cumulative_share == 1.0  # from running counts, not summed shares


# --- as the complaints service writes them ----------------------------------------------------


async def test_a_complaint_walked_through_the_api_is_counted_as_it_went(desk: Desk) -> None:
    """The report reads the visits and clocks the complaints service writes: one complaint
    raised from a call and walked to closed, at once (every deadline met)."""
    complaint = await desk.raise_complaint()  # its records complete: at step 2
    said = await desk.http.post(
        f"{COMPLAINTS}/{complaint['id']}/acknowledgement", json={"said": True}, headers=desk.agent
    )
    assert said.status_code == 200, said.text
    billing = await desk.category("complaint", "billing")
    await desk.moved(complaint, "confirm", category_id=billing, severity="major")
    noted = await desk.http.post(
        f"{COMPLAINTS}/{complaint['id']}/notes", json={"text": "Two debits"}, headers=desk.agent
    )
    assert noted.status_code == 201, noted.text
    await desk.moved(
        complaint, "send_reply", assessment="Retried run", reply="Refunded", actions_taken="Refund"
    )
    await desk.moved(complaint, "customer_accepts", answer="Fine", satisfaction=4)
    root = await desk.category("root_cause", "payment run retried")
    await desk.moved(
        complaint,
        "close",
        desk.supervisor,
        root_cause_id=root,
        corrective_action="One payment run per customer and month",
        action_owner="Billing",
    )
    response = await desk.http.get(
        "/v1/complaints/report", params={"category_id": billing}, headers=desk.supervisor
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["complaints"] == {"raised": 1, "open": 0, "closed": 1, "rejected": 0}
    assert report["overdue"] == {"count": 0, "listed": []}
    assert [(row["step"], row["stays"]) for row in report["time_per_step"]] == [
        ("intake", 1),
        ("accept", 1),
        ("investigate", 1),
        ("reply", 1),
        ("improve", 1),
    ]
    assert all(row["median_seconds"] >= 0 for row in report["time_per_step"])
    assert report["deadlines"][-1] == {"clock": "overall", "met": 4, "missed": 0, "share_met": 1.0}
    assert report["satisfaction"]["distribution"]["4"] == 1
    assert [(c["name"], c["cumulative_share"]) for c in report["root_causes"]] == [
        ("payment run retried", 1.0)
    ]

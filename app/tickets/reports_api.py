"""The complaint reports over HTTP: the figures as JSON, and the same figures as CSV for a
spreadsheet (docs/complaints.md, "Reports"). Supervisors and admins read them.

Mounted before the complaints' own router (app/main.py), so `/v1/complaints/report` is this
report and never a complaint whose id is "report".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.auth.dependencies import Session, Staff
from app.core.inputs import REFUSES_NUL
from app.customers.models import Tier
from app.tickets.models import ComplaintChannel
from app.tickets.reports import (
    MOMENT_LENGTH,
    ComplaintReport,
    ReportFilters,
    complaint_report,
    ensure_filters_known,
    period_of,
    report_csv,
)

router = APIRouter(prefix="/v1/complaints", tags=["complaint reports"])

CSV_TYPE = "text/csv; charset=utf-8"


def report_filters(
    raised_from: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=MOMENT_LENGTH,
            description="Raised at or after: an ISO date (a UTC day) or date and time;"
            " default: a year before `to`",
            examples=["2026-01-01"],
        ),
        REFUSES_NUL,
    ] = None,
    raised_to: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=MOMENT_LENGTH,
            description="Raised before this date and time, or up to and including this date;"
            " default: now. At most two years after `from`",
            examples=["2026-03-31"],
        ),
        REFUSES_NUL,
    ] = None,
    queue_id: Annotated[uuid.UUID | None, Query(description="Came in on this queue")] = None,
    tier: Annotated[Tier | None, Query(description="The customer's tier when raised")] = None,
    category_id: Annotated[
        uuid.UUID | None, Query(description="Of this complaint category")
    ] = None,
    channel: Annotated[ComplaintChannel | None, Query(description="Came in on this")] = None,
) -> ReportFilters:
    return ReportFilters(
        period=period_of(raised_from, raised_to, datetime.now(UTC)),
        queue_id=queue_id,
        tier=tier,
        category_id=category_id,
        channel=channel,
    )


# After the caller's role (declared first): a 403 never tells whether a queue exists.
Filters = Annotated[ReportFilters, Depends(report_filters)]


async def _report(session: Session, filters: ReportFilters) -> ComplaintReport:
    await ensure_filters_known(session, filters)
    return await complaint_report(session, filters, datetime.now(UTC))


@router.get("/report", summary="Complaint figures of a period: open, overdue, times, deadlines")
async def get_report(_: Staff, session: Session, filters: Filters) -> ComplaintReport:
    """Open complaints by step, overdue ones, median and p90 time per step, the share of
    deadlines met, satisfaction after the reply and root causes ranked (Pareto), of the
    complaints raised in the period with the filters given."""
    return await _report(session, filters)


@router.get(
    "/report.csv",
    summary="The same figures as CSV: figure, item, measure, value",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One figure per row"}},
)
async def get_report_csv(_: Staff, session: Session, filters: Filters) -> Response:
    return Response(
        report_csv(await _report(session, filters)),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": 'attachment; filename="complaints-report.csv"'},
    )

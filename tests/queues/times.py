"""Business hours, holidays and moments, written briefly for the tests of queues' hours and of
complaints' deadlines alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.queues.calendar import HolidayCalendar
from app.queues.hours import BusinessHours

WORKDAYS = ["mon", "tue", "wed", "thu", "fri"]
NONE = HolidayCalendar()


def hours(zone: str, days: list[str], *spans: tuple[str, str]) -> BusinessHours:
    weekly = {day: [{"opens": o, "closes": c} for o, c in spans] for day in days}
    return BusinessHours.model_validate({"timezone": zone, "weekly": weekly})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar(**fields: Any) -> HolidayCalendar:
    return HolidayCalendar.model_validate(fields)

"""Business hours as data, and whether a queue is open at a moment, and when it opens next. Pure.

Hours are wall-clock spans in the queue's own time zone; its holidays (app/queues/calendar.py)
close whole local days. A span is open from the instant the local clock shows `opens` until
just before it shows `closes`, so on a day the clocks change it opens late or twice: a span
opening at 01:30 on Europe/London's spring-forward day opens at 02:00 BST, the first instant
whose local time is past 01:30; on the fall-back day, local 01:30 comes twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.inputs import REFUSES_NUL
from app.core.zones import known_zone
from app.queues.calendar import HolidayCalendar, holidays_of


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"


WEEKDAYS = list(Weekday)


class OpeningSpan(BaseModel):
    opens: time
    closes: time = Field(description="Exclusive; 24:00 is written 23:59:59")

    @field_validator("opens", "closes")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        # An offset here could not be compared with the queue's local time (a TypeError, a 500).
        if value.tzinfo is not None:
            raise ValueError("give a local time without a UTC offset; the zone is `timezone`")
        return value

    @model_validator(mode="after")
    def _opens_before_closing(self) -> OpeningSpan:
        if self.opens >= self.closes:
            raise ValueError(f"opens ({self.opens}) must be before closes ({self.closes})")
        return self


class BusinessHours(BaseModel):
    """Weekly opening spans in one time zone; a day left out is closed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timezone": "Asia/Shanghai",
                    "weekly": {d: [{"opens": "09:00", "closes": "18:00"}] for d in WEEKDAYS[:5]},
                }
            ]
        }
    )

    timezone: Annotated[str, StringConstraints(max_length=64), REFUSES_NUL]
    weekly: dict[Weekday, Annotated[list[OpeningSpan], Field(max_length=8)]] = Field(
        default_factory=dict
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


def is_open(hours: BusinessHours | None, at: datetime) -> bool:
    """No business hours means always open. `at` must be timezone-aware."""
    if hours is None:
        return True
    if at.tzinfo is None:
        raise ValueError("is_open needs a timezone-aware datetime")
    local = at.astimezone(ZoneInfo(hours.timezone))
    spans = hours.weekly.get(WEEKDAYS[local.weekday()], [])
    moment = local.time().replace(tzinfo=None)
    return any(span.opens <= moment < span.closes for span in spans)


class QueueStatus(StrEnum):
    """What a caller finds: `open`, `closed` (outside the weekly hours) or `holiday` (a closed
    date or a public holiday of the queue's calendar, whatever the hours say that day)."""

    open = "open"
    closed = "closed"
    holiday = "holiday"


# How far ahead `next_opening` looks; a queue that opens later than this is told as never.
OPENING_HORIZON = timedelta(days=400)


def local_zone(hours: BusinessHours | None) -> ZoneInfo:
    """The zone a queue's days are read in: its hours' own, or UTC for a queue without hours."""
    return ZoneInfo("UTC" if hours is None else hours.timezone)


def holiday_at(
    hours: BusinessHours | None, calendar: HolidayCalendar, moment: datetime
) -> str | None:
    """The holiday that closes the queue at `moment` (its name, "" if unnamed), or None."""
    _ensure_aware(moment, "holiday_at")
    if calendar.is_empty():
        return None
    return holidays_of(calendar)(moment.astimezone(local_zone(hours)).date())


def status_at(
    hours: BusinessHours | None, calendar: HolidayCalendar, moment: datetime
) -> QueueStatus:
    """Whether the queue is open at `moment` (timezone-aware): a holiday of its calendar (read
    on the local date) closes the whole day; otherwise its weekly hours decide (`is_open`; no
    hours: always open). Without hours, dates are UTC dates (the API refuses holidays on a
    queue without hours, so this only happens to a caller that builds its own)."""
    if holiday_at(hours, calendar, moment) is not None:
        return QueueStatus.holiday
    return QueueStatus.open if is_open(hours, moment) else QueueStatus.closed


def next_opening(
    hours: BusinessHours | None,
    calendar: HolidayCalendar,
    after: datetime,
    *,
    horizon: timedelta = OPENING_HORIZON,
) -> datetime | None:
    """The first instant at or after `after` (timezone-aware) at which the queue is open, in
    UTC: `after` itself when it is open then; None when it does not open within `horizon`
    (hours with no spans, or every opening day closed).

    The status changes only where the local clock reaches a span's `opens` (each time it does:
    twice within a fall-back hour) or where the clocks change (a span opening within a
    spring-forward gap opens when the gap ends), so the earliest of those instants found open
    is the answer; tests/queues/test_status.py holds it to a scan minute by minute.
    """
    _ensure_aware(after, "next_opening")
    on = holidays_of(calendar)

    def opened(moment: datetime) -> bool:
        local = moment.astimezone(zone)
        return on(local.date()) is None and is_open(hours, moment)

    zone = local_zone(hours)
    if opened(after):
        return after.astimezone(UTC)
    first = after.astimezone(zone).date()
    days = horizon.days + 1
    best: datetime | None = None
    for offset in range(days):
        day = first + timedelta(days=offset)
        for candidate in _may_open(hours, zone, day):
            if candidate > after and (best is None or candidate < best) and opened(candidate):
                best = candidate
        # The next day's instants may still come first (a shifted clock); the one after cannot.
        if best is not None and day > best.astimezone(zone).date():
            return best
    return best


def _may_open(hours: BusinessHours | None, zone: ZoneInfo, day: date) -> Iterator[datetime]:
    """Every instant on or about local `day` at which the queue may become open: each span's
    `opens` on the local clock (both instants when the clock shows it twice) and each change
    of the zone's offset around that day. A superset: the caller keeps those found open."""
    spans = (
        [time(0)]
        if hours is None
        else [s.opens for s in hours.weekly.get(WEEKDAYS[day.weekday()], [])]
    )
    for opens in spans:
        wall = datetime.combine(day, opens)
        for fold in (0, 1):
            yield wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    change = _offset_change(zone, day)
    if change is not None:
        yield change


def _offset_change(zone: ZoneInfo, day: date) -> datetime | None:
    """The instant the zone's UTC offset changes on or about local `day` (within six hours
    either side, so that a change at midnight is seen from both days), or None."""
    start = datetime.combine(day, time(0)).replace(tzinfo=zone).astimezone(UTC) - _MARGIN
    end = start + timedelta(days=1) + 2 * _MARGIN
    before = start.astimezone(zone).utcoffset()
    if end.astimezone(zone).utcoffset() == before:
        return None
    # The offset moves on a whole second: halve the span until a second apart.
    low, high = int(start.timestamp()), int(end.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


_MARGIN = timedelta(hours=6)


def _ensure_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{what} needs a timezone-aware datetime")

"""Complaint deadlines: business time on a queue's hours and holidays, and the policy of
severity and customer tier that says how much of it each step gets. Pure.

Business time is the time a queue is open: its weekly spans on its own local clock
(app/queues/hours.py), holidays of its calendar (app/queues/calendar.py) closed for the whole
local day, as `status_at` reads them; a queue without hours is always open. The deadline of a
step is the moment its policy's duration of open time has passed since it was entered, plus
the open time it spent paused (the waits for the customer's answer to a reply).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.queues.calendar import HolidayCalendar, holidays_of
from app.queues.hours import WEEKDAYS, BusinessHours, local_zone
from app.tickets.workflow import Step

# How long without any open time before a queue is told as never opening (as `next_opening`).
CLOSED_HORIZON = timedelta(days=400)

# --- business time ------------------------------------------------------------------------------


def add_business_time(
    start: datetime,
    duration: timedelta,
    hours: BusinessHours | None,
    calendar: HolidayCalendar,
) -> datetime:
    """The first moment (UTC) at which `duration` of open time has passed since `start`
    (timezone-aware). Started outside hours, the count begins at the next opening; a duration
    used up exactly at a closing time ends at that closing, not at the next opening; a zero
    duration ends at `start`. Walks the open spans one by one, so weeks cost a few hundred
    steps. Raises ValueError when the queue stops opening for `CLOSED_HORIZON`."""
    _ensure_aware(start, "add_business_time")
    if duration < timedelta(0):
        raise ValueError("a duration of business time cannot be negative")
    start = start.astimezone(UTC)
    if hours is None or duration == timedelta(0):
        return start + duration
    left = duration
    for opens, closes in open_spans(hours, calendar, start):
        if closes - opens >= left:
            return opens + left
        left -= closes - opens
    raise AssertionError("open_spans never ends")  # pragma: no cover


def business_time_between(
    start: datetime,
    end: datetime,
    hours: BusinessHours | None,
    calendar: HolidayCalendar,
) -> timedelta:
    """The open time from `start` to `end` (timezone-aware; zero when `end` is not after it)."""
    _ensure_aware(start, "business_time_between")
    _ensure_aware(end, "business_time_between")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta(0)
    if hours is None:
        return end - start
    total = timedelta(0)
    for opens, closes in open_spans(hours, calendar, start):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


def add_business_days(
    start: datetime,
    days: int,
    hours: BusinessHours | None,
    calendar: HolidayCalendar,
) -> datetime:
    """The end (UTC) of the `days`-th local day after `start`'s own on which the queue opens:
    its last closing that day. A queue without hours counts calendar days from `start`."""
    _ensure_aware(start, "add_business_days")
    if days < 1:
        raise ValueError("count at least one business day")
    if hours is None:
        return start.astimezone(UTC) + timedelta(days=days)
    zone = local_zone(hours)
    first = start.astimezone(zone).date()
    counted, current, last_close = 0, first, start
    for opens, closes in open_spans(hours, calendar, start):
        day = opens.astimezone(zone).date()
        if day == first:
            continue
        if day != current:
            if counted == days:
                return last_close
            counted, current = counted + 1, day
        last_close = closes
    raise AssertionError("open_spans never ends")  # pragma: no cover


def open_spans(
    hours: BusinessHours, calendar: HolidayCalendar, since: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The queue's open spans (UTC, `[opens, closes)`) from `since` on, in order, the first
    cut at `since`. Endless; raises ValueError after `CLOSED_HORIZON` without an opening.

    Read local day by local day. Assumes the local date never goes back, which holds unless
    a zone falls back across midnight (none does today); such a night would lose a sliver."""
    zone = local_zone(hours)
    on = holidays_of(calendar)
    day = since.astimezone(zone).date()
    last_open = since
    after = since
    while True:
        spans = [] if on(day) is not None else _spans_on(hours, zone, day)
        for opens, closes in spans:
            opens = max(opens, after)
            if opens < closes:
                yield opens, closes
                after = last_open = closes
        if datetime.combine(day, time(0), UTC) - last_open > CLOSED_HORIZON + timedelta(days=1):
            raise ValueError(f"the queue does not open within {CLOSED_HORIZON.days} days")
        day += timedelta(days=1)


def _spans_on(hours: BusinessHours, zone: ZoneInfo, day: date) -> list[tuple[datetime, datetime]]:
    """The instants (UTC) whose local clock shows `day` within one of its spans, as sorted,
    merged intervals: on a day the clocks change, each stretch of constant offset is read
    with its own offset, so a span in a spring-forward gap opens when the gap ends and one
    over a fall-back hour is open through both of its passes (as `is_open` says)."""
    found: list[tuple[datetime, datetime]] = []
    for span in hours.weekly.get(WEEKDAYS[day.weekday()], []):
        wall_opens = datetime.combine(day, span.opens, UTC)
        wall_closes = datetime.combine(day, span.closes, UTC)
        # Wall time minus offset is UTC; offsets run from -12 h to +14 h.
        window = (wall_opens - timedelta(hours=15), wall_closes + timedelta(hours=13))
        for low, high, offset in _constant_offsets(zone, *window):
            opens, closes = max(low, wall_opens - offset), min(high, wall_closes - offset)
            if opens < closes:
                found.append((opens, closes))
    return _merged(sorted(found))


def _constant_offsets(
    zone: ZoneInfo, low: datetime, high: datetime
) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """`[low, high)` cut where the zone's UTC offset changes, each piece with its offset.
    Zones change at most twice a year, so a piece of about a day has at most one change."""
    while low < high:
        offset = _offset(zone, low)
        if _offset(zone, high) == offset:
            yield low, high, offset
            return
        change = _offset_change(zone, low, high, offset)
        yield low, change, offset
        low = change


def _offset(zone: ZoneInfo, moment: datetime) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _offset_change(zone: ZoneInfo, low: datetime, high: datetime, before: timedelta) -> datetime:
    """The first whole second in `(low, high]` whose offset is not `before` (changes fall on
    whole seconds; halve the span until a second apart)."""
    first, last = int(low.timestamp()), int(high.timestamp())
    while last - first > 1:
        middle = (first + last) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == before:
            first = middle
        else:
            last = middle
    return datetime.fromtimestamp(last, UTC)


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching spans as one (a day's spans may be given overlapping)."""
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in spans:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _ensure_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{what} needs a timezone-aware datetime")


# --- the policy ---------------------------------------------------------------------------------


class Severity(enum.StrEnum):
    """How bad a complaint is, set when it is confirmed at step 2."""

    minor = "minor"
    major = "major"
    critical = "critical"


# Mildest first, so a test can hold the policy to "never looser for a higher one".
SEVERITIES = (Severity.minor, Severity.major, Severity.critical)

# The customer tiers of app/routing/rules.py's TIERS (a test checks they agree), best first.
Tier = Literal["platinum", "gold", "iron", "lead"]
POLICY_TIERS: tuple[Tier, ...] = get_args(Tier)

# The steps that have a deadline, and what each deadline is for (counted from `entered_at`):
# - accept: acknowledge and confirm (or reject), from the complaint entering step 2;
# - investigate: send the reply, from entering step 3 (each time: a returned reply starts anew);
# - reply: the resolution, from first entering step 3 until the reply the customer accepts is
#   sent; every wait for the customer's answer (sending a reply until they answer) is paused,
#   so a reply the customer returns must be reworked within the same clock;
# - improve: root cause and corrective action recorded and the complaint closed, from step 5.
# Step 1 (intake) is the complaint being recorded as it comes in: no clock of its own.
DEADLINE_STEPS = (Step.accept, Step.investigate, Step.reply, Step.improve)


# A step's longest business time: a year of an always-open queue (more is surely a typo).
LONGEST = timedelta(days=365)


class StepDurations(BaseModel):
    """The business time each step with a deadline gets (see DEADLINE_STEPS)."""

    model_config = ConfigDict(frozen=True)

    accept: timedelta = Field(gt=timedelta(0), le=LONGEST)
    investigate: timedelta = Field(gt=timedelta(0), le=LONGEST)
    reply: timedelta = Field(gt=timedelta(0), le=LONGEST)
    improve: timedelta = Field(gt=timedelta(0), le=LONGEST)

    def of(self, step: Step) -> timedelta | None:
        """The step's duration, None for a step without a deadline."""
        if step not in DEADLINE_STEPS:
            return None
        duration: timedelta = getattr(self, step.value)
        return duration


class DeadlinePolicy(BaseModel):
    """Per severity and customer tier, the business time each step gets. Every pair is given."""

    model_config = ConfigDict(frozen=True)

    durations: Mapping[Severity, Mapping[Tier, StepDurations]]

    @model_validator(mode="after")
    def _every_pair(self) -> DeadlinePolicy:
        for severity in SEVERITIES:
            for tier in POLICY_TIERS:
                if tier not in self.durations.get(severity, {}):
                    raise ValueError(f"no durations for a {tier} customer's {severity} complaint")
        return self

    def of(self, severity: Severity, tier: Tier) -> StepDurations:
        return self.durations[severity][tier]


def _hours(accept: float, investigate: float, reply: float, improve: float) -> StepDurations:
    return StepDurations(
        accept=timedelta(hours=accept),
        investigate=timedelta(hours=investigate),
        reply=timedelta(hours=reply),
        improve=timedelta(hours=improve),
    )


# In business hours. The policy is written for the common 8-hour business day (a 09:00-17:00
# desk): "two business days" is 16 business hours, "a business week" 40. Business hours,
# not days, because they are what the queue's calendar counts; a queue open longer than 8 hours
# a day reaches a deadline sooner on the calendar, which is fair: it is staffed those hours.
# Stricter for a better tier and a worse severity; improvement (internal work on the root
# cause) depends on severity only.
DEFAULT_POLICY = DeadlinePolicy(
    durations={
        Severity.critical: {
            "platinum": _hours(1, 8, 16, 40),
            "gold": _hours(2, 16, 24, 40),
            "iron": _hours(4, 24, 40, 40),
            "lead": _hours(4, 24, 40, 40),
        },
        Severity.major: {
            "platinum": _hours(2, 16, 24, 80),
            "gold": _hours(4, 24, 40, 80),
            "iron": _hours(8, 40, 64, 80),
            "lead": _hours(8, 40, 64, 80),
        },
        Severity.minor: {
            "platinum": _hours(4, 24, 40, 160),
            "gold": _hours(8, 40, 64, 160),
            "iron": _hours(16, 80, 120, 160),
            "lead": _hours(16, 80, 120, 160),
        },
    }
)


def deadline_for(
    step: Step,
    severity: Severity,
    tier: Tier,
    entered_at: datetime,
    policy: DeadlinePolicy,
    hours: BusinessHours | None,
    calendar: HolidayCalendar,
    paused: timedelta = timedelta(0),
) -> datetime | None:
    """When `step` must be done (UTC): its policy duration of the queue's open time after
    `entered_at` (see DEADLINE_STEPS for where each clock starts), plus `paused`, the open time
    spent waiting for the customer's answer (`business_time_between` the reply and the answer).
    None for a step without a deadline."""
    duration = policy.of(severity, tier).of(step)
    if duration is None:
        return None
    if paused < timedelta(0):
        raise ValueError("a pause cannot be negative")
    return add_business_time(entered_at, duration + paused, hours, calendar)

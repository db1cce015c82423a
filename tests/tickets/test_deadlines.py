"""Complaint deadlines: business time counted on a queue's hours and holidays, across evenings,
weekends, holidays and the clocks changing, and the policy of severity and tier. Every moment is
given explicitly (an injected clock), never read from `now()`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.queues.hours import BusinessHours, QueueStatus, status_at
from app.routing.rules import TIERS
from app.tickets.deadlines import (
    DEADLINE_STEPS,
    DEFAULT_POLICY,
    POLICY_TIERS,
    SEVERITIES,
    DeadlinePolicy,
    Severity,
    add_business_days,
    add_business_time,
    business_time_between,
    deadline_for,
    open_spans,
)
from app.tickets.workflow import Step
from tests.queues.times import NONE, WORKDAYS, calendar, hours, utc


def h(count: float) -> timedelta:
    return timedelta(hours=count)


# 09:00-17:00 in Shanghai (UTC+8, no daylight saving) is 01:00-09:00 UTC.
SHANGHAI_OFFICE = hours("Asia/Shanghai", WORKDAYS, ("09:00", "17:00"))
LONDON_OFFICE = hours("Europe/London", WORKDAYS, ("09:00", "17:00"))
# Open around the clock, but for a break, so the night the clocks change is inside a span.
LONDON_NIGHTS = hours("Europe/London", [*WORKDAYS, "sat", "sun"], ("00:00", "23:59:59"))

# --- add_business_time and business_time_between -----------------------------------------------


def test_time_within_a_day_is_plain_addition() -> None:
    # Monday 2 March 2026, 10:00 in Shanghai (02:00 UTC) plus 3 hours: 13:00 (05:00 UTC).
    assert add_business_time(utc(2026, 3, 2, 2), h(3), SHANGHAI_OFFICE, NONE) == utc(2026, 3, 2, 5)


def test_the_evening_is_skipped() -> None:
    # Monday 16:00 in Shanghai plus 2 hours: 1 hour on Monday, 1 on Tuesday from 09:00.
    start = utc(2026, 3, 2, 8)
    assert add_business_time(start, h(2), SHANGHAI_OFFICE, NONE) == utc(2026, 3, 3, 2)
    assert business_time_between(start, utc(2026, 3, 3, 2), SHANGHAI_OFFICE, NONE) == h(2)


def test_the_weekend_is_skipped() -> None:
    # Friday 6 March 16:00 plus 2 hours: Monday 9 March 10:00 (02:00 UTC).
    assert add_business_time(utc(2026, 3, 6, 8), h(2), SHANGHAI_OFFICE, NONE) == utc(2026, 3, 9, 2)


def test_a_holiday_is_skipped_on_the_local_date() -> None:
    closed = calendar(closed_dates=[{"date": "2026-03-03", "name": "Closed for training"}])
    # Monday 16:00 plus 2 hours: Tuesday is closed, so Wednesday 10:00.
    start = utc(2026, 3, 2, 8)
    assert add_business_time(start, h(2), SHANGHAI_OFFICE, closed) == utc(2026, 3, 4, 2)
    assert business_time_between(start, utc(2026, 3, 4, 9), SHANGHAI_OFFICE, closed) == h(9)


def test_a_public_holiday_of_the_country_is_skipped() -> None:
    england = calendar(country="GB", subdivision="ENG")
    # Thursday 24 December 2026, 16:00 in London plus 2 hours: Friday 25 is Christmas, Monday
    # 28 the Boxing Day substitute, so Tuesday 29 at 10:00 (GMT, UTC+0).
    start = utc(2026, 12, 24, 16)
    assert add_business_time(start, h(2), LONDON_OFFICE, england) == utc(2026, 12, 29, 10)


def test_a_start_outside_hours_counts_from_the_next_opening() -> None:
    # Saturday 7 March, 03:00 in Shanghai: the count begins Monday 09:00.
    start = utc(2026, 3, 6, 19)
    assert add_business_time(start, h(1), SHANGHAI_OFFICE, NONE) == utc(2026, 3, 9, 2)
    assert business_time_between(start, utc(2026, 3, 9, 1), SHANGHAI_OFFICE, NONE) == h(0)


def test_a_duration_used_up_at_closing_ends_at_the_closing() -> None:
    # Monday 09:00 plus 8 hours is Monday 17:00, not Tuesday 09:00.
    start = utc(2026, 3, 2, 1)
    assert add_business_time(start, h(8), SHANGHAI_OFFICE, NONE) == utc(2026, 3, 2, 9)
    # One second more is the first second of Tuesday.
    one_more = add_business_time(start, h(8) + timedelta(seconds=1), SHANGHAI_OFFICE, NONE)
    assert one_more == utc(2026, 3, 3, 1) + timedelta(seconds=1)


def test_a_zero_duration_ends_where_it_starts() -> None:
    evening = utc(2026, 3, 2, 12)  # Monday 20:00 in Shanghai, closed
    assert add_business_time(evening, h(0), SHANGHAI_OFFICE, NONE) == evening
    assert business_time_between(evening, evening, SHANGHAI_OFFICE, NONE) == h(0)


def test_business_days_end_at_the_close_of_the_nth_open_day_after_the_start() -> None:
    # Thursday 5 March 2026, 11:00 in Shanghai; Friday 6 is a closed date: 2 business days
    # after Thursday are Monday 9 and Tuesday 10, so 17:00 on Tuesday (09:00 UTC).
    closed = calendar(closed_dates=[{"date": "2026-03-06"}])
    start = utc(2026, 3, 5, 3)
    assert add_business_days(start, 2, SHANGHAI_OFFICE, closed) == utc(2026, 3, 10, 9)
    # Started on a closed day, the count begins with the next open one.
    assert add_business_days(utc(2026, 3, 7, 3), 1, SHANGHAI_OFFICE, NONE) == utc(2026, 3, 9, 9)
    # Without hours, calendar days.
    assert add_business_days(start, 2, None, NONE) == utc(2026, 3, 7, 3)
    with pytest.raises(ValueError, match="at least one"):
        add_business_days(start, 0, SHANGHAI_OFFICE, NONE)


def test_a_queue_without_hours_is_always_open() -> None:
    start = utc(2026, 3, 7, 3)  # a Saturday
    assert add_business_time(start, h(50), None, NONE) == start + h(50)
    assert business_time_between(start, start + h(50), None, NONE) == h(50)


def test_weeks_of_business_time() -> None:
    # Four business weeks (160 hours) from Monday 2 March 09:00: Friday 27 March 17:00.
    start = utc(2026, 3, 2, 1)
    end = add_business_time(start, h(160), SHANGHAI_OFFICE, NONE)
    assert end == utc(2026, 3, 27, 9)
    assert business_time_between(start, end, SHANGHAI_OFFICE, NONE) == h(160)


def test_london_office_hours_move_with_summer_time() -> None:
    # Friday 27 March 2026, 16:00 GMT (UTC) plus 2 hours: the clocks go forward on Sunday 29,
    # so Monday 30 March 10:00 is 09:00 UTC (BST).
    start = utc(2026, 3, 27, 16)
    assert add_business_time(start, h(2), LONDON_OFFICE, NONE) == utc(2026, 3, 30, 9)
    assert business_time_between(start, utc(2026, 3, 30, 9), LONDON_OFFICE, NONE) == h(2)


def test_the_spring_forward_night_has_an_hour_fewer() -> None:
    # Open around the clock; Sunday 29 March 2026 in London has 23 hours (all but the break).
    day = (utc(2026, 3, 29, 0), utc(2026, 3, 29, 23))  # local midnight to midnight
    elapsed = business_time_between(*day, LONDON_NIGHTS, NONE)
    assert elapsed == h(23) - timedelta(seconds=1)
    # 00:30 GMT plus 1 hour: 01:30 local does not exist, so 02:30 BST (01:30 UTC).
    assert add_business_time(utc(2026, 3, 29, 0, 30), h(1), LONDON_NIGHTS, NONE) == utc(
        2026, 3, 29, 1, 30
    )


def test_the_fall_back_night_has_an_hour_more() -> None:
    # Sunday 25 October 2026 in London: local midnight is 23:00 UTC the day before, the next
    # midnight 00:00 UTC on the 26th: 25 hours, all open but the last second's break.
    day = (utc(2026, 10, 24, 23), utc(2026, 10, 26, 0))
    assert business_time_between(*day, LONDON_NIGHTS, NONE) == h(25) - timedelta(seconds=1)


def test_a_span_over_the_fall_back_hour_is_open_through_both_passes() -> None:
    # 01:00-02:00 local comes twice on 25 October 2026: 00:00-02:00 UTC, two hours open.
    small_hours = hours("Europe/London", ["sun"], ("01:00", "02:00"))
    assert business_time_between(utc(2026, 10, 24), utc(2026, 10, 26), small_hours, NONE) == h(2)


def test_a_queue_that_never_opens_is_refused() -> None:
    never = BusinessHours.model_validate({"timezone": "UTC", "weekly": {}})
    with pytest.raises(ValueError, match="does not open"):
        add_business_time(utc(2026, 3, 2), h(1), never, NONE)


def test_naive_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(datetime(2026, 3, 2), h(1), SHANGHAI_OFFICE, NONE)


# --- properties ---------------------------------------------------------------------------------

SMALL_HOURS = hours("Europe/London", ["sun"], ("00:30", "02:30"))  # over both clock changes
QUEUES = [
    SHANGHAI_OFFICE,
    LONDON_OFFICE,
    LONDON_NIGHTS,
    hours("America/New_York", WORKDAYS, ("08:00", "12:00"), ("13:00", "20:00")),
    SMALL_HOURS,
]
HOLIDAYS = calendar(
    closed_dates=[{"date": "2026-03-30"}, {"date": "2026-10-26"}], country="GB", subdivision="ENG"
)
# Through 2026, clock changes included: minutes, so spans' edges are hit.
moments = st.integers(0, 365 * 24 * 60).map(
    lambda minutes: utc(2026, 1, 1) + timedelta(minutes=minutes)
)
durations = st.integers(0, 3 * 40 * 60).map(lambda minutes: timedelta(minutes=minutes))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(QUEUES), moments, durations)
@example(LONDON_NIGHTS, utc(2026, 3, 29, 0, 30), h(1))
@example(SMALL_HOURS, utc(2026, 10, 24), h(3))
def test_the_time_between_a_start_and_its_deadline_is_the_duration(
    queue: BusinessHours, start: datetime, duration: timedelta
) -> None:
    end = add_business_time(start, duration, queue, HOLIDAYS)
    assert end >= start
    assert business_time_between(start, end, queue, HOLIDAYS) == duration


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(QUEUES), moments, durations, durations)
def test_more_business_time_never_ends_sooner(
    queue: BusinessHours, start: datetime, one: timedelta, other: timedelta
) -> None:
    shorter, longer = sorted((one, other))
    assert add_business_time(start, shorter, queue, HOLIDAYS) <= add_business_time(
        start, longer, queue, HOLIDAYS
    )


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(QUEUES), moments, st.integers(0, 59))
@example(SMALL_HOURS, utc(2026, 3, 29, 2, 15), 0)  # 03:15 BST: closed, though 02:15 UTC
@example(SMALL_HOURS, utc(2026, 10, 25, 2), 0)  # 02:00 GMT, after 01:00-02:00 came twice: open
def test_open_spans_agree_with_the_queue_status(
    queue: BusinessHours, moment: datetime, second: int
) -> None:
    # A moment is inside an open span exactly when status_at says the queue is open.
    moment += timedelta(seconds=second)
    since = moment - timedelta(days=3)
    inside = False
    for opens, closes in open_spans(queue, HOLIDAYS, since):
        if opens > moment:
            break
        inside = inside or opens <= moment < closes
    assert inside == (status_at(queue, HOLIDAYS, moment) is QueueStatus.open)


# --- the policy ---------------------------------------------------------------------------------


def test_the_policy_tiers_are_the_routing_tiers() -> None:
    assert POLICY_TIERS == TIERS


def test_the_default_policy_examples() -> None:
    platinum_critical = DEFAULT_POLICY.of(Severity.critical, "platinum")
    assert platinum_critical.accept == h(1)
    # Two business days of 8 hours for a lead customer's minor complaint.
    assert DEFAULT_POLICY.of(Severity.minor, "lead").accept == h(16)


def test_never_looser_for_a_better_tier_or_a_worse_severity() -> None:
    for step in DEADLINE_STEPS:
        for severity in SEVERITIES:
            by_tier = [DEFAULT_POLICY.of(severity, tier).of(step) for tier in POLICY_TIERS]
            assert by_tier == sorted(by_tier, key=lambda d: d or h(0)), (step, severity)
        for tier in POLICY_TIERS:
            by_severity = [DEFAULT_POLICY.of(severity, tier).of(step) for severity in SEVERITIES]
            assert by_severity == sorted(by_severity, key=lambda d: d or h(0), reverse=True), (
                step,
                tier,
            )


def test_investigating_fits_within_the_resolution() -> None:
    for severity in SEVERITIES:
        for tier in POLICY_TIERS:
            durations = DEFAULT_POLICY.of(severity, tier)
            assert durations.investigate <= durations.reply


def test_a_policy_must_give_every_severity_and_tier() -> None:
    partial = {s: dict(DEFAULT_POLICY.durations[s]) for s in SEVERITIES}
    del partial[Severity.major]["iron"]
    with pytest.raises(ValueError, match="iron customer's major"):
        DeadlinePolicy.model_validate({"durations": partial})


def test_a_policy_reads_from_json() -> None:
    policy = DeadlinePolicy.model_validate_json(DEFAULT_POLICY.model_dump_json())
    assert policy == DEFAULT_POLICY


# --- deadline_for -------------------------------------------------------------------------------


def test_a_platinum_critical_complaint_is_acknowledged_within_the_business_hour() -> None:
    # Entered Friday 6 March 16:30 in Shanghai: 30 minutes on Friday, 30 on Monday.
    deadline = deadline_for(
        Step.accept,
        Severity.critical,
        "platinum",
        utc(2026, 3, 6, 8, 30),
        DEFAULT_POLICY,
        SHANGHAI_OFFICE,
        NONE,
    )
    assert deadline == utc(2026, 3, 9, 1, 30)


def test_a_lead_minor_complaint_is_acknowledged_within_two_business_days() -> None:
    # Entered Monday 2 March 09:00 in London (GMT): Tuesday 3 March 17:00.
    deadline = deadline_for(
        Step.accept, Severity.minor, "lead", utc(2026, 3, 2, 9), DEFAULT_POLICY, LONDON_OFFICE, NONE
    )
    assert deadline == utc(2026, 3, 3, 17)


def test_the_wait_for_the_customers_answer_does_not_count() -> None:
    # Resolution (reply) for a gold critical complaint: 24 business hours from Monday 2 March
    # 09:00, so Wednesday 17:00 without a pause. The reply went out Monday 12:00 and the
    # customer answered Tuesday 11:00: 7 business hours paused, so Thursday 16:00.
    entered = utc(2026, 3, 2, 9)
    paused = business_time_between(utc(2026, 3, 2, 12), utc(2026, 3, 3, 11), LONDON_OFFICE, NONE)
    assert paused == h(7)
    without = deadline_for(
        Step.reply, Severity.critical, "gold", entered, DEFAULT_POLICY, LONDON_OFFICE, NONE
    )
    assert without == utc(2026, 3, 4, 17)
    deadline = deadline_for(
        Step.reply, Severity.critical, "gold", entered, DEFAULT_POLICY, LONDON_OFFICE, NONE, paused
    )
    assert deadline == utc(2026, 3, 5, 16)


@pytest.mark.parametrize("step", [Step.intake, Step.closed, Step.rejected])
def test_a_step_without_a_deadline_has_none(step: Step) -> None:
    assert (
        deadline_for(
            step, Severity.major, "iron", utc(2026, 3, 2), DEFAULT_POLICY, LONDON_OFFICE, NONE
        )
        is None
    )

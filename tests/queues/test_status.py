"""Open, closed or on a holiday, and the next opening: read in the queue's own time zone, right
on the days the clocks change."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.queues.calendar import HolidayCalendar, holiday_on
from app.queues.hours import (
    WEEKDAYS,
    BusinessHours,
    QueueStatus,
    holiday_at,
    next_opening,
    status_at,
)
from tests.queues.times import NONE, WORKDAYS, calendar, hours, utc

LONDON = ZoneInfo("Europe/London")
SHANGHAI = ZoneInfo("Asia/Shanghai")


SHANGHAI_OFFICE = hours("Asia/Shanghai", WORKDAYS, ("09:00", "18:00"))
LONDON_OFFICE = hours("Europe/London", WORKDAYS, ("09:00", "17:30"))

# --- status_at ----------------------------------------------------------------------------------


def test_a_closed_date_closes_the_whole_local_day() -> None:
    christmas = calendar(closed_dates=[{"date": "2026-12-25", "name": "Christmas"}])
    # Friday 25 December 2026, 10:00 in Shanghai (02:00 UTC): open by the hours, but a holiday.
    assert status_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 25, 2)) is QueueStatus.holiday
    assert holiday_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 25, 2)) == "Christmas"
    # The day before and after are as the hours say.
    assert status_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 24, 2)) is QueueStatus.open
    assert status_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 24, 12)) is QueueStatus.closed
    # 16:00 UTC on the 24th is already the 25th in Shanghai: the local date counts.
    assert status_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 24, 16)) is QueueStatus.holiday
    assert status_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 25, 15, 59)) is QueueStatus.holiday
    assert status_at(SHANGHAI_OFFICE, christmas, utc(2026, 12, 25, 16)) is QueueStatus.closed


def test_a_holiday_on_a_closed_day_is_told_as_the_holiday() -> None:
    saturday = calendar(closed_dates=[{"date": "2026-12-26"}])
    assert status_at(SHANGHAI_OFFICE, saturday, utc(2026, 12, 26, 2)) is QueueStatus.holiday
    assert holiday_at(SHANGHAI_OFFICE, saturday, utc(2026, 12, 26, 2)) == ""


def test_public_holidays_of_a_country_close_the_queue() -> None:
    china = calendar(country="CN")
    # Spring Festival 2026: 17 February, a Tuesday, 10:00 in Shanghai.
    assert status_at(SHANGHAI_OFFICE, china, utc(2026, 2, 17, 2)) is QueueStatus.holiday
    assert "Chinese New Year" in (holiday_at(SHANGHAI_OFFICE, china, utc(2026, 2, 17, 2)) or "")
    assert status_at(SHANGHAI_OFFICE, china, utc(2026, 2, 10, 2)) is QueueStatus.open
    assert status_at(SHANGHAI_OFFICE, NONE, utc(2026, 2, 17, 2)) is QueueStatus.open


def test_a_subdivision_has_its_own_holidays() -> None:
    # St Andrew's Day is a bank holiday in Scotland, not in England: Monday 30 November 2026.
    monday = utc(2026, 11, 30, 10)
    scotland = calendar(country="GB", subdivision="SCT")
    england = calendar(country="GB", subdivision="ENG")
    assert status_at(LONDON_OFFICE, scotland, monday) is QueueStatus.holiday
    assert status_at(LONDON_OFFICE, england, monday) is QueueStatus.open
    # Both close on the observed Boxing Day (Monday 28 December 2026).
    for region in (scotland, england):
        assert status_at(LONDON_OFFICE, region, utc(2026, 12, 28, 10)) is QueueStatus.holiday


def test_a_date_listed_by_hand_names_the_day_before_the_country_does() -> None:
    both = calendar(closed_dates=[{"date": "2026-12-25", "name": "Closed"}], country="GB")
    assert holiday_on(both, date(2026, 12, 25)) == "Closed"
    assert holiday_on(both, date(2026, 12, 28)) == "Boxing Day (observed)"


def test_no_hours_and_no_holidays_is_always_open() -> None:
    assert status_at(None, NONE, utc(2026, 12, 25, 2)) is QueueStatus.open
    assert next_opening(None, NONE, utc(2026, 12, 25, 2, 30)) == utc(2026, 12, 25, 2, 30)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        status_at(SHANGHAI_OFFICE, NONE, datetime(2026, 11, 30, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(SHANGHAI_OFFICE, NONE, datetime(2026, 11, 30, 10))


# --- next_opening -------------------------------------------------------------------------------


def test_open_now_opens_now() -> None:
    at = utc(2026, 11, 30, 3, 17)  # Monday 11:17 in Shanghai
    assert next_opening(SHANGHAI_OFFICE, NONE, at) == at


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 11, 30, 0, 59), utc(2026, 11, 30, 1)),  # Monday 08:59 -> 09:00
        (utc(2026, 11, 30, 10), utc(2026, 12, 1, 1)),  # Monday 18:00 -> Tuesday 09:00
        (utc(2026, 12, 4, 12), utc(2026, 12, 7, 1)),  # Friday evening -> Monday 09:00
        (utc(2026, 12, 5, 20), utc(2026, 12, 7, 1)),  # Sunday 04:00 -> Monday 09:00
    ],
)
def test_the_next_opening_is_the_next_span_in_the_queues_zone(
    after: datetime, expected: datetime
) -> None:
    assert next_opening(SHANGHAI_OFFICE, NONE, after) == expected


def test_the_spring_festival_moves_the_next_opening_past_the_holidays() -> None:
    # Friday 13 February 2026, 20:00 in Shanghai: 16 to 20 and 23 February are public holidays
    # (Chinese New Year's Eve, the festival and the days off in lieu), so Tuesday 24th, 09:00.
    after = utc(2026, 2, 13, 12)
    assert next_opening(SHANGHAI_OFFICE, calendar(country="CN"), after) == utc(2026, 2, 24, 1)
    assert next_opening(SHANGHAI_OFFICE, NONE, after) == utc(2026, 2, 16, 1)


def test_london_opens_an_hour_earlier_in_utc_after_spring_forward() -> None:
    # Clocks go forward on Sunday 29 March 2026 at 01:00 UTC: 09:00 is 09:00 UTC on Friday
    # and 08:00 UTC on Monday.
    friday_evening = utc(2026, 3, 27, 18)
    assert next_opening(LONDON_OFFICE, NONE, friday_evening) == utc(2026, 3, 30, 8)
    assert next_opening(LONDON_OFFICE, NONE, utc(2026, 3, 26, 18)) == utc(2026, 3, 27, 9)


def test_a_span_opening_inside_the_spring_forward_gap_opens_when_the_gap_ends() -> None:
    # 01:30 never shows on a London clock on 29 March 2026 (01:00 GMT becomes 02:00 BST): the
    # queue opens at the first instant past 01:30 local, 02:00 BST, 01:00 UTC.
    night = hours("Europe/London", ["sun"], ("01:30", "05:00"))
    opening = next_opening(night, NONE, utc(2026, 3, 28, 12))
    assert opening == utc(2026, 3, 29, 1)
    assert status_at(night, NONE, opening) is QueueStatus.open
    assert status_at(night, NONE, opening - timedelta(microseconds=1)) is QueueStatus.closed


def test_a_span_inside_the_repeated_hour_opens_twice_on_fall_back() -> None:
    # 25 October 2026: 02:00 BST becomes 01:00 GMT, so 01:00-01:30 shows twice on the clock.
    repeated = hours("Europe/London", ["sun"], ("01:00", "01:30"))
    first = next_opening(repeated, NONE, utc(2026, 10, 24, 12))
    assert first == utc(2026, 10, 25, 0)  # 01:00 BST
    second = next_opening(repeated, NONE, utc(2026, 10, 25, 0, 30))  # 01:30 BST: closed
    assert second == utc(2026, 10, 25, 1)  # 01:00 GMT


def test_a_span_within_the_repeated_hour_opens_again_at_its_second_showing() -> None:
    quarter_past = hours("Europe/London", ["sun"], ("01:15", "01:45"))
    after_the_first = utc(2026, 10, 25, 0, 50)  # 01:50 BST
    assert next_opening(quarter_past, NONE, after_the_first) == utc(2026, 10, 25, 1, 15)


def test_a_span_is_re_entered_when_the_clock_goes_back_into_it() -> None:
    # 00:30-01:30 on fall-back night: closed at 01:30 BST, and at 02:00 BST the clock shows
    # 01:00 GMT, inside the span again: it opens then, though no span begins at 01:00.
    late = hours("Europe/London", ["sun"], ("00:30", "01:30"))
    assert next_opening(late, NONE, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 1)


def test_hours_with_no_spans_never_open() -> None:
    assert next_opening(BusinessHours(timezone="Europe/Paris"), NONE, utc(2026, 1, 1)) is None


def test_a_queue_closed_beyond_the_horizon_never_opens() -> None:
    mondays = hours("UTC", ["mon"], ("09:00", "10:00"))
    every_monday = [
        {"date": (date(2026, 11, 30) + timedelta(weeks=n)).isoformat()} for n in range(60)
    ]
    closed = calendar(closed_dates=every_monday)
    assert next_opening(mondays, closed, utc(2026, 11, 29)) is None
    assert next_opening(mondays, closed, utc(2026, 11, 29), horizon=timedelta(days=500)) == (
        datetime(2028, 1, 24, 9, tzinfo=UTC)
    )


def test_no_hours_with_holidays_reopens_at_the_next_utc_midnight() -> None:
    """A shape the API refuses (holidays need hours for their time zone), but the function is
    total: without hours, dates are UTC dates."""
    christmas = calendar(closed_dates=[{"date": "2026-12-25"}])
    assert status_at(None, christmas, utc(2026, 12, 25, 12)) is QueueStatus.holiday
    assert next_opening(None, christmas, utc(2026, 12, 25, 12)) == utc(2026, 12, 26)


# --- properties: next_opening against a scan of the clock -------------------------------------

# Zones whose offsets are whole quarter hours, changing on a quarter hour: with spans on quarter
# hours, the status can change only on a quarter hour of UTC, so a scan quarter by quarter sees
# every opening. Lord Howe moves its clocks by half an hour; St John's is UTC-3:30 or -2:30.
ZONES = [
    "UTC",
    "Europe/London",
    "Asia/Shanghai",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/Santiago",
]
QUARTER = timedelta(minutes=15)
# Days around clock changes of those zones in 2026, and ordinary days.
NEAR = [
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 3, 8),
    date(2026, 11, 1),
    date(2026, 4, 5),
    date(2026, 10, 4),
    date(2026, 9, 6),
    date(2026, 7, 15),
]
SCAN = timedelta(days=16)


def _quarter(index: int) -> time:
    return time(index // 4, 15 * (index % 4))


@st.composite
def weekly_spans(draw: st.DrawFn) -> dict[str, list[dict[str, str]]]:
    weekly: dict[str, list[dict[str, str]]] = {}
    for day in WEEKDAYS:
        spans = []
        for _ in range(draw(st.integers(0, 2))):
            opens = draw(st.integers(0, 95))
            closes = draw(st.integers(opens + 1, 96))
            closing = "23:59:59" if closes == 96 else _quarter(closes).isoformat()
            spans.append({"opens": _quarter(opens).isoformat(), "closes": closing})
        if spans:
            weekly[day.value] = spans
    return weekly


def _first_open_by_scan(
    hours_: BusinessHours, closed: HolidayCalendar, after: datetime
) -> datetime | None:
    if status_at(hours_, closed, after) is QueueStatus.open:
        return after
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    moment = epoch + ((after - epoch) // QUARTER + 1) * QUARTER
    while moment <= after + SCAN:
        if status_at(hours_, closed, moment) is QueueStatus.open:
            return moment
        moment += QUARTER
    return None


@given(
    zone=st.sampled_from(ZONES),
    weekly=weekly_spans(),
    near=st.sampled_from(NEAR),
    offset=st.timedeltas(min_value=timedelta(days=-2), max_value=timedelta(days=2)),
    closed_days=st.lists(st.integers(-2, 10), max_size=4, unique=True),
)
@settings(max_examples=120, deadline=None)
@example(
    zone="Europe/London",
    weekly={"sun": [{"opens": "01:30", "closes": "05:00"}]},
    near=date(2026, 3, 29),
    offset=timedelta(hours=-12),
    closed_days=[],
)
@example(
    zone="Europe/London",
    weekly={"sun": [{"opens": "00:30", "closes": "01:30"}]},
    near=date(2026, 10, 25),
    offset=timedelta(minutes=30),
    closed_days=[],
)
def test_the_next_opening_is_open_and_nothing_before_it_is(
    zone: str,
    weekly: dict[str, list[dict[str, str]]],
    near: date,
    offset: timedelta,
    closed_days: list[int],
) -> None:
    office = BusinessHours.model_validate({"timezone": zone, "weekly": weekly})
    closed = calendar(
        closed_dates=[{"date": (near + timedelta(days=d)).isoformat()} for d in closed_days]
    )
    after = datetime.combine(near, time(12), tzinfo=UTC) + offset

    opening = next_opening(office, closed, after)
    scanned = _first_open_by_scan(office, closed, after)

    if opening is None or opening > after + SCAN:
        assert scanned is None
        return
    assert opening >= after
    assert status_at(office, closed, opening) is QueueStatus.open
    assert opening == scanned  # no quarter hour between `after` and it was open


@given(
    zone=st.sampled_from(ZONES),
    weekly=weekly_spans(),
    after=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
)
@settings(max_examples=100, deadline=None)
def test_the_next_opening_does_not_depend_on_the_zone_it_is_asked_in(
    zone: str, weekly: dict[str, list[dict[str, str]]], after: datetime
) -> None:
    office = BusinessHours.model_validate({"timezone": zone, "weekly": weekly})
    expected = next_opening(office, NONE, after)
    assert next_opening(office, NONE, after.astimezone(SHANGHAI)) == expected
    assert next_opening(office, NONE, after.astimezone(LONDON)) == expected
    if expected is not None:
        assert expected.tzinfo is UTC


# --- what a calendar accepts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"country": "XX"}, ("country",), "no public holidays known"),
        ({"country": "GBR"}, ("country",), "at most 2 characters"),
        ({"country": "GB", "subdivision": "XYZ"}, ("subdivision",), "GB has no subdivision"),
        ({"subdivision": "ENG"}, ("subdivision",), "needs its country"),
        ({"country": "XX", "subdivision": "ENG"}, ("country",), "no public holidays known"),
        ({"country": "GB", "subdivision": "x" * 33}, ("subdivision",), "at most 32"),
        (
            {"closed_dates": [{"date": "2026-12-25"}, {"date": "2026-12-25", "name": "again"}]},
            ("closed_dates",),
            "listed twice",
        ),
        ({"closed_dates": [{"date": "2026-02-30"}]}, ("closed_dates", 0, "date"), "date"),
        ({"closed_dates": [{"date": "2026-12-25", "name": "x" * 101}]}, None, "at most 100"),
        ({"closed_dates": [{"date": "2026-12-25", "name": "a\x00b"}]}, None, "NUL"),
    ],
)
def test_a_bad_calendar_is_refused_naming_the_field(
    body: dict[str, Any], where: tuple[Any, ...] | None, says: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        HolidayCalendar.model_validate(body)
    errors = raised.value.errors()
    assert len(errors) == 1
    if where is not None:
        assert errors[0]["loc"] == where
    assert says in errors[0]["msg"]


def test_a_calendar_is_kept_sorted_and_its_codes_upper_case() -> None:
    kept = calendar(
        closed_dates=[{"date": "2026-12-31"}, {"date": "2026-01-02", "name": " Staff day "}],
        country="cn",
    )
    assert kept.model_dump(mode="json") == {
        "closed_dates": [
            {"date": "2026-01-02", "name": "Staff day"},
            {"date": "2026-12-31", "name": ""},
        ],
        "country": "CN",
        "subdivision": None,
    }
    assert HolidayCalendar.model_validate(kept.model_dump(mode="json")) == kept

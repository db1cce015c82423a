"""Business hours: whether a queue is open at an instant, judged in the queue's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.queues.hours import WEEKDAYS, BusinessHours, OpeningSpan, Weekday, is_open

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def hours(zone: str, days: list[str], *spans: tuple[str, str]) -> BusinessHours:
    weekly = {day: [{"opens": o, "closes": c} for o, c in spans] for day in days}
    return BusinessHours.model_validate({"timezone": zone, "weekly": weekly})


def utc(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


SHANGHAI_OFFICE = hours("Asia/Shanghai", WORKDAYS, ("09:00", "18:00"))

# 2026-11-30 is a Monday; Shanghai is UTC+8 all year.


def test_no_business_hours_means_always_open() -> None:
    assert is_open(None, utc(2026, 11, 29, 3)) is True
    assert is_open(None, datetime(2026, 12, 25, 23, 59, 59, tzinfo=SHANGHAI)) is True


@given(st.datetimes(timezones=st.timezones()))
@settings(max_examples=50)
def test_no_business_hours_is_open_at_any_instant(at: datetime) -> None:
    assert is_open(None, at) is True


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 11, 30, 1, 30), True),  # Monday 09:30 in Shanghai, 01:30 in UTC
        (utc(2026, 11, 30, 1, 0), True),  # Monday 09:00: opening time is included
        (utc(2026, 11, 30, 0, 59, 59), False),  # Monday 08:59:59
        (utc(2026, 11, 30, 9, 59, 59), True),  # Monday 17:59:59
        (utc(2026, 11, 30, 10, 0), False),  # Monday 18:00: closing time is excluded
        (utc(2026, 11, 30, 12, 0), False),  # Monday 20:00, noon in UTC
        (utc(2026, 12, 4, 9, 0), True),  # Friday 17:00
        (utc(2026, 12, 4, 17, 0), False),  # 17:00 Friday in UTC is 01:00 Saturday in Shanghai
        (utc(2026, 11, 29, 17, 0), False),  # Sunday in UTC, 01:00 Monday in Shanghai
        (utc(2026, 12, 5, 2, 0), False),  # Saturday 10:00: a day left out is closed
        (utc(2026, 12, 6, 2, 0), False),  # Sunday 10:00
    ],
)
def test_office_hours_are_read_in_the_queues_time_zone(at: datetime, expected: bool) -> None:
    assert is_open(SHANGHAI_OFFICE, at) is expected


def test_the_weekday_is_the_local_one_across_midnight() -> None:
    early_monday = hours("Asia/Shanghai", ["mon"], ("00:00", "06:00"))
    assert is_open(early_monday, utc(2026, 11, 29, 20, 0)) is True  # Sunday 20:00 UTC
    assert is_open(early_monday, utc(2026, 11, 30, 20, 0)) is False  # Monday 20:00 UTC = Tue 04:00


def test_the_instant_counts_not_the_zone_it_is_written_in() -> None:
    instant = utc(2026, 11, 30, 1, 30)
    for zone in ("America/New_York", "Europe/Paris", "Asia/Shanghai", "Pacific/Kiritimati"):
        assert is_open(SHANGHAI_OFFICE, instant.astimezone(ZoneInfo(zone))) is True
    assert is_open(SHANGHAI_OFFICE, datetime(2026, 11, 30, 9, 30, tzinfo=SHANGHAI)) is True
    assert is_open(SHANGHAI_OFFICE, datetime(2026, 11, 30, 10, 30, tzinfo=UTC)) is False  # 18:30


def test_daylight_saving_time_moves_the_opening_in_utc() -> None:
    paris = hours("Europe/Paris", WORKDAYS, ("09:00", "18:00"))
    # 07:30 UTC is 09:30 in a Paris summer (UTC+2) but 08:30 in a Paris winter (UTC+1).
    assert is_open(paris, utc(2026, 7, 6, 7, 30)) is True
    assert is_open(paris, utc(2026, 1, 5, 7, 30)) is False
    assert is_open(paris, utc(2026, 1, 5, 8, 30)) is True


def test_several_spans_in_a_day_leave_the_gaps_closed() -> None:
    split = hours("Asia/Shanghai", ["mon"], ("09:00", "12:00"), ("13:00", "18:00"))
    assert is_open(split, datetime(2026, 11, 30, 11, 59, tzinfo=SHANGHAI)) is True
    assert is_open(split, datetime(2026, 11, 30, 12, 30, tzinfo=SHANGHAI)) is False
    assert is_open(split, datetime(2026, 11, 30, 13, 0, tzinfo=SHANGHAI)) is True


def test_hours_with_no_days_are_always_closed() -> None:
    closed = BusinessHours(timezone="UTC")
    assert is_open(closed, utc(2026, 11, 30, 12)) is False


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(SHANGHAI_OFFICE, datetime(2026, 11, 30, 10, 0))


# --- what BusinessHours accepts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "Asia/Shangai", "", "+08:00", "../../etc/passwd", "Asia/"]
)
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(ValidationError) as raised:
        BusinessHours(timezone=zone)
    errors = raised.value.errors()
    assert [e["loc"] for e in errors] == [("timezone",)]
    assert "unknown time zone" in errors[0]["msg"]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "America/Sao_Paulo", "Etc/GMT-8"])
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert BusinessHours(timezone=zone).timezone == zone


@pytest.mark.parametrize(
    ("opens", "closes"), [("18:00", "09:00"), ("09:00", "09:00"), ("23:59:59", "00:00")]
)
def test_a_span_must_open_before_it_closes(opens: str, closes: str) -> None:
    with pytest.raises(ValidationError, match="must be before closes"):
        OpeningSpan.model_validate({"opens": opens, "closes": closes})


def test_midnight_is_written_23_59_59_not_24_00() -> None:
    with pytest.raises(ValidationError):
        OpeningSpan.model_validate({"opens": "09:00", "closes": "24:00"})
    span = OpeningSpan.model_validate({"opens": "09:00", "closes": "23:59:59"})
    assert span.closes == time(23, 59, 59)


@pytest.mark.parametrize(
    ("opens", "closes"),
    [("09:00+08:00", "18:00"), ("09:00+08:00", "18:00+08:00"), ("09:00Z", "18:00")],
)
def test_a_span_with_a_utc_offset_is_refused(opens: str, closes: str) -> None:
    with pytest.raises(ValidationError) as raised:
        OpeningSpan.model_validate({"opens": opens, "closes": closes})
    assert ("opens",) in [e["loc"] for e in raised.value.errors()]
    assert "without a UTC offset" in str(raised.value)


def test_an_unknown_weekday_is_refused() -> None:
    with pytest.raises(ValidationError):
        BusinessHours.model_validate(
            {"timezone": "UTC", "weekly": {"funday": [{"opens": "09:00", "closes": "10:00"}]}}
        )


def test_at_most_eight_spans_a_day() -> None:
    spans = [{"opens": f"{h:02d}:00", "closes": f"{h:02d}:30"} for h in range(9)]
    with pytest.raises(ValidationError):
        BusinessHours.model_validate({"timezone": "UTC", "weekly": {"mon": spans}})
    eight = BusinessHours.model_validate({"timezone": "UTC", "weekly": {"mon": spans[:8]}})
    assert len(eight.weekly[Weekday.mon]) == 8


def test_hours_survive_a_json_round_trip() -> None:
    """The service stores hours as JSON and reads them back; nothing may change on the way."""
    stored: dict[str, Any] = SHANGHAI_OFFICE.model_dump(mode="json")
    assert stored["weekly"]["mon"] == [{"opens": "09:00:00", "closes": "18:00:00"}]
    assert BusinessHours.model_validate(stored) == SHANGHAI_OFFICE


# --- properties ----------------------------------------------------------------------------------

ZONES = ["UTC", "Asia/Shanghai", "Europe/Paris", "America/St_Johns", "Asia/Kathmandu"]
AWARE = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.timezones(),
    allow_imaginary=False,
)


@given(zone=st.sampled_from(ZONES), at=AWARE)
@settings(max_examples=100)
def test_a_whole_day_every_day_is_open_except_the_last_second(zone: str, at: datetime) -> None:
    always = hours(zone, [d.value for d in WEEKDAYS], ("00:00", "23:59:59"))
    local = at.astimezone(ZoneInfo(zone))
    last_second = local.time() >= time(23, 59, 59)
    assert is_open(always, at) is not last_second


@given(zone=st.sampled_from(ZONES), at=AWARE)
@settings(max_examples=100)
def test_being_open_depends_on_the_instant_only(zone: str, at: datetime) -> None:
    office = hours(zone, WORKDAYS, ("09:00", "12:00"), ("13:30", "18:00"))
    assert is_open(office, at) is is_open(office, at.astimezone(UTC))
    assert is_open(office, at) is is_open(office, at.astimezone(ZoneInfo("Asia/Tokyo")))


@given(
    day=st.sampled_from(WEEKDAYS),
    opens=st.times(),
    length=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=24)),
    probe=st.timedeltas(min_value=timedelta(hours=-3), max_value=timedelta(hours=27)),
)
@settings(max_examples=150)
def test_one_span_is_open_exactly_from_opening_until_just_before_closing(
    day: Weekday, opens: time, length: timedelta, probe: timedelta
) -> None:
    monday = datetime(2026, 11, 30, tzinfo=SHANGHAI)
    day_start = monday + timedelta(days=WEEKDAYS.index(day))
    opening = datetime.combine(day_start.date(), opens, tzinfo=SHANGHAI)
    closing = min(opening + length, datetime.combine(day_start.date(), time.max, tzinfo=SHANGHAI))
    if closing.time() <= opens:
        return
    span = {"opens": opens.isoformat(), "closes": closing.time().isoformat()}
    one = BusinessHours.model_validate({"timezone": "Asia/Shanghai", "weekly": {day: [span]}})
    at = (opening + probe).astimezone(UTC)
    assert is_open(one, at) is (opening <= at < closing)

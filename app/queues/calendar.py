"""A queue's holidays as data: dates it closes, and a country whose public holidays close it.

Pure but for one read-only table: the `holidays` package's public holidays, computed (not
fetched: it needs no network) once per country, subdivision and year and kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Annotated

import holidays as public_holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.core.inputs import REFUSES_NUL

HolidayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), REFUSES_NUL]
CountryCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=2), REFUSES_NUL
]
SubdivisionCode = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=32), REFUSES_NUL
]


class ClosedDate(BaseModel):
    """One day the queue stays closed, whatever its weekly hours say."""

    date: dt.date
    name: HolidayName = ""


class HolidayCalendar(BaseModel):
    """The days a queue closes: `closed_dates`, and the public holidays of `country` (ISO 3166
    alpha-2, optionally with a `subdivision`: a state, province or nation such as `ENG`), as
    the `holidays` package knows them, observed days included. Dates are the queue's local
    dates, in its business hours' time zone."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "closed_dates": [{"date": "2026-12-24", "name": "Christmas Eve"}],
                    "country": "GB",
                    "subdivision": "ENG",
                }
            ]
        }
    )

    closed_dates: list[ClosedDate] = Field(default_factory=list, max_length=1000)
    country: CountryCode | None = None
    subdivision: SubdivisionCode | None = None

    @field_validator("closed_dates")
    @classmethod
    def _each_date_once(cls, value: list[ClosedDate]) -> list[ClosedDate]:
        seen: set[dt.date] = set()
        for closed in value:
            if closed.date in seen:
                raise ValueError(f"{closed.date} is listed twice")
            seen.add(closed.date)
        return sorted(value, key=lambda closed: closed.date)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None and value not in supported_countries():
            raise ValueError(
                f"no public holidays known for country {value!r} (give an ISO 3166 alpha-2 code"
                " such as CN or GB)"
            )
        return value

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or "country" not in info.data:
            return value  # a country refused says so itself
        country = info.data["country"]
        if country is None:
            raise ValueError("a subdivision needs its country")
        known = supported_countries()[country]
        if value not in known:
            listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise ValueError(
                f"{country} has no subdivision {value!r}"
                + (f" (known: {listed})" if known else " (it has none)")
            )
        return value

    def is_empty(self) -> bool:
        return not self.closed_dates and self.country is None


NO_HOLIDAYS = HolidayCalendar()


@cache
def supported_countries() -> dict[str, list[str]]:
    """Each country the `holidays` package knows (alpha-2 code) with its subdivisions' codes."""
    return public_holidays.list_supported_countries(include_aliases=False)


@lru_cache(maxsize=512)
def _public_holidays(country: str, subdivision: str | None, year: int) -> dict[dt.date, str]:
    return dict(public_holidays.country_holidays(country, subdiv=subdivision, years=year))


def holiday_on(calendar: HolidayCalendar, day: dt.date) -> str | None:
    """The holiday that closes the queue on `day` (its name, "" if unnamed), or None.

    A closed date listed by hand comes before a public holiday of the same day."""
    return holidays_of(calendar)(day)


def holidays_of(calendar: HolidayCalendar) -> Callable[[dt.date], str | None]:
    """`holiday_on` for one calendar, its closed dates indexed once (for a look-up day by day)."""
    closed = {entry.date: entry.name for entry in calendar.closed_dates}
    country, subdivision = calendar.country, calendar.subdivision

    def on(day: dt.date) -> str | None:
        if day in closed:
            return closed[day]
        if country is None:
            return None
        return _public_holidays(country, subdivision, day.year).get(day)

    return on

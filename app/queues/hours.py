"""Business hours as data, and whether a queue is open at a moment. Pure."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.core.inputs import REFUSES_NUL


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
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from error
        if value not in available_timezones() and value != "UTC":
            raise ValueError(f"unknown time zone {value!r}")
        return value


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

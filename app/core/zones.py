"""Time zones as people name them: one check, for a queue's business hours and the center's
own zone (`CC_TIME_ZONE`)."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def known_zone(value: str) -> str:
    """`value` if it names an IANA time zone (`Europe/Paris`, `UTC`); ValueError saying so
    otherwise. A path-like name that ZoneInfo would open but the zone list lacks is refused."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        hint = "use an IANA name like Europe/Paris"
        raise ValueError(f"unknown time zone {value!r} ({hint})") from error
    if value not in _zone_names() and value != "UTC":
        raise ValueError(f"unknown time zone {value!r}")
    return value


@cache
def _zone_names() -> frozenset[str]:
    """The zone list, read once: `available_timezones` walks the zone files on every call
    (10 ms and more), and a queue's hours check theirs on every write."""
    return frozenset(available_timezones())

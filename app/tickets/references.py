"""A complaint's reference: what a customer quotes on the phone and every message carries.

`C-2026-004217`: the year it was raised and its number in that year, digits only after the
letter, so nothing reads two ways (no O and 0, no I and 1). Numbers count up from 1 each year
(`complaint_numbers`, one row per year, taken with a row lock: two complaints raised at once
get two numbers, never one). A reference as a customer says it or types it, in any case and
with or without its dashes or spaces (`c 2026 4217`, `C2026004217`), reads as the same one.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

PREFIX = "C"
DIGITS = 6  # the number's width; a seventh digit appears after 999,999 in a year

NEXT_NUMBER = text(
    """
    INSERT INTO complaint_numbers (year, last) VALUES (:year, 1)
    ON CONFLICT (year) DO UPDATE SET last = complaint_numbers.last + 1
    RETURNING last
    """
)

# A reference as said or typed: C, the year, the number, with any dashes or spaces between.
_SPOKEN = re.compile(r"^\s*[cC][\s-]*(\d{4})[\s-]*(\d{1,7})\s*$")
# A reference inside a text (a mail's subject, say): the written form only.
WRITTEN = re.compile(r"\bC-(\d{4})-(\d{6,7})\b")


def reference(year: int, number: int) -> str:
    return f"{PREFIX}-{year}-{number:0{DIGITS}d}"


async def next_reference(session: AsyncSession, year: int) -> str:
    """The next reference of `year`, in the session's transaction."""
    number = (await session.execute(NEXT_NUMBER, {"year": year})).scalar_one()
    return reference(year, number)


def parse(said: str) -> str | None:
    """The reference in its written form, or None when `said` is not one."""
    found = _SPOKEN.match(said)
    if found is None:
        return None
    return reference(int(found[1]), int(found[2]))


def mentioned(text_: str) -> list[str]:
    """The references written in a text, in order, each once."""
    return list(dict.fromkeys(reference(int(y), int(n)) for y, n in WRITTEN.findall(text_)))

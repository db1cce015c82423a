"""What the customer is told about their complaint: the acknowledgement (step 2), a rejection,
and the reply (step 4) with the link to answer it. Each names the reference, so an answer by
mail or a call can quote it; a moment is written on the complaint's calendar's clock.
"""

from __future__ import annotations

from datetime import datetime

from app.queues.hours import local_zone
from app.tickets.policy import Calendar


def when(moment: datetime, calendar: Calendar) -> str:
    """A moment as the customer reads it: the queue's local time, with its zone's name."""
    zone = local_zone(calendar.hours)
    local = moment.astimezone(zone)
    return f"{local:%A %d %B %Y, %H:%M} ({zone.key})"


def subject(reference: str, summary: str) -> str:
    return f"[{reference}] {summary}"


def acknowledgement(reference: str, summary: str, due: datetime, calendar: Calendar) -> str:
    return (
        f"We have received your complaint and registered it as {reference}: {summary}.\n\n"
        f"We will confirm how we are handling it by {when(due, calendar)}. Please quote "
        f"{reference} whenever you contact us about it."
    )


def rejection(reference: str, reason: str) -> str:
    return (
        f"We have looked at your complaint {reference} and cannot take it further, because: "
        f"{reason}\n\nIf you think we have misunderstood it, reply to this message or call us "
        f"quoting {reference}."
    )


def reply(
    reference: str, text: str, answer_url: str | None, answer_by: datetime, calendar: Calendar
) -> str:
    answer = (
        f"Please tell us whether this resolves your complaint, and how satisfied you are, "
        f"here: {answer_url}\n"
        if answer_url
        else "Please tell us whether this resolves your complaint.\n"
    )
    return (
        f"About your complaint {reference}:\n\n{text}\n\n{answer}"
        f"If we have not heard from you by {when(answer_by, calendar)}, we will take it that "
        "it does."
    )

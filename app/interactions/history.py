"""What an interaction is and what came before it, as an agent sees them with an offer (the
screen pop's `interaction` and `history`).

Read by the very statement that writes an offer (app/routing/offers.py): select lists over the
offered interaction `i` and its queue `q` (`COLUMNS`), and builders for the row that holds them
(what the IVR learned about a call too: `ivr_from_row`);
app/desk/screen_pop.py composes them with the rest of the pop. History comes back as an array
of rows rather than JSON: asyncpg decodes its timestamps to datetimes, whereas PostgreSQL's JSON
text of a timestamp follows the session's time zone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.core.channels import Channel
from app.interactions.models import InteractionState
from app.interactions.schemas import IvrLearned

HISTORY_LENGTH = 10


class OfferedInteraction(BaseModel):
    id: uuid.UUID
    channel: Channel
    external_ref: str | None
    queue: str
    subject: str | None
    priority: int
    waiting_since: datetime


class PastInteraction(BaseModel):
    id: uuid.UUID
    channel: Channel
    created_at: datetime
    state: InteractionState
    subject: str | None
    disposition: str | None
    agent: str | None  # the display name of the agent who handled it


COLUMNS = f"""
    i.id AS offered_id, i.channel AS offered_channel, i.external_ref AS offered_external_ref,
    q.name AS offered_queue, i.subject AS offered_subject, i.priority AS offered_priority,
    i.waiting_since AS offered_waiting_since, i.ivr AS offered_ivr,
    ARRAY(
        SELECT ROW(h.id, h.channel, h.created_at, h.state, h.subject, h.disposition,
                   u.display_name)
        FROM interactions h
        LEFT JOIN agents a ON a.id = h.agent_id
        LEFT JOIN users u ON u.id = a.user_id
        WHERE h.customer_id = i.customer_id AND h.id <> i.id
        ORDER BY h.created_at DESC
        LIMIT {HISTORY_LENGTH}
    ) AS offered_history
"""  # noqa: S608 - constants only, no outside text


def offered_from_row(row: Mapping[str, Any]) -> OfferedInteraction:
    return OfferedInteraction(
        id=row["offered_id"],
        channel=row["offered_channel"],
        external_ref=row["offered_external_ref"],
        queue=row["offered_queue"],
        subject=row["offered_subject"],
        priority=row["offered_priority"],
        waiting_since=row["offered_waiting_since"],
    )


def ivr_from_row(row: Mapping[str, Any]) -> IvrLearned | None:
    """What the IVR learned about the offered interaction, as it was stored; None without."""
    learned = row["offered_ivr"]
    return None if learned is None else IvrLearned.model_validate(learned)


def history_from_row(row: Mapping[str, Any]) -> list[PastInteraction]:
    """The customer's latest interactions before this one, newest first."""
    return [
        PastInteraction(
            id=id_,
            channel=channel,
            created_at=created_at,
            state=state,
            subject=subject,
            disposition=disposition,
            agent=agent,
        )
        for id_, channel, created_at, state, subject, disposition, agent in row["offered_history"]
    ]

"""What an interaction is, what it says and what came before it, as an agent sees them with an
offer (the screen pop's `interaction`, `messages` and `history`).

Read by the very statement that writes an offer (app/routing/offers.py): select lists over the
offered interaction `i` and its queue `q` (`COLUMNS`, `MESSAGE_COLUMNS`), and builders for the
row that holds them (what the IVR learned about a call too: `ivr_from_row`);
app/desk/screen_pop.py composes them with the rest of the pop. History and messages come back
as arrays of rows rather than JSON: asyncpg decodes their timestamps to datetimes, whereas
PostgreSQL's JSON text of a timestamp follows the session's time zone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.core.channels import Channel
from app.interactions.models import InteractionState, MessageDirection
from app.interactions.schemas import IvrLearned

HISTORY_LENGTH = 10
# An offer shows the interaction's latest messages, enough for a long mail thread to be read
# before accepting; the agent reads the rest with GET /v1/interactions/{id}/messages. A
# message's text is cut too (`text_cut` says so): the pop travels with every offer frame.
MESSAGES_SHOWN = 20
MESSAGE_TEXT_SHOWN = 8_000


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


class OfferedAttachment(BaseModel):
    """A file that came with a message: downloaded by its id (GET /v1/interactions/{id}/
    attachments/{attachment_id}), never sent with the pop."""

    id: uuid.UUID
    filename: str
    size: int


class OfferedMessage(BaseModel):
    """One of the offered interaction's own messages (an email's today; a chat's later)."""

    id: uuid.UUID
    direction: MessageDirection
    kind: str  # what the channel made of it: new_thread, reply, ...
    sender: str | None
    sender_name: str
    subject: str
    text: str
    text_cut: bool  # the text is longer than MESSAGE_TEXT_SHOWN: the whole is read over HTTP
    received_at: datetime
    attachments: list[OfferedAttachment]
    dropped: list[str]  # what was not kept, and why
    mentions: uuid.UUID | None  # another interaction this message names


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


# The offered interaction's latest messages, oldest first: an index range (interaction_id,
# received_at) read backwards. The message an interaction arrived with is attached by the
# arrival (app/interactions/arrival.sql), in the statement that may write its offer too; but a
# statement's reads see the tables as they were before it, so there it is found unattached, by
# its key: a channel keys the interaction by its first message (`external_ref` = that
# message's `dedupe_key`: app/channels/email/inbound.py). Two index probes (the range, the
# unique key), so work with no messages (a call) pays nearly nothing.
MESSAGE_COLUMNS = f"""
    ARRAY(
        SELECT ROW(m.id, m.direction, m.kind, m.sender, m.sender_name, m.subject,
                   left(m.text, {MESSAGE_TEXT_SHOWN}), length(m.text) > {MESSAGE_TEXT_SHOWN},
                   m.received_at,
                   ARRAY(SELECT ROW(a.id, a.filename, a.size) FROM message_attachments a
                         WHERE a.message_id = m.id ORDER BY a.filename, a.id),
                   ARRAY(SELECT jsonb_array_elements_text(m.dropped)),
                   m.mentions)
        FROM (
            (SELECT * FROM interaction_messages attached WHERE attached.interaction_id = i.id
             ORDER BY attached.received_at DESC, attached.id DESC LIMIT {MESSAGES_SHOWN})
            UNION ALL
            (SELECT * FROM interaction_messages arriving
             WHERE arriving.interaction_id IS NULL AND arriving.dedupe_key = i.external_ref)
            ORDER BY received_at DESC, id DESC
            LIMIT {MESSAGES_SHOWN}
        ) m
        ORDER BY m.received_at, m.id
    ) AS offered_messages
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


def messages_from_row(row: Mapping[str, Any]) -> list[OfferedMessage]:
    """The offered interaction's latest messages, oldest first."""
    return [
        OfferedMessage(
            id=id_,
            direction=direction,
            kind=kind,
            sender=sender,
            sender_name=sender_name,
            subject=subject,
            text=text,
            text_cut=text_cut,
            received_at=received_at,
            attachments=[
                OfferedAttachment(id=file_id, filename=filename, size=size)
                for file_id, filename, size in attachments
            ],
            dropped=list(dropped),
            mentions=mentions,
        )
        for (
            id_,
            direction,
            kind,
            sender,
            sender_name,
            subject,
            text,
            text_cut,
            received_at,
            attachments,
            dropped,
            mentions,
        ) in row["offered_messages"]
    ]

"""The screen pop: who the customer is and what happened before, built for one offer.

The matcher builds it in the statement that writes the offers (`COLUMNS` and `JOINS` are
spliced into that statement), so an offer reaches a desk of its own replica without another
read; `build` reads it for everything else: a replayed offer, an offer written by another
replica. Both go through `from_row`, so they cannot drift apart.

Contact points and history come back as arrays of rows rather than JSON: asyncpg decodes their
timestamps to datetimes, whereas PostgreSQL's JSON text of a timestamp follows the session's
time zone and drops trailing zeros of the fraction, so it would not match `isoformat()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias

import asyncpg

from app.interactions.service import InteractionNotFound

HISTORY_LENGTH = 10

# A pool works wherever a connection does: it lends one to each statement.
Reader: TypeAlias = asyncpg.Connection | asyncpg.Pool

# The pop's columns, for the interaction `i` with its customer `c` and queue `q`.
COLUMNS = f"""
    i.id AS pop_interaction_id, i.channel AS pop_channel, i.external_ref AS pop_external_ref,
    q.name AS pop_queue, i.subject AS pop_subject, i.priority AS pop_priority,
    i.waiting_since AS pop_waiting_since, c.id AS pop_customer_id, c.name AS pop_name,
    c.tier AS pop_tier, c.lifecycle_stage AS pop_lifecycle_stage, c.value AS pop_value,
    c.language AS pop_language, c.notes AS pop_notes,
    ARRAY(
        SELECT ROW(p.kind, p.value) FROM contact_points p
        WHERE p.customer_id = c.id ORDER BY p.created_at
    ) AS pop_contact_points,
    ARRAY(
        SELECT ROW(h.id, h.channel, h.created_at, h.state, h.subject, h.disposition,
                   u.display_name)
        FROM interactions h
        LEFT JOIN agents a ON a.id = h.agent_id
        LEFT JOIN users u ON u.id = a.user_id
        WHERE h.customer_id = i.customer_id AND h.id <> i.id
        ORDER BY h.created_at DESC
        LIMIT {HISTORY_LENGTH}
    ) AS pop_history
"""  # noqa: S608 - constants only, no outside text
JOINS = """
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
"""

POP = f"SELECT {COLUMNS} FROM interactions i {JOINS} WHERE i.id = $1"  # noqa: S608 - constants


class ScreenPopDetails:
    """The screen pop as the offers' writer reads it with each offer (routing.offers)."""

    name = "screen_pop"
    columns = COLUMNS

    def from_row(self, row: Mapping[str, Any], payload: Mapping[str, Any]) -> object:
        return from_row(row, routing_of(payload))


def routing(
    reason: str, matched_skills: Mapping[str, int], effective_priority: float | None
) -> dict[str, Any]:
    """The pop's `routing` slot: why the interaction went to this agent."""
    return {
        "reason": reason,
        "matched_skills": matched_skills,
        "effective_priority": effective_priority,
    }


def routing_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The `routing` slot from an `interaction.offered` event's payload."""
    return routing(
        payload.get("reason", ""),
        payload.get("matched_skills", {}),
        payload.get("effective_priority"),
    )


async def build(db: Reader, interaction_id: uuid.UUID, routing: dict[str, Any]) -> dict[str, Any]:
    row = await db.fetchrow(POP, interaction_id)
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    return from_row(row, routing)


def from_row(row: Mapping[str, Any], routing: dict[str, Any]) -> dict[str, Any]:
    """The pop from a row holding `COLUMNS`."""
    return {
        "interaction": {
            "id": str(row["pop_interaction_id"]),
            "channel": row["pop_channel"],
            "external_ref": row["pop_external_ref"],
            "queue": row["pop_queue"],
            "subject": row["pop_subject"],
            "priority": row["pop_priority"],
            "waiting_since": row["pop_waiting_since"].isoformat(),
        },
        "customer": {
            "id": str(row["pop_customer_id"]),
            "name": row["pop_name"],
            "tier": row["pop_tier"],
            "lifecycle_stage": row["pop_lifecycle_stage"],
            "value": str(row["pop_value"]),
            "language": row["pop_language"],
            "notes": row["pop_notes"],
            "contact_points": [
                {"kind": kind, "value": value} for kind, value in row["pop_contact_points"]
            ],
        },
        "history": [_past(item) for item in row["pop_history"]],
        # Filled by the complaints issue; the slot is part of the protocol already.
        "open_complaints": [],
        "routing": routing,
    }


def _past(item: tuple[Any, ...]) -> dict[str, Any]:
    id_, channel, created_at, state, subject, disposition, agent = item
    return {
        "id": str(id_),
        "channel": channel,
        "created_at": created_at.isoformat(),
        "state": state,
        "subject": subject,
        "disposition": disposition,
        "agent": agent,
    }

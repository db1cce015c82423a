"""The screen pop: who the customer is and what happened before, built for one offer.

One statement per pop, as it is built for every offer delivered. Contact points and history
come back as arrays of rows rather than JSON: asyncpg decodes their timestamps to datetimes,
whereas PostgreSQL's JSON text of a timestamp follows the session's time zone and drops trailing
zeros of the fraction, so it would not match `isoformat()`.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

import asyncpg

from app.interactions.service import InteractionNotFound

HISTORY_LENGTH = 10

# A pool works wherever a connection does: it lends one to each statement.
Reader: TypeAlias = asyncpg.Connection | asyncpg.Pool

POP = """
    SELECT i.id, i.channel, i.external_ref, q.name AS queue, i.subject, i.priority,
           i.waiting_since, c.id AS customer_id, c.name, c.tier, c.lifecycle_stage, c.value,
           c.language, c.notes,
           ARRAY(
               SELECT ROW(p.kind, p.value) FROM contact_points p
               WHERE p.customer_id = c.id ORDER BY p.created_at
           ) AS contact_points,
           ARRAY(
               SELECT ROW(h.id, h.channel, h.created_at, h.state, h.subject, h.disposition,
                          u.display_name)
               FROM interactions h
               LEFT JOIN agents a ON a.id = h.agent_id
               LEFT JOIN users u ON u.id = a.user_id
               WHERE h.customer_id = i.customer_id AND h.id <> i.id
               ORDER BY h.created_at DESC
               LIMIT $2
           ) AS history
    FROM interactions i
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    WHERE i.id = $1
"""


async def build(db: Reader, interaction_id: uuid.UUID, routing: dict[str, Any]) -> dict[str, Any]:
    row = await db.fetchrow(POP, interaction_id, HISTORY_LENGTH)
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    return {
        "interaction": {
            "id": str(row["id"]),
            "channel": row["channel"],
            "external_ref": row["external_ref"],
            "queue": row["queue"],
            "subject": row["subject"],
            "priority": row["priority"],
            "waiting_since": row["waiting_since"].isoformat(),
        },
        "customer": {
            "id": str(row["customer_id"]),
            "name": row["name"],
            "tier": row["tier"],
            "lifecycle_stage": row["lifecycle_stage"],
            "value": str(row["value"]),
            "language": row["language"],
            "notes": row["notes"],
            "contact_points": [
                {"kind": kind, "value": value} for kind, value in row["contact_points"]
            ],
        },
        "history": [_past(item) for item in row["history"]],
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

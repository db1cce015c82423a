"""Who and what a new interaction is: its caller checked, its customer identified (or made,
for a first contact), its queue and skills resolved. One statement for the usual delivery (a
known customer, by id or contact point): it checks the request's caller (its token or key) and
reads the earlier delivery of the same reference, the queue, its skills, the requested skills
and the customer. Validation runs in Python after it, in the order and with the messages of the
ORM version it replaced, so a client sees the same answers.

A first contact from an unknown caller is rare: its customer is made by the customers service
in a unit of work of its own, committed just before the interaction's insert, and only after
everything else in the request was found valid (so a refused request still writes nothing).
Should the insert still fail (its queue deleted in between), that customer stays, and a retried
delivery finds it by its contact point.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import service as auth
from app.auth.principal import Principal
from app.core.db import unit_of_work
from app.core.errors import InvalidField
from app.core.hub import EventHub
from app.core.settings import Settings
from app.customers import service as customers
from app.customers.contact_points import InvalidContactPoint, normalize
from app.customers.models import ContactKind
from app.customers.schemas import CustomerCreate
from app.interactions.schemas import InteractionCreate
from app.skills.schemas import SkillLevel

# The caller first (`auth_caller`, app/auth/caller.sql, $1-$4: `auth.caller_arguments`; without
# a secret no row), then what intake needs, and what routing needs to place the arrival at once
# (intake's `Router`): the customer's tier, their last agent when the queue is sticky, and the
# queues' version (app/queues/settings_version.sql).
# A queue by id wins over a queue whose name happens to be that id, as in the ORM version.
LOOK_UP = """
    WITH caller AS (
        SELECT * FROM auth_caller($1, $2, $3, $4)
    ), queue AS (
        SELECT coalesce(
            (SELECT id FROM queues WHERE id = $7),
            (SELECT id FROM queues WHERE lower(name) = $8)
        ) AS id
    ), customer AS (
        SELECT coalesce(
            (SELECT id FROM customers WHERE id = $10),
            (SELECT customer_id FROM contact_points WHERE kind = $11 AND value = $12)
        ) AS id
    )
    SELECT
        (SELECT id FROM interactions WHERE channel = $5 AND external_ref = $6) AS existing_id,
        queue.id AS queue_id,
        (
            SELECT coalesce(jsonb_object_agg(s.name, qs.min_proficiency), '{}'::jsonb)
            FROM queue_skills qs JOIN skills s ON s.id = qs.skill_id
            WHERE qs.queue_id = queue.id
        ) AS queue_needs,
        (
            SELECT coalesce(jsonb_object_agg(lower(name), name), '{}'::jsonb)
            FROM skills WHERE lower(name) = ANY($9::text[])
        ) AS skills,
        customer.id AS customer_id, c.tier::text AS tier,
        last.agent_id AS last_agent_id, last.assigned_at AS last_agent_at,
        (SELECT version FROM queues_settings_version) AS queues_version,
        caller.kind AS caller_kind, caller.id AS caller_id, caller.name AS caller_name,
        caller.role AS caller_role
    FROM queue CROSS JOIN customer
    LEFT JOIN customers c ON c.id = customer.id
    LEFT JOIN LATERAL (
        SELECT h.agent_id, h.assigned_at FROM interactions h
        WHERE h.customer_id = customer.id AND h.agent_id IS NOT NULL
          AND h.assigned_at IS NOT NULL
          AND EXISTS (SELECT FROM queues s WHERE s.id = queue.id AND s.sticky_seconds > 0)
        ORDER BY h.assigned_at DESC
        LIMIT 1
    ) last ON true
    LEFT JOIN caller ON true
"""


# For a caller known already: a digest no secret has, so `caller` is empty and nothing written.
NO_CALLER = ("", False, datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))


CONTACT_OWNER = "SELECT customer_id FROM contact_points WHERE kind = $1 AND value = $2"


@dataclass(frozen=True, slots=True)
class Contact:
    """The caller's contact point as given, and normalised (None when it is not valid)."""

    kind: ContactKind
    raw: str
    value: str | None
    problem: str


@dataclass(frozen=True, slots=True)
class Found:
    existing_id: uuid.UUID | None
    queue_id: uuid.UUID | None
    queue_needs: dict[str, int]
    skills: dict[str, str]
    customer_id: uuid.UUID | None
    tier: str | None
    last_agent_id: uuid.UUID | None
    last_agent_at: datetime | None
    queues_version: str | None
    caller: Principal | None


def contact_of(data: InteractionCreate, region: str) -> Contact | None:
    if data.customer_id is not None or data.contact is None:
        return None
    kind, raw = data.contact.kind, data.contact.value
    try:
        return Contact(kind, raw, normalize(kind, raw, region), "")
    except InvalidContactPoint as error:
        return Contact(kind, raw, None, str(error))


async def look_up(
    connection: asyncpg.Connection,
    data: InteractionCreate,
    contact: Contact | None,
    caller: tuple[str, bool, datetime, datetime],
) -> Found:
    row = await connection.fetchrow(
        LOOK_UP,
        *caller,
        data.channel.value,
        data.external_ref,
        _as_uuid(data.queue),
        data.queue.lower(),
        [level.skill.lower() for level in data.skills],
        data.customer_id,
        None if contact is None else contact.kind.value,
        None if contact is None else contact.value,
    )
    assert row is not None
    return Found(
        existing_id=row["existing_id"],
        queue_id=row["queue_id"],
        queue_needs=row["queue_needs"],
        skills=row["skills"],
        customer_id=row["customer_id"],
        tier=row["tier"],
        last_agent_id=row["last_agent_id"],
        last_agent_at=row["last_agent_at"],
        queues_version=row["queues_version"],
        caller=auth.caller_from(
            row["caller_kind"], row["caller_id"], row["caller_name"], row["caller_role"]
        ),
    )


def _as_uuid(reference: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(reference)
    except ValueError:
        return None


def ensure_valid_contact(data: InteractionCreate, contact: Contact | None) -> None:
    """No customer matched: a wrong id is the client's error, and so is a malformed contact."""
    if data.customer_id is not None:
        raise customers.CustomerNotFound(f"no customer with id {data.customer_id}")
    if contact is not None and contact.value is None:
        raise InvalidField("contact.value", contact.problem)


def requested(levels: Sequence[SkillLevel], known: dict[str, str]) -> list[tuple[str, int]]:
    """The requested levels by stored skill name; the checks of skills.resolve_levels."""
    seen: set[str] = set()
    resolved: list[tuple[str, int]] = []
    for index, level in enumerate(levels):
        field = f"skills[{index}].skill"
        if level.skill in seen:
            raise InvalidField(field, f"skill {level.skill!r} is listed twice")
        seen.add(level.skill)
        name = known.get(level.skill.lower())
        if name is None:
            raise InvalidField(field, f"unknown skill {level.skill!r}; create it at /v1/skills")
        resolved.append((name, level.level))
    return resolved


def needs_of(queue_needs: dict[str, int], requested: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The queue's skills, raised where the interaction asks for more."""
    needs = dict(queue_needs)
    for name, level in requested:
        needs[name] = max(level, needs.get(name, 0))
    return [{"skill": name, "level": level} for name, level in sorted(needs.items())]


async def new_customer(
    connection: asyncpg.Connection,
    sessions: async_sessionmaker[AsyncSession],
    data: InteractionCreate,
    contact: Contact,
    settings: Settings,
    actor: str,
    hub: EventHub,
) -> uuid.UUID:
    """A customer for an unknown caller, or the one a concurrent first contact just made."""
    kind = contact.kind.value
    new = CustomerCreate(
        name=data.customer_name or f"Unknown {kind} {contact.raw}",
        phones=[contact.raw] if kind == "phone" else [],
        emails=[contact.raw] if kind == "email" else [],
        chat_ids=[contact.raw] if kind == "chat" else [],
    )
    try:
        async with unit_of_work(sessions, hub=hub) as session:
            customer = await customers.create_customer(session, new, settings=settings, actor=actor)
    except InvalidField as error:
        raise InvalidField("contact.value", error.detail.split(": ", 1)[-1]) from error
    except customers.ContactPointTaken:
        owner: uuid.UUID | None = await connection.fetchval(CONTACT_OWNER, kind, contact.value)
        if owner is None:
            raise
        return owner
    return customer.id

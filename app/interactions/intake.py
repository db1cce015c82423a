"""Intake on the hot path: plain SQL on the asyncpg pool (app.core.pg), not the ORM.

Every interaction enters here, so the usual delivery (a known customer, by id or contact point)
costs two statements: one checks the request's caller (its token or key) and reads the earlier
delivery of the same reference, the queue, its skills, the requested skills and the customer; one
inserts the interaction and its event together. Each
runs on its own (no BEGIN/COMMIT): the second is a single statement, so the row and its event
still commit as one. It returns the event's id too: the caller hands the event to its replica's
hub (`EventHub.publish`) as soon as the statement returns, as the hot pool's commits send no
NOTIFY. Validation runs in Python between the two, in the order and with the messages
of the ORM version it replaced, so a client sees the same answers.

A first contact from an unknown caller is rare: its customer is made by the customers service
in a unit of work of its own, committed just before the interaction's insert, and only after
everything else in the request was found valid (so a refused request still writes nothing).
Should the insert still fail (its queue deleted in between), that customer stays, and a retried
delivery finds it by its contact point.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import service as auth
from app.auth.dependencies import known_principal
from app.auth.principal import Principal
from app.core import pg
from app.core.db import unit_of_work
from app.core.errors import InvalidField
from app.core.hub import EventRecord
from app.core.settings import Settings
from app.customers import service as customers
from app.customers.contact_points import InvalidContactPoint, normalize
from app.customers.models import ContactKind
from app.customers.schemas import CustomerCreate
from app.interactions.schemas import InteractionCreate, InteractionOut
from app.skills.schemas import SkillLevel

# The caller first (auth's `CALLER`, $1-$4; without a secret no row), then what intake needs.
# A queue by id wins over a queue whose name happens to be that id, as in the ORM version.
LOOK_UP = f"""
    WITH {auth.CALLER}, queue AS (
        SELECT coalesce(
            (SELECT id FROM queues WHERE id = $7),
            (SELECT id FROM queues WHERE lower(name) = $8)
        ) AS id
    )
    SELECT
        (SELECT id FROM interactions WHERE channel = $5 AND external_ref = $6) AS existing_id,
        queue.id AS queue_id,
        (
            SELECT coalesce(jsonb_object_agg(s.name, qs.min_proficiency), '{{}}'::jsonb)
            FROM queue_skills qs JOIN skills s ON s.id = qs.skill_id
            WHERE qs.queue_id = queue.id
        ) AS queue_needs,
        (
            SELECT coalesce(jsonb_object_agg(lower(name), name), '{{}}'::jsonb)
            FROM skills WHERE lower(name) = ANY($9::text[])
        ) AS skills,
        coalesce(
            (SELECT id FROM customers WHERE id = $10),
            (SELECT customer_id FROM contact_points WHERE kind = $11 AND value = $12)
        ) AS customer_id,
        caller.kind AS caller_kind, caller.id AS caller_id, caller.name AS caller_name,
        caller.role AS caller_role
    FROM queue LEFT JOIN caller ON true
"""  # noqa: S608 - constants only, no outside text

# DO NOTHING on a repeated reference: a concurrent delivery of it won, and no event is written.
# JSON goes in as text, which reads the same whatever jsonb codec the connection has.
INSERT = """
    WITH new AS (
        INSERT INTO interactions (
            id, channel, external_ref, queue_id, customer_id, priority, needs, subject, summary,
            state, waiting_since, created_at, updated_at
        )
        VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, 'queued', $10, $10, $10)
        ON CONFLICT ON CONSTRAINT uq_interactions_channel_external_ref DO NOTHING
        RETURNING *
    ), queued AS (
        INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
        SELECT $10, 'interaction.queued', 'interaction', new.id::text, $11, $12::text::jsonb
        FROM new
        RETURNING id
    )
    SELECT new.*, queued.id AS queued_event_id FROM new CROSS JOIN queued
"""

# For a caller known already: a digest no secret has, so `caller` is empty and nothing written.
NO_CALLER = ("", False, datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))

BY_REFERENCE = "SELECT * FROM interactions WHERE channel = $1 AND external_ref = $2"
BY_ID = "SELECT * FROM interactions WHERE id = $1"
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
    caller: Principal | None


async def queue_interaction(
    connection: asyncpg.Connection,
    data: InteractionCreate,
    *,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    actor: str | None = None,
    secret: str | None = None,
) -> tuple[InteractionOut, EventRecord | None]:
    """Queue a new interaction; returns it and, when it is new, its committed
    `interaction.queued` event, for the caller to publish. A known reference is not new (None).

    Who asks: `actor`, a caller known already (a channel adapter), or `secret`, a request's
    token or gateway key, checked in the look-up's round trip; an unknown one is refused (401)
    before anything else is answered."""
    contact = _contact(data, settings.default_phone_region)
    arguments = NO_CALLER if secret is None else auth.caller_arguments(secret, settings)
    found = await _look_up(connection, data, contact, arguments)
    if secret is not None:
        actor = known_principal(found.caller).actor
    assert actor is not None, "queue_interaction needs an actor or a secret"
    if found.existing_id is not None:
        return await _read(connection, BY_ID, found.existing_id), None
    if found.queue_id is None:
        raise InvalidField("queue", f"no queue named or numbered {data.queue!r}")
    if found.customer_id is None:
        _ensure_valid_contact(data, contact)
    needs = _needs(found.queue_needs, _requested(data.skills, found.skills))
    customer_id = found.customer_id
    if customer_id is None:
        assert contact is not None
        customer_id = await _new_customer(connection, sessions, data, contact, settings, actor)
    inserted = await _insert(connection, data, found.queue_id, customer_id, needs, actor)
    if inserted is None:
        assert data.external_ref is not None
        return await _read(connection, BY_REFERENCE, data.channel.value, data.external_ref), None
    return inserted


def _contact(data: InteractionCreate, region: str) -> Contact | None:
    if data.customer_id is not None or data.contact is None:
        return None
    kind, raw = data.contact.kind, data.contact.value
    try:
        return Contact(kind, raw, normalize(kind, raw, region), "")
    except InvalidContactPoint as error:
        return Contact(kind, raw, None, str(error))


async def _look_up(
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
        caller=auth.caller_from(
            row["caller_kind"], row["caller_id"], row["caller_name"], row["caller_role"]
        ),
    )


def _as_uuid(reference: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(reference)
    except ValueError:
        return None


def _ensure_valid_contact(data: InteractionCreate, contact: Contact | None) -> None:
    """No customer matched: a wrong id is the client's error, and so is a malformed contact."""
    if data.customer_id is not None:
        raise customers.CustomerNotFound(f"no customer with id {data.customer_id}")
    if contact is not None and contact.value is None:
        raise InvalidField("contact.value", contact.problem)


def _requested(levels: Sequence[SkillLevel], known: dict[str, str]) -> list[tuple[str, int]]:
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


def _needs(queue_needs: dict[str, int], requested: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The queue's skills, raised where the interaction asks for more."""
    needs = dict(queue_needs)
    for name, level in requested:
        needs[name] = max(level, needs.get(name, 0))
    return [{"skill": name, "level": level} for name, level in sorted(needs.items())]


async def _new_customer(
    connection: asyncpg.Connection,
    sessions: async_sessionmaker[AsyncSession],
    data: InteractionCreate,
    contact: Contact,
    settings: Settings,
    actor: str,
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
        async with unit_of_work(sessions) as session:
            customer = await customers.create_customer(session, new, settings=settings, actor=actor)
    except InvalidField as error:
        raise InvalidField("contact.value", error.detail.split(": ", 1)[-1]) from error
    except customers.ContactPointTaken:
        owner: uuid.UUID | None = await connection.fetchval(CONTACT_OWNER, kind, contact.value)
        if owner is None:
            raise
        return owner
    return customer.id


async def _insert(
    connection: asyncpg.Connection,
    data: InteractionCreate,
    queue_id: uuid.UUID,
    customer_id: uuid.UUID,
    needs: list[dict[str, Any]],
    actor: str,
) -> tuple[InteractionOut, EventRecord] | None:
    """The new interaction and its event as the hub would read it; None for a known reference."""
    payload = {
        "channel": data.channel.value,
        "queue_id": str(queue_id),
        "customer_id": str(customer_id),
        "priority": data.priority,
        "external_ref": data.external_ref,
    }
    moment = pg.now()
    row: asyncpg.Record | None = await connection.fetchrow(
        INSERT,
        uuid.uuid4(),
        data.channel.value,
        data.external_ref,
        queue_id,
        customer_id,
        data.priority,
        json.dumps(needs),
        data.subject,
        data.summary,
        moment,
        actor,
        json.dumps(payload),
    )
    if row is None:
        return None
    interaction = dict(row)
    event = EventRecord(
        id=interaction.pop("queued_event_id"),
        occurred_at=moment,
        kind="interaction.queued",
        subject_type="interaction",
        subject_id=str(interaction["id"]),
        actor=actor,
        payload=payload,
    )
    return InteractionOut.model_validate(interaction), event


async def _read(connection: asyncpg.Connection, query: str, *args: object) -> InteractionOut:
    row = await connection.fetchrow(query, *args)
    assert row is not None, "an interaction seen by its reference is never deleted"
    return InteractionOut.model_validate(dict(row))

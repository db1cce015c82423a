"""Intake on the hot path: plain SQL on the asyncpg pool (app.core.pg), not the ORM.

Every interaction enters here, so the usual delivery (a known customer, by id or contact point)
costs two statements: one checks the request's caller (its token or key) and reads the earlier
delivery of the same reference, the queue, its skills, the requested skills and the customer; one
inserts the interaction and its event together, and, through a `Placer` (app.routing.arrivals),
may offer it to an agent in that same statement. Each runs on its own (no BEGIN/COMMIT): the
second is a single statement, so the row and its events still commit as one. It returns the
events' ids too: the caller hands the events to its replica's hub (`EventHub.publish`) as soon
as the statement returns, as the hot pool's commits send no NOTIFY. Validation runs in Python
between the two, in the order and with the messages of the ORM version it replaced, so a
client sees the same answers.

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
from typing import Any, Protocol

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
from app.queues.service import SETTINGS_VERSION
from app.skills.schemas import SkillLevel

# The caller first (auth's `CALLER`, $1-$4; without a secret no row), then what intake needs,
# and what routing needs to place the arrival at once (`Placer`): the customer's tier, their
# last agent when the queue is sticky, and the queues' version.
# A queue by id wins over a queue whose name happens to be that id, as in the ORM version.
LOOK_UP = f"""
    WITH {auth.CALLER}, queue AS (
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
            SELECT coalesce(jsonb_object_agg(s.name, qs.min_proficiency), '{{}}'::jsonb)
            FROM queue_skills qs JOIN skills s ON s.id = qs.skill_id
            WHERE qs.queue_id = queue.id
        ) AS queue_needs,
        (
            SELECT coalesce(jsonb_object_agg(lower(name), name), '{{}}'::jsonb)
            FROM skills WHERE lower(name) = ANY($9::text[])
        ) AS skills,
        customer.id AS customer_id, c.tier::text AS tier,
        last.agent_id AS last_agent_id, last.assigned_at AS last_agent_at,
        {SETTINGS_VERSION} AS queues_version,
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
"""  # noqa: S608 - constants only, no outside text

# The new row, $1-$12 of `NewInteraction.arguments`, in the state `{state}` (an SQL expression;
# a `Placer` may offer it in the same statement). DO NOTHING on a repeated reference: a
# concurrent delivery of it won, and no event is written. JSON goes in as text, which reads
# the same whatever jsonb codec the connection has.
NEW_ROW = """
    new AS (
        INSERT INTO interactions (
            id, channel, external_ref, queue_id, customer_id, priority, needs, subject, summary,
            state, waiting_since, offered_at, created_at, updated_at
        )
        VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, {state}, $10,
                CASE WHEN {state} = 'offered' THEN $10::timestamptz END, $10, $10)
        ON CONFLICT ON CONSTRAINT uq_interactions_channel_external_ref DO NOTHING
        RETURNING *
    )
"""
INSERT = f"""
    WITH {NEW_ROW.format(state="'queued'")}, queued AS (
        INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
        SELECT $10, 'interaction.queued', 'interaction', new.id::text, $11, $12::text::jsonb
        FROM new
        RETURNING id
    )
    SELECT new.*, queued.id AS queued_event_id FROM new CROSS JOIN queued
"""  # noqa: S608 - constants only, no outside text

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
    tier: str | None
    last_agent_id: uuid.UUID | None
    last_agent_at: datetime | None
    queues_version: str | None
    caller: Principal | None


@dataclass(frozen=True, slots=True)
class NewInteraction:
    """A valid arrival about to be written: its row, its event's payload, and what routing
    needs to weigh it (`tier` None: a customer made by this request, not read by the look-up)."""

    id: uuid.UUID
    data: InteractionCreate
    queue_id: uuid.UUID
    customer_id: uuid.UUID
    needs: list[dict[str, Any]]
    moment: datetime
    actor: str
    tier: str | None
    last_agent_id: uuid.UUID | None
    last_agent_at: datetime | None
    queues_version: str | None

    def payload(self) -> dict[str, Any]:
        """The `interaction.queued` event's payload."""
        return {
            "channel": self.data.channel.value,
            "queue_id": str(self.queue_id),
            "customer_id": str(self.customer_id),
            "priority": self.data.priority,
            "external_ref": self.data.external_ref,
        }

    def arguments(self) -> tuple[object, ...]:
        """$1-$12 of `NEW_ROW` and `INSERT`."""
        return (
            self.id,
            self.data.channel.value,
            self.data.external_ref,
            self.queue_id,
            self.customer_id,
            self.data.priority,
            json.dumps(self.needs),
            self.data.subject,
            self.data.summary,
            self.moment,
            self.actor,
            json.dumps(self.payload()),
        )

    def queued_event(self, event_id: int) -> EventRecord:
        return EventRecord(
            id=event_id,
            occurred_at=self.moment,
            kind="interaction.queued",
            subject_type="interaction",
            subject_id=str(self.id),
            actor=self.actor,
            payload=self.payload(),
        )


@dataclass(frozen=True, slots=True)
class Inserted:
    """A new interaction as written, with its committed events in log order (for the caller to
    publish) and, when a `Placer` offered it at once, the agent it was offered to."""

    interaction: InteractionOut
    events: list[EventRecord]
    offered_to: uuid.UUID | None = None


class Placer(Protocol):
    """Writes a new interaction, offering it to an agent in the same statement when it can
    (app.routing.arrivals); `insert` below is the plain way. None for a known reference."""

    async def insert(
        self, connection: asyncpg.Connection, new: NewInteraction
    ) -> Inserted | None: ...


async def queue_interaction(
    connection: asyncpg.Connection,
    data: InteractionCreate,
    *,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    actor: str | None = None,
    secret: str | None = None,
    placer: Placer | None = None,
) -> tuple[InteractionOut, Inserted | None]:
    """Queue a new interaction; returns it and, when it is new, how it was written (its
    committed events, for the caller to publish). A known reference is not new (None).

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
    known = customer_id == found.customer_id
    new = NewInteraction(
        id=uuid.uuid4(),
        data=data,
        queue_id=found.queue_id,
        customer_id=customer_id,
        needs=needs,
        moment=pg.now(),
        actor=actor,
        tier=found.tier if known else None,
        last_agent_id=found.last_agent_id if known else None,
        last_agent_at=found.last_agent_at if known else None,
        queues_version=found.queues_version,
    )
    inserted = await (insert(connection, new) if placer is None else placer.insert(connection, new))
    if inserted is None:
        assert data.external_ref is not None
        return await _read(connection, BY_REFERENCE, data.channel.value, data.external_ref), None
    return inserted.interaction, inserted


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


async def insert(connection: asyncpg.Connection, new: NewInteraction) -> Inserted | None:
    """The new interaction, queued, and its event as the hub would read it."""
    row: asyncpg.Record | None = await connection.fetchrow(INSERT, *new.arguments())
    if row is None:
        return None
    interaction = dict(row)
    event = new.queued_event(interaction.pop("queued_event_id"))
    return Inserted(InteractionOut.model_validate(interaction), [event])


async def _read(connection: asyncpg.Connection, query: str, *args: object) -> InteractionOut:
    row = await connection.fetchrow(query, *args)
    assert row is not None, "an interaction seen by its reference is never deleted"
    return InteractionOut.model_validate(dict(row))

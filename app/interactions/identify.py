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
delivery finds it by its contact point. The tier it was given comes back with it, so routing
weighs a first contact as it weighs anyone (it has no last agent yet).

A reference delivered before is answered with what it became, unless this delivery asks for
something else (`ensure_as_delivered`): compared only then, so a first delivery pays nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import service as auth
from app.auth.principal import Principal
from app.core.db import unit_of_work
from app.core.errors import Conflict, InvalidField
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
# (intake's `Router`): the customer's tier, their last agent when the queue is sticky, the
# agent of the thread a follow-up continues ($13) when the queue sends follow-ups back, the
# owner of their open complaint when the queue prefers it (`owner`, below), and the queues'
# version (app/queues/settings_version.sql).
# `owner`: of the customer's open complaints with an owner, the one whose running deadline is
# soonest (then one with none running, newest first), for a queue with `complaint_owner_first`
# only (for others the queue's check is a one-time filter: no complaint is read). It is the
# order of app/tickets/open_complaints.py's `OWNERS`, which a pass reads: this layer cannot
# import it, and tests route by both (tests/desk/test_open_complaints.py).
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
        thread.agent_id AS thread_agent_id, thread.ended_at AS thread_ended_at,
        owner.owner_agent_id AS complaint_owner_id, owner.reference AS complaint_reference,
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
    LEFT JOIN LATERAL (
        SELECT t.agent_id, t.ended_at FROM interactions t
        WHERE t.id = $13 AND t.customer_id = customer.id AND t.agent_id IS NOT NULL
          AND EXISTS (SELECT FROM queues s WHERE s.id = queue.id AND s.follow_up_days > 0)
    ) thread ON true
    LEFT JOIN LATERAL (
        SELECT k.owner_agent_id, k.reference FROM complaints k
        WHERE k.customer_id = customer.id AND k.step NOT IN ('closed', 'rejected')
          AND k.owner_agent_id IS NOT NULL
          AND EXISTS (SELECT FROM queues s WHERE s.id = queue.id AND s.complaint_owner_first)
        ORDER BY (
            SELECT min(d.due_at) FROM complaint_deadlines d
            WHERE d.complaint_id = k.id AND d.ended_at IS NULL AND d.paused_since IS NULL
        ) NULLS LAST, k.raised_at DESC, k.id
        LIMIT 1
    ) owner ON true
    LEFT JOIN caller ON true
"""


# For a caller known already: a digest no secret has, so `caller` is empty and nothing written.
NO_CALLER = ("", False, datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))


# The customer a concurrent first contact made with this contact point, and its tier.
CONTACT_OWNER = """
    SELECT p.customer_id, c.tier::text AS tier
    FROM contact_points p JOIN customers c ON c.id = p.customer_id
    WHERE p.kind = $1 AND p.value = $2
"""


class ExternalRefConflict(Conflict):
    """A channel reference delivered before, delivered again asking for something else: a
    retry must be the same request, as with an idempotency key."""

    code = "external_ref_conflict"


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
    thread_agent_id: uuid.UUID | None
    thread_ended_at: datetime | None
    complaint_owner_id: uuid.UUID | None
    complaint_reference: str | None
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
    continues: uuid.UUID | None = None,
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
        continues,
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
        thread_agent_id=row["thread_agent_id"],
        thread_ended_at=row["thread_ended_at"],
        complaint_owner_id=row["complaint_owner_id"],
        complaint_reference=row["complaint_reference"],
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
) -> tuple[uuid.UUID, str]:
    """A customer for an unknown caller, or the one a concurrent first contact just made, with
    the tier it was given (routing weighs the arrival with it)."""
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
        owner = await connection.fetchrow(CONTACT_OWNER, kind, contact.value)
        if owner is None:
            raise
        return owner["customer_id"], owner["tier"]
    return customer.id, customer.tier.value


def ensure_as_delivered(
    data: InteractionCreate,
    earlier: Mapping[str, Any],
    *,
    queue_id: uuid.UUID | None,
    customer_id: uuid.UUID | None,
    needs: list[dict[str, Any]] | None,
) -> None:
    """Refuse (409, naming each difference) a delivery of a reference delivered before that
    asks for something other than what the interaction `earlier` (its row, with `queue_name`)
    was written with; a retry of the same request passes. `queue_id`, `customer_id`: what this
    delivery's queue and customer resolve to (None: none found); `needs`: its queue's skills
    and the requested ones (None: not compared, as another queue's would differ anyway).
    `customer_name` only names a new customer, and is not compared."""
    differing = _differences(data, earlier, queue_id, customer_id, needs)
    if differing:
        said = "; ".join(f"{field} {difference}" for field, difference in differing)
        raise ExternalRefConflict(
            f"external_ref {data.external_ref} was delivered before with {said}",
            fields=[
                {"field": field, "problem": f"delivered before with {field} {difference}"}
                for field, difference in differing
            ],
        )


def _differences(
    data: InteractionCreate,
    earlier: Mapping[str, Any],
    queue_id: uuid.UUID | None,
    customer_id: uuid.UUID | None,
    needs: list[dict[str, Any]] | None,
) -> list[tuple[str, str]]:
    """(field, "<as delivered before>, not <as now>") for each stored field that differs."""
    differing: list[tuple[str, str]] = []
    if queue_id != earlier["queue_id"]:
        differing.append(("queue", f"{earlier['queue_name']}, not {data.queue}"))
    if customer_id != earlier["customer_id"]:
        differing.append(_customer_difference(data, earlier["customer_id"], customer_id))
    if data.priority != earlier["priority"]:
        differing.append(("priority", f"{earlier['priority']}, not {data.priority}"))
    if needs is not None and needs != earlier["needs"]:
        differing.append(("skills", f"{_levels(earlier['needs'])}, not {_levels(needs)}"))
    if data.subject != earlier["subject"]:
        differing.append(("subject", f"{_text(earlier['subject'])}, not {_text(data.subject)}"))
    if data.summary != earlier["summary"]:  # long: said to differ, not quoted
        differing.append(("summary", "one summary, not another"))
    return differing


def _customer_difference(
    data: InteractionCreate, before: uuid.UUID, now: uuid.UUID | None
) -> tuple[str, str]:
    if data.customer_id is not None:
        return "customer_id", f"{before}, not {data.customer_id}"
    assert data.contact is not None
    whose = "no customer yet" if now is None else f"customer {now}"
    contact = f"{data.contact.kind.value} {data.contact.value} ({whose})"
    return "contact", f"customer {before}, not {contact}"


def _levels(needs: list[dict[str, Any]]) -> str:
    """Skill needs as `billing:2 vip:3` (`none` for none)."""
    return " ".join(f"{need['skill']}:{need['level']}" for need in needs) or "none"


def _text(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")

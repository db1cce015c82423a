"""Customers and their contact points. Services flush but never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.core.errors import Conflict, InvalidField, NotFound
from app.core.events import events_of
from app.core.settings import Settings, TierCutoffs
from app.customers.contact_points import InvalidContactPoint, normalize
from app.customers.models import ContactKind, ContactPoint, Customer, Tier, TierSource
from app.customers.schemas import ContactPointIn, CustomerCreate, CustomerUpdate
from app.customers.tiers import tier_for_rank


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class ContactPointTaken(Conflict):
    code = "contact_point_taken"


@dataclass(frozen=True, slots=True)
class NormalizedContact:
    kind: ContactKind
    value: str
    field: str


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    text: str | None = None
    phone: str | None = None
    email: str | None = None
    chat_id: str | None = None
    account: str | None = None
    tier: Tier | None = None
    lifecycle_stage: str | None = None


def _normalize_all(data: CustomerCreate, region: str) -> list[NormalizedContact]:
    raw = [
        *((ContactKind.phone, value, f"phones[{i}]") for i, value in enumerate(data.phones)),
        *((ContactKind.email, value, f"emails[{i}]") for i, value in enumerate(data.emails)),
        *((ContactKind.chat, value, f"chat_ids[{i}]") for i, value in enumerate(data.chat_ids)),
        *(
            (ContactKind.account, value, f"account_numbers[{i}]")
            for i, value in enumerate(data.account_numbers)
        ),
    ]
    contacts: dict[tuple[ContactKind, str], NormalizedContact] = {}
    for kind, value, field in raw:
        contact = _normalize_one(kind, value, field, region)
        contacts.setdefault((kind, contact.value), contact)
    return list(contacts.values())


def _normalize_one(kind: ContactKind, raw: str, field: str, region: str) -> NormalizedContact:
    try:
        return NormalizedContact(kind=kind, value=normalize(kind, raw, region), field=field)
    except InvalidContactPoint as error:
        raise InvalidField(field, str(error)) from error


async def _ensure_free(
    session: AsyncSession, contacts: Sequence[NormalizedContact], owner: uuid.UUID | None
) -> None:
    for contact in contacts:
        holder = await _contact_owner(session, contact.kind, contact.value)
        if holder is not None and holder != owner:
            raise ContactPointTaken(
                f"{contact.field}: {contact.value} already belongs to customer {holder}",
                fields=[{"field": contact.field, "problem": "already belongs to another customer"}],
            )


async def _contact_owner(session: AsyncSession, kind: ContactKind, value: str) -> uuid.UUID | None:
    query = select(ContactPoint.customer_id).where(
        ContactPoint.kind == kind, ContactPoint.value == value
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _flush_guarding_contacts(session: AsyncSession) -> None:
    """A concurrent writer may take the same contact point between our check and our insert."""
    try:
        await session.flush()
    except IntegrityError as error:
        if "uq_contact_points_kind_value" in str(error.orig):
            raise ContactPointTaken("a contact point was just taken by another customer") from error
        raise


async def computed_tier(
    session: AsyncSession,
    value: float,
    cutoffs: TierCutoffs,
    *,
    excluding: uuid.UUID | None = None,
) -> Tier:
    """The tier a value earns among today's customers (hypothetical percent_rank).

    An existing customer is ranked among the *others* (`excluding` itself), as `recompute_tiers`
    ranks it; counting its own row too would add one to the divisor and can cost it a tier.
    """
    rank_query = select(func.percent_rank(literal(value)).within_group(Customer.value.asc()))
    if excluding is not None:
        rank_query = rank_query.where(Customer.id != excluding)
    rank = (await session.execute(rank_query)).scalar_one()
    return tier_for_rank(float(rank or 0.0), cutoffs)


async def create_customer(
    session: AsyncSession, data: CustomerCreate, *, settings: Settings, actor: str
) -> Customer:
    contacts = _normalize_all(data, settings.default_phone_region)
    await _ensure_free(session, contacts, owner=None)
    if data.tier is None:
        tier = await computed_tier(session, float(data.value), settings.tier_cutoffs)
        source = TierSource.computed
    else:
        tier, source = data.tier, TierSource.manual
    customer = Customer(
        id=uuid.uuid4(),
        name=data.name,
        tier=tier,
        tier_source=source,
        lifecycle_stage=data.lifecycle_stage,
        value=data.value,
        language=data.language,
        notes=data.notes,
        contact_points=[ContactPoint(kind=c.kind, value=c.value) for c in contacts],
    )
    session.add(customer)
    await _flush_guarding_contacts(session)
    events_of(session).add(
        "customer.created",
        subject_type="customer",
        subject_id=customer.id,
        actor=actor,
        payload={"name": customer.name, "tier": tier.value, "contacts": len(contacts)},
    )
    return customer


def _with_contacts() -> Select[Customer]:
    return select(Customer).options(selectinload(Customer.contact_points))


async def get_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    query = (
        _with_contacts().where(Customer.id == customer_id).execution_options(populate_existing=True)
    )
    customer = (await session.execute(query)).scalar_one_or_none()
    if customer is None:
        raise CustomerNotFound(f"no customer with id {customer_id}")
    return customer


async def find_by_contact(
    session: AsyncSession, kind: ContactKind, raw: str, *, region: str
) -> Customer | None:
    """The customer a phone number, email address or chat identity belongs to, if any."""
    try:
        value = normalize(kind, raw, region)
    except InvalidContactPoint:
        return None
    owner = await _contact_owner(session, kind, value)
    return None if owner is None else await get_customer(session, owner)


class Known(NamedTuple):
    """What a channel needs of a customer it recognises: who, their tier and their language."""

    id: uuid.UUID
    tier: Tier
    language: str | None


async def known_by_contact(
    session: AsyncSession, kind: ContactKind, raw: str, *, region: str
) -> Known | None:
    """`find_by_contact`'s customer in one query, and only what a channel needs of them (a
    caller's tier and language: read at every call's start)."""
    try:
        value = normalize(kind, raw, region)
    except InvalidContactPoint:
        return None
    query = (
        select(Customer.id, Customer.tier, Customer.language)
        .join(ContactPoint, ContactPoint.customer_id == Customer.id)
        .where(ContactPoint.kind == kind, ContactPoint.value == value)
    )
    row = (await session.execute(query)).first()
    return None if row is None else Known(row.id, row.tier, row.language)


def _filtered(query: Select[Any], where: CustomerFilter, region: str) -> Select[Any]:
    if where.text:
        escaped = where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Customer.name.ilike(f"%{escaped}%"))
    for kind, raw, field in (
        (ContactKind.phone, where.phone, "phone"),
        (ContactKind.email, where.email, "email"),
        (ContactKind.chat, where.chat_id, "chat_id"),
        (ContactKind.account, where.account, "account"),
    ):
        if raw:
            value = _normalize_one(kind, raw, field, region).value
            owners = select(ContactPoint.customer_id).where(
                ContactPoint.kind == kind, ContactPoint.value == value
            )
            query = query.where(Customer.id.in_(owners))
    if where.tier is not None:
        query = query.where(Customer.tier == where.tier)
    if where.lifecycle_stage is not None:
        query = query.where(Customer.lifecycle_stage == where.lifecycle_stage)
    return query


async def search_customers(
    session: AsyncSession, where: CustomerFilter, *, region: str, limit: int, offset: int
) -> tuple[list[Customer], int]:
    count_query = _filtered(select(func.count()).select_from(Customer), where, region)
    total = (await session.execute(count_query)).scalar_one()
    page = _filtered(_with_contacts(), where, region).order_by(Customer.name, Customer.id)
    rows = await session.execute(page.limit(limit).offset(offset))
    return list(rows.scalars()), total


async def update_customer(
    session: AsyncSession,
    customer: Customer,
    data: CustomerUpdate,
    *,
    settings: Settings,
    actor: str,
) -> Customer:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "tier" in changes and changes.get("tier_source") is TierSource.computed:
        raise InvalidField("tier_source", "send either a tier (manual) or tier_source=computed")
    if "tier" in changes:
        changes["tier_source"] = TierSource.manual
    elif _tier_follows_value(customer, changes):
        value = float(changes.get("value", customer.value))
        earned = await computed_tier(session, value, settings.tier_cutoffs, excluding=customer.id)
        if earned is not customer.tier:
            changes["tier"] = earned
    changes = {k: v for k, v in changes.items() if getattr(customer, k) != v}
    if not changes:
        return customer
    for field, value in changes.items():
        setattr(customer, field, value)
    await session.flush()
    events_of(session).add(
        "customer.updated",
        subject_type="customer",
        subject_id=customer.id,
        actor=actor,
        payload={k: str(v) for k, v in changes.items() if k != "notes"},
    )
    return await get_customer(session, customer.id)


def _tier_follows_value(customer: Customer, changes: dict[str, Any]) -> bool:
    """A computed tier moves with the value; a manual one stays until a person changes it."""
    source = changes.get("tier_source", customer.tier_source)
    return source is TierSource.computed and (
        "value" in changes or customer.tier_source is TierSource.manual
    )


async def add_contact_point(
    session: AsyncSession,
    customer: Customer,
    data: ContactPointIn,
    *,
    settings: Settings,
    actor: str,
) -> Customer:
    contact = _normalize_one(data.kind, data.value, "value", settings.default_phone_region)
    await _ensure_free(session, [contact], owner=customer.id)
    if await _contact_owner(session, contact.kind, contact.value) is None:
        session.add(ContactPoint(customer_id=customer.id, kind=contact.kind, value=contact.value))
        await _flush_guarding_contacts(session)
        events_of(session).add(
            "customer.contact_point_added",
            subject_type="customer",
            subject_id=customer.id,
            actor=actor,
            payload={"kind": contact.kind.value, "value": contact.value},
        )
    return await get_customer(session, customer.id)


async def remove_contact_point(
    session: AsyncSession, customer: Customer, contact_point_id: uuid.UUID, *, actor: str
) -> Customer:
    contact = await session.get(ContactPoint, contact_point_id)
    if contact is None or contact.customer_id != customer.id:
        raise NotFound(f"customer {customer.id} has no contact point {contact_point_id}")
    await session.delete(contact)
    await session.flush()
    events_of(session).add(
        "customer.contact_point_removed",
        subject_type="customer",
        subject_id=customer.id,
        actor=actor,
        payload={"kind": contact.kind.value, "value": contact.value},
    )
    return await get_customer(session, customer.id)


async def delete_customer(session: AsyncSession, customer: Customer, *, actor: str) -> None:
    await session.delete(customer)
    await session.flush()
    events_of(session).add(
        "customer.deleted", subject_type="customer", subject_id=customer.id, actor=actor
    )


async def recompute_tiers(
    session: AsyncSession, cutoffs: TierCutoffs, *, actor: str
) -> tuple[int, int]:
    """Give every customer whose tier is computed the tier its value's rank earns today.

    Returns (customers ranked, tiers changed). Manual tiers are ranked but never changed.
    """
    rank = func.percent_rank().over(order_by=Customer.value.asc()).label("rank")
    ranked = (
        await session.execute(select(Customer.id, Customer.tier, Customer.tier_source, rank))
    ).all()
    moves: dict[Tier, list[uuid.UUID]] = {tier: [] for tier in Tier}
    for customer_id, current, source, customer_rank in ranked:
        earned = tier_for_rank(float(customer_rank), cutoffs)
        if source is TierSource.computed and earned is not current:
            moves[earned].append(customer_id)
            events_of(session).add(
                "customer.tier_changed",
                subject_type="customer",
                subject_id=customer_id,
                actor=actor,
                payload={"from": current.value, "to": earned.value},
            )
    for tier, ids in moves.items():
        if ids:
            await session.execute(update(Customer).where(Customer.id.in_(ids)).values(tier=tier))
    return len(ranked), sum(len(ids) for ids in moves.values())

"""Customers over HTTP. Everyone who works here reads them (agents look callers up); an agent
changes only what serving a customer needs, and only for a customer it served: the customers
package sits below interactions, so main hands it the question (`ServedCustomers`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Protocol

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import AnyUser, Session, Staff
from app.auth.models import Role
from app.auth.principal import Principal
from app.core.errors import Forbidden, NotFound
from app.core.inputs import REFUSES_NUL
from app.core.pagination import Page, Pagination
from app.customers import service
from app.customers.models import ContactKind, LifecycleStage, Tier
from app.customers.schemas import (
    ContactPointIn,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    TierRecomputeOut,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])

# What an agent may change of a customer it serves: how to address them and what to remember
# (and, by their own endpoints, the contact points). Tier, value and lifecycle stage are the
# business's judgement of a customer, and routing weighs the tier: supervisors' and admins'.
AGENT_FIELDS = frozenset({"name", "language", "notes"})


class ServedCustomers(Protocol):
    """Whether the agent of a user holds or held an interaction of a customer (the
    interactions package answers: `interactions.service.has_served`; app.state has it)."""

    async def __call__(
        self, session: AsyncSession, user_id: uuid.UUID, customer_id: uuid.UUID
    ) -> bool: ...


async def may_change(
    principal: Principal,
    customer_id: uuid.UUID,
    session: AsyncSession,
    request: Request,
    fields: frozenset[str] = frozenset(),
) -> None:
    """Supervisors and admins change any customer; an agent only `AGENT_FIELDS` and contact
    points, of a customer it served. Checked before the customer is read: an agent learns no
    more from a 403 than that it may not."""
    if principal.has_role(Role.supervisor, Role.admin):
        return
    refused = sorted(fields - AGENT_FIELDS)
    if refused:
        raise Forbidden(
            f"only supervisors and admins change {', '.join(refused)}; an agent changes"
            f" {', '.join(sorted(AGENT_FIELDS))} and contact points"
        )
    served: ServedCustomers = request.app.state.served_customers
    if not await served(session, principal.id, customer_id):
        raise Forbidden(
            "an agent changes only customers whose interactions it holds or held;"
            " supervisors and admins change any"
        )


@router.get("", summary="Search customers by name, phone, email, chat identity, tier or stage")
async def search_customers(
    _: AnyUser,
    session: Session,
    request: Request,
    page: Pagination,
    q: Annotated[
        str | None, Query(max_length=200, description="Part of the name"), REFUSES_NUL
    ] = None,
    phone: Annotated[
        str | None, Query(max_length=64, examples=["13800138000"]), REFUSES_NUL
    ] = None,
    email: Annotated[str | None, Query(max_length=320), REFUSES_NUL] = None,
    chat_id: Annotated[str | None, Query(max_length=320), REFUSES_NUL] = None,
    account: Annotated[
        str | None, Query(max_length=64, description="An account number"), REFUSES_NUL
    ] = None,
    tier: Annotated[Tier | None, Query()] = None,
    lifecycle_stage: Annotated[LifecycleStage | None, Query()] = None,
) -> Page[CustomerOut]:
    where = service.CustomerFilter(
        text=q,
        phone=phone,
        email=email,
        chat_id=chat_id,
        account=account,
        tier=tier,
        lifecycle_stage=lifecycle_stage,
    )
    customers, total = await service.search_customers(
        session,
        where,
        region=request.app.state.settings.default_phone_region,
        limit=page.limit,
        offset=page.offset,
    )
    items = [CustomerOut.model_validate(c) for c in customers]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/lookup", summary="The one customer a contact point belongs to")
async def lookup_customer(
    _: AnyUser,
    session: Session,
    request: Request,
    kind: Annotated[ContactKind, Query()],
    value: Annotated[
        str,
        Query(min_length=1, max_length=320, examples=["+86 138 0013 8000"]),
        REFUSES_NUL,
    ],
) -> CustomerOut:
    region = request.app.state.settings.default_phone_region
    customer = await service.find_by_contact(session, kind, value, region=region)
    if customer is None:
        raise NotFound(f"no customer has the {kind.value} {value!r}")
    return CustomerOut.model_validate(customer)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a customer")
async def create_customer(
    body: CustomerCreate, principal: Staff, session: Session, request: Request
) -> CustomerOut:
    """Intake makes the customer of a first contact; by hand, supervisors and admins do."""
    customer = await service.create_customer(
        session, body, settings=request.app.state.settings, actor=principal.actor
    )
    return CustomerOut.model_validate(await service.get_customer(session, customer.id))


@router.post("/tiers/recompute", summary="Recompute computed tiers from customer value")
async def recompute_tiers(principal: Staff, session: Session, request: Request) -> TierRecomputeOut:
    ranked, changed = await service.recompute_tiers(
        session, request.app.state.settings.tier_cutoffs, actor=principal.actor
    )
    return TierRecomputeOut(customers_ranked=ranked, tiers_changed=changed)


@router.get("/{customer_id}", summary="One customer with contact points")
async def get_customer(customer_id: uuid.UUID, _: AnyUser, session: Session) -> CustomerOut:
    return CustomerOut.model_validate(await service.get_customer(session, customer_id))


@router.patch(
    "/{customer_id}",
    summary="Change a customer's profile, tier or stage (agents: name, language, notes)",
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> CustomerOut:
    await may_change(principal, customer_id, session, request, frozenset(body.model_fields_set))
    customer = await service.get_customer(session, customer_id)
    updated = await service.update_customer(
        session, customer, body, settings=request.app.state.settings, actor=principal.actor
    )
    return CustomerOut.model_validate(updated)


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a customer",
    responses={409: {"description": "The customer still has interactions"}},
)
async def delete_customer(customer_id: uuid.UUID, principal: Staff, session: Session) -> None:
    customer = await service.get_customer(session, customer_id)
    await service.delete_customer(session, customer, actor=principal.actor)


@router.post(
    "/{customer_id}/contact-points",
    status_code=status.HTTP_201_CREATED,
    summary="Add a phone number, email address or chat identity",
)
async def add_contact_point(
    customer_id: uuid.UUID,
    body: ContactPointIn,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> CustomerOut:
    await may_change(principal, customer_id, session, request)
    customer = await service.get_customer(session, customer_id)
    updated = await service.add_contact_point(
        session, customer, body, settings=request.app.state.settings, actor=principal.actor
    )
    return CustomerOut.model_validate(updated)


@router.delete("/{customer_id}/contact-points/{contact_point_id}", summary="Remove a contact point")
async def remove_contact_point(
    customer_id: uuid.UUID,
    contact_point_id: uuid.UUID,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> CustomerOut:
    await may_change(principal, customer_id, session, request)
    customer = await service.get_customer(session, customer_id)
    updated = await service.remove_contact_point(
        session, customer, contact_point_id, actor=principal.actor
    )
    return CustomerOut.model_validate(updated)

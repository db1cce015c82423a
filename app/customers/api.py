from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from app.auth.dependencies import AnyUser, Session, Staff
from app.auth.models import Role
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
    tier: Annotated[Tier | None, Query()] = None,
    lifecycle_stage: Annotated[LifecycleStage | None, Query()] = None,
) -> Page[CustomerOut]:
    where = service.CustomerFilter(
        text=q,
        phone=phone,
        email=email,
        chat_id=chat_id,
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
    body: CustomerCreate, principal: AnyUser, session: Session, request: Request
) -> CustomerOut:
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


@router.patch("/{customer_id}", summary="Change a customer's profile, tier or stage")
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> CustomerOut:
    if not principal.has_role(Role.supervisor, Role.admin):
        _refuse_business_fields(body)
    customer = await service.get_customer(session, customer_id)
    updated = await service.update_customer(
        session, customer, body, settings=request.app.state.settings, actor=principal.actor
    )
    return CustomerOut.model_validate(updated)


def _refuse_business_fields(body: CustomerUpdate) -> None:
    """Tier and value are the business's judgement of a customer: not an agent's to change."""
    sent = sorted(body.model_fields_set & {"tier", "tier_source", "value"})
    if sent:
        raise Forbidden(f"only supervisors and admins change {', '.join(sent)}")


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
    customer = await service.get_customer(session, customer_id)
    updated = await service.add_contact_point(
        session, customer, body, settings=request.app.state.settings, actor=principal.actor
    )
    return CustomerOut.model_validate(updated)


@router.delete("/{customer_id}/contact-points/{contact_point_id}", summary="Remove a contact point")
async def remove_contact_point(
    customer_id: uuid.UUID, contact_point_id: uuid.UUID, principal: AnyUser, session: Session
) -> CustomerOut:
    customer = await service.get_customer(session, customer_id)
    updated = await service.remove_contact_point(
        session, customer, contact_point_id, actor=principal.actor
    )
    return CustomerOut.model_validate(updated)

"""Who is calling, and what the IVR engine is told about them: the calling number, the customer
it (or an account number keyed in) names, their tier and language, and whether each queue the
flow names is open now.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import unit_of_work
from app.core.errors import InvalidField
from app.core.settings import Settings
from app.customers import service as customers
from app.customers.models import ContactKind, Customer
from app.customers.schemas import CustomerCreate
from app.customers.service import Known
from app.interactions.schemas import ContactIn
from app.ivr.actions import Language
from app.ivr.engine import CallFacts, CallState, HoursNow
from app.ivr.flow import CollectNode, Flow
from app.ivr.models import Call
from app.ivr.numbers import dialled
from app.queues.hours import status_at
from app.queues.models import Queue
from app.queues.service import calendar_of, hours_of

LANGUAGES = frozenset(language.value for language in Language)


def calling_number(caller: str, region: str) -> str | None:
    """The caller's number in E.164, or None (a hidden number, a SIP address, `client:`)."""
    try:
        return dialled(caller, region)
    except InvalidField:
        return None


async def customer_of(session: AsyncSession, customer_id: uuid.UUID | None) -> Known | None:
    if customer_id is None:
        return None
    customer = await session.get(Customer, customer_id)
    return None if customer is None else Known(customer.id, customer.tier, customer.language)


async def by_number(session: AsyncSession, number: str | None, region: str) -> Known | None:
    """The customer whose phone the calling number is, if any."""
    if number is None:
        return None
    return await customers.known_by_contact(session, ContactKind.phone, number, region=region)


async def queue_named(session: AsyncSession, name: str) -> Queue | None:
    return await session.scalar(select(Queue).where(func.lower(Queue.name) == name.lower()))


async def facts(session: AsyncSession, flow: Flow, call: Call, customer: Known | None) -> CallFacts:
    """What the engine is told: the caller's number, tier and language, and each queue the
    flow names open, closed or on holiday now."""
    moment = datetime.now(UTC)
    names = flow.queues_named()
    hours: dict[str, HoursNow] = {}
    if names:
        lowered = [name.lower() for name in names]
        found = await session.scalars(select(Queue).where(func.lower(Queue.name).in_(lowered)))
        for queue in found:
            status = status_at(hours_of(queue), calendar_of(queue), moment)
            hours[queue.name.lower()] = HoursNow(status.value)
    language = None
    if customer is not None and customer.language in LANGUAGES:
        language = Language(customer.language)
    return CallFacts(
        calling_number=call.calling_number,
        tier=None if customer is None else customer.tier,
        language=language,
        hours={name: hours.get(name.lower(), HoursNow.open) for name in names},
    )


async def identify_by_account(
    session: AsyncSession, call: Call, flow: Flow, state: CallState, region: str
) -> None:
    """An account number that passed its check names the customer who has it, if we know
    them: the rest of the call (and its interaction) is theirs."""
    if not state.account_verified:
        return
    for node in flow.nodes.values():
        if isinstance(node, CollectNode) and node.account:
            value = state.variables.get(node.variable)
            if value is None:
                continue
            customer = await customers.known_by_contact(
                session, ContactKind.account, value, region=region
            )
            if customer is not None:
                call.customer_id = customer.id
            return


async def who(
    sessions: async_sessionmaker[AsyncSession], call: Call, settings: Settings, actor: str
) -> dict[str, Any]:
    """Whom an interaction of the call is for (`InteractionCreate`'s fields): the customer
    known, or the calling number (intake makes a new customer who keeps it), or, for a caller
    who hid their number, a new customer of their own (the agent learns who they are), made
    in a transaction of its own so that intake, on its own connection, finds it."""
    if call.customer_id is not None:
        return {"customer_id": call.customer_id}
    if call.calling_number is not None:
        return {"contact": ContactIn(kind=ContactKind.phone, value=call.calling_number)}
    async with unit_of_work(sessions) as own:
        anonymous = await customers.create_customer(
            own, CustomerCreate(name="Caller with a hidden number"), settings=settings, actor=actor
        )
    call.customer_id = anonymous.id
    return {"customer_id": anonymous.id}

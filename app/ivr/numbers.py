"""Dialled numbers, each mapped to the flow its calls get; a number with none gets the default
flow. Numbers are kept in E.164, read with `phonenumbers` as app/customers/contact_points.py
reads a customer's. Services flush but never commit."""

from __future__ import annotations

import uuid

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidField, NotFound
from app.core.events import events_of
from app.ivr.models import IvrFlow, IvrNumber
from app.ivr.schemas import NumberOut


class NumberNotMapped(NotFound):
    code = "ivr_number_not_mapped"


class FlowNotFound(NotFound):
    code = "ivr_flow_not_found"


def dialled(raw: str, default_region: str | None) -> str:
    """`raw` in E.164, or a 422 on `number`."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidField("number", f"{raw!r} is not a phone number ({error})") from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidField("number", f"{raw!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


async def map_number(
    session: AsyncSession, raw: str, flow_id: uuid.UUID, *, default_region: str, actor: str
) -> NumberOut:
    """Calls to `raw` get `flow_id`'s published version from now on."""
    number = dialled(raw, default_region)
    flow = await session.get(IvrFlow, flow_id)
    if flow is None:
        raise FlowNotFound(f"no IVR flow with id {flow_id}")
    mapping = await session.get(IvrNumber, number, populate_existing=True)
    if mapping is None:
        mapping = IvrNumber(number=number, flow_id=flow.id, created_by=actor)
        session.add(mapping)
    else:
        mapping.flow_id = flow.id
    await session.flush()
    events_of(session).add(
        "ivr_number.mapped",
        subject_type="ivr_number",
        subject_id=number,
        actor=actor,
        payload={"flow_id": str(flow.id)},
    )
    await session.refresh(mapping)
    return _number_view(mapping, flow.name)


async def unmap_number(session: AsyncSession, raw: str, *, default_region: str, actor: str) -> None:
    """Calls to `raw` get the default flow from now on."""
    number = dialled(raw, default_region)
    mapping = await session.get(IvrNumber, number)
    if mapping is None:
        raise NumberNotMapped(f"{number} has no flow of its own")
    await session.delete(mapping)
    await session.flush()
    events_of(session).add(
        "ivr_number.unmapped",
        subject_type="ivr_number",
        subject_id=number,
        actor=actor,
        payload={"flow_id": str(mapping.flow_id)},
    )


async def list_numbers(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[NumberOut], int]:
    total = (await session.execute(select(func.count()).select_from(IvrNumber))).scalar_one()
    page = (
        select(IvrNumber, IvrFlow.name)
        .join(IvrFlow, IvrFlow.id == IvrNumber.flow_id)
        .order_by(IvrNumber.number)
        .limit(limit)
        .offset(offset)
    )
    rows = (await session.execute(page)).all()
    return [_number_view(mapping, name) for mapping, name in rows], total


def _number_view(mapping: IvrNumber, flow_name: str) -> NumberOut:
    return NumberOut(
        number=mapping.number,
        flow_id=mapping.flow_id,
        flow_name=flow_name,
        created_by=mapping.created_by,
        created_at=mapping.created_at,
        updated_at=mapping.updated_at,
    )

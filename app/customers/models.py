from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Numeric, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.models import Base, Timestamps, UUIDPrimaryKey


class Tier(StrEnum):
    platinum = "platinum"
    gold = "gold"
    iron = "iron"
    lead = "lead"


class TierSource(StrEnum):
    manual = "manual"
    computed = "computed"


class LifecycleStage(StrEnum):
    exploration = "exploration"
    formation = "formation"
    stability = "stability"
    decline = "decline"


class ContactKind(StrEnum):
    phone = "phone"
    email = "email"
    chat = "chat"
    # The customer's account number with us: what a caller keys in the IVR to be known.
    account = "account"


def _enum(enum: type[StrEnum], name: str) -> Enum:
    return Enum(enum, native_enum=False, length=16, create_constraint=True, name=name)


class Customer(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "customers"

    name: Mapped[str] = mapped_column(String(200), index=True)
    tier: Mapped[Tier] = mapped_column(_enum(Tier, "tier"))
    tier_source: Mapped[TierSource] = mapped_column(_enum(TierSource, "tier_source"))
    lifecycle_stage: Mapped[LifecycleStage] = mapped_column(
        _enum(LifecycleStage, "lifecycle_stage")
    )
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0), server_default="0")
    language: Mapped[str | None] = mapped_column(String(35))
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")

    contact_points: Mapped[list[ContactPoint]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        order_by="ContactPoint.created_at",
        lazy="raise",
    )


class ContactPoint(UUIDPrimaryKey, Base):
    """A phone number (E.164), email address (lower case) or chat identity of one customer."""

    __tablename__ = "contact_points"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_contact_points_kind_value"),)

    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ContactKind] = mapped_column(_enum(ContactKind, "contact_kind"))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=func.now())
    # Since when mail to this address bounces for good (a permanent bounce), shown to agents;
    # null while it works.
    failing_since: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(back_populates="contact_points", lazy="raise")

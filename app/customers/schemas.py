from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import REFUSES_NUL
from app.customers.models import ContactKind, LifecycleStage, Tier, TierSource

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), REFUSES_NUL
]
# A BCP 47 tag (zh-CN, en, sr-Latn-RS), no longer than its column.
Language = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
    ),
    REFUSES_NUL,
]
Value = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
RawContact = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320), REFUSES_NUL
]
Notes = Annotated[str, StringConstraints(max_length=10_000), REFUSES_NUL]

CUSTOMER_EXAMPLE: dict[str, Any] = {
    "name": "Li Wei",
    "tier": "gold",
    "lifecycle_stage": "stability",
    "value": "12500.00",
    "language": "zh-CN",
    "phones": ["+86 138 0013 8000"],
    "emails": ["li.wei@example.com"],
}


class CustomerCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CUSTOMER_EXAMPLE]})

    name: Name
    tier: Tier | None = Field(
        default=None, description="Set by hand; left out, the tier is computed from value."
    )
    lifecycle_stage: LifecycleStage = LifecycleStage.exploration
    value: Value = Decimal(0)
    language: Language | None = None
    notes: Notes = ""
    phones: list[RawContact] = Field(default_factory=list, max_length=20)
    emails: list[RawContact] = Field(default_factory=list, max_length=20)
    chat_ids: list[RawContact] = Field(default_factory=list, max_length=20)
    account_numbers: list[RawContact] = Field(
        default_factory=list,
        max_length=20,
        description="Account numbers a caller may key in the IVR to be known",
    )


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"tier": "platinum", "notes": "VIP"}]}
    )

    name: Name | None = None
    tier: Tier | None = Field(default=None, description="Setting a tier makes it manual.")
    tier_source: TierSource | None = Field(
        default=None, description="`computed` hands the tier back to the value-based computation."
    )
    lifecycle_stage: LifecycleStage | None = None
    value: Value | None = None
    language: Language | None = None
    notes: Notes | None = None


class ContactPointIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "phone", "value": "13800138000"}]}
    )

    kind: ContactKind
    value: RawContact


class ContactPointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: ContactKind
    value: str
    # Since when mail to it bounces for good (an email address); null while it works.
    failing_since: datetime | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    tier: Tier
    tier_source: TierSource
    lifecycle_stage: LifecycleStage
    value: Decimal
    language: str | None
    notes: str
    contact_points: list[ContactPointOut]
    created_at: datetime
    updated_at: datetime


class TierRecomputeOut(BaseModel):
    customers_ranked: int
    tiers_changed: int

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.inputs import REFUSES_NUL
from app.customers.contact_points import InvalidContactPoint, normalize_email


def _support_address(raw: str) -> str:
    """Lower case; no `+`: the plus-addressed forms carry reply tokens, and are its already."""
    try:
        address = normalize_email(raw)
    except InvalidContactPoint as error:
        raise ValueError(str(error)) from error
    if "+" in address.partition("@")[0]:
        raise ValueError("a support address has no '+': its plus forms carry reply tokens")
    return address


SupportAddress = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=320),
    AfterValidator(_support_address),
    REFUSES_NUL,
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), REFUSES_NUL]


class EmailAddressCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "address": "support@example.com",
                    "queue_id": "7d1f0c2e-9a4b-4a55-8c39-0f4d2d6e1a11",
                    "display_name": "Example support",
                }
            ]
        }
    )

    address: SupportAddress
    queue_id: uuid.UUID
    display_name: DisplayName = ""
    acknowledge: bool = False
    complaints: bool = Field(
        False, description="A new thread to this address raises a complaint (at step 1) too"
    )


class EmailAddressUpdate(BaseModel):
    queue_id: uuid.UUID | None = None
    display_name: DisplayName | None = None
    acknowledge: bool | None = None
    complaints: bool | None = None


class EmailAddressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    address: str
    queue_id: uuid.UUID
    display_name: str
    acknowledge: bool
    complaints: bool
    created_at: datetime
    updated_at: datetime


class MailTaken(BaseModel):
    """What an inbound message became (the SMTP listener's 250 says the same)."""

    message_id: uuid.UUID
    kind: str
    interaction_id: uuid.UUID | None
    duplicate: bool
    opened: bool
    linked_to: uuid.UUID | None

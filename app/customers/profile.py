"""A customer's profile as an agent sees it with an offer (the screen pop's `customer`).

The screen pop is read by the very statement that writes an offer (app/routing/offers.py), so
the profile comes as a select list (`COLUMNS`, over the customer `c`) and a builder for the row
that holds it (`from_row`); app/desk/screen_pop.py composes it with the rest of the pop.
Contact points come back as an array of rows rather than JSON: asyncpg decodes their columns
to Python values directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.customers.models import ContactKind, LifecycleStage, Tier


class ContactPoint(BaseModel):
    kind: ContactKind
    value: str
    # Since when mail to it bounces for good (an email address); null while it works.
    failing_since: datetime | None = None


class CustomerProfile(BaseModel):
    id: uuid.UUID
    name: str
    tier: Tier
    lifecycle_stage: LifecycleStage
    value: str  # the customer value, a decimal written as text (no float rounding)
    language: str | None
    notes: str
    contact_points: list[ContactPoint]


COLUMNS = """
    c.id AS profile_id, c.name AS profile_name, c.tier AS profile_tier,
    c.lifecycle_stage AS profile_lifecycle_stage, c.value AS profile_value,
    c.language AS profile_language, c.notes AS profile_notes,
    ARRAY(
        SELECT ROW(p.kind, p.value, p.failing_since) FROM contact_points p
        WHERE p.customer_id = c.id ORDER BY p.created_at
    ) AS profile_contact_points
"""


def from_row(row: Mapping[str, Any]) -> CustomerProfile:
    """The profile from a row holding `COLUMNS`."""
    return CustomerProfile(
        id=row["profile_id"],
        name=row["profile_name"],
        tier=row["profile_tier"],
        lifecycle_stage=row["profile_lifecycle_stage"],
        value=str(row["profile_value"]),
        language=row["profile_language"],
        notes=row["profile_notes"],
        contact_points=[
            ContactPoint(kind=kind, value=value, failing_since=failing_since)
            for kind, value, failing_since in row["profile_contact_points"]
        ],
    )

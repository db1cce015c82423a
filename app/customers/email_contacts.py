"""A customer's email addresses as the mail channel meets them: who writes from an address, and
an address whose mail bounces for good (shown to agents with the customer's contact points).

Plain SQL on a hot-path connection (app.core.pg): mail in reads them in its own transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from app.customers.contact_points import InvalidContactPoint, normalize_email

OWNER = "SELECT customer_id FROM contact_points WHERE kind = 'email' AND value = $1"
# Marked once: the first permanent bounce says since when it fails.
FAILING = """
    UPDATE contact_points SET failing_since = coalesce(failing_since, $2)
    WHERE kind = 'email' AND value = $1
    RETURNING customer_id
"""


def normalized(address: str) -> str | None:
    """The address as a contact point is stored, or None when it is not one."""
    try:
        return normalize_email(address)
    except InvalidContactPoint:
        return None


async def customer_writing_from(connection: asyncpg.Connection, address: str) -> uuid.UUID | None:
    """The customer whose contact point the address is, if any."""
    value = normalized(address)
    if value is None:
        return None
    customer_id: uuid.UUID | None = await connection.fetchval(OWNER, value)
    return customer_id


async def mark_failing(
    connection: asyncpg.Connection, address: str, since: datetime
) -> uuid.UUID | None:
    """Mark the address as failing (a permanent bounce); the customer it is theirs, if any."""
    value = normalized(address)
    if value is None:
        return None
    customer_id: uuid.UUID | None = await connection.fetchval(FAILING, value, since)
    return customer_id

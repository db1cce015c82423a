"""Visitors: someone at a site's widget, known by the token their browser keeps.

A token is `cvt_` and 32 random bytes; only its sha256 is stored, so the table gives no one a
way into a visitor's chat. A hello with a token this site does not know (or none) makes a new
visitor; one with a signed identity names the customer at once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

TOKEN_PREFIX = "cvt_"  # noqa: S105 - a prefix, no secret

BY_HASH = "SELECT id, customer_id, name FROM chat_visitors WHERE token_hash = $1 AND site_id = $2"
NEW_VISITOR = """
    INSERT INTO chat_visitors (id, site_id, token_hash, customer_id, name, created_at)
    VALUES ($1, $2, $3, $4, $5, now())
"""
KNOWN_AS = (
    "UPDATE chat_visitors SET customer_id = $2, name = coalesce(nullif($3, ''), name) WHERE id = $1"
)


@dataclass(frozen=True, slots=True)
class Visitor:
    id: uuid.UUID
    token: str  # the browser's, to give back in `welcome` (a new one for a new visitor)
    customer_id: uuid.UUID | None
    name: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def visitor_for(
    connection: asyncpg.Connection, site_id: uuid.UUID, token: str | None, name: str
) -> Visitor:
    """The visitor a token stands for at this site, or a new one (with a new token)."""
    if token:
        row = await connection.fetchrow(BY_HASH, token_hash(token), site_id)
        if row is not None:
            return Visitor(row["id"], token, row["customer_id"], name or row["name"])
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    visitor_id = uuid.uuid4()
    await connection.execute(NEW_VISITOR, visitor_id, site_id, token_hash(token), None, name)
    return Visitor(visitor_id, token, None, name)


async def known_as(
    connection: asyncpg.Connection, visitor: Visitor, customer_id: uuid.UUID
) -> Visitor:
    """The visitor is this customer from now on (signed in, or made by their first chat)."""
    await connection.execute(KNOWN_AS, visitor.id, customer_id, visitor.name)
    return Visitor(visitor.id, visitor.token, customer_id, visitor.name)

"""Visitors: someone at a site's widget, known by the token their browser keeps.

A token is `cvt_` and 32 random bytes; only its sha256 is stored, so the table gives no one a
way into a visitor's chat. A hello with a token this site does not know (or none) makes a new
visitor, kept only once they write: the widget opens a socket on every page a site shows it on,
and a page view is not a visitor worth a row.
"""

from __future__ import annotations

import dataclasses
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
    ON CONFLICT (token_hash) DO NOTHING
"""
KNOWN_AS = (
    "UPDATE chat_visitors SET customer_id = $2, name = coalesce(nullif($3, ''), name) WHERE id = $1"
)


@dataclass(frozen=True, slots=True)
class Visitor:
    id: uuid.UUID
    site_id: uuid.UUID
    token: str  # the browser's, to give back in `welcome` (a new one for a new visitor)
    customer_id: uuid.UUID | None
    name: str
    kept: bool  # whether its row is written (once they first write)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def visitor_for(
    connection: asyncpg.Connection, site_id: uuid.UUID, token: str | None, name: str
) -> Visitor:
    """The visitor a token stands for at this site, or a new one (with a new token), not kept
    yet (`keep`)."""
    if token:
        row = await connection.fetchrow(BY_HASH, token_hash(token), site_id)
        if row is not None:
            name = name or row["name"]
            return Visitor(row["id"], site_id, token, row["customer_id"], name, kept=True)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return Visitor(uuid.uuid4(), site_id, token, None, name, kept=False)


async def keep(connection: asyncpg.Connection, visitor: Visitor) -> Visitor:
    """The visitor's row written, if it was not: they are about to write."""
    if not visitor.kept:
        await connection.execute(
            NEW_VISITOR, visitor.id, visitor.site_id, token_hash(visitor.token), None, visitor.name
        )
    return dataclasses.replace(visitor, kept=True)


async def known_as(
    connection: asyncpg.Connection, visitor: Visitor, customer_id: uuid.UUID
) -> Visitor:
    """The visitor is this customer from now on (signed in, or made by their first chat)."""
    await connection.execute(KNOWN_AS, visitor.id, customer_id, visitor.name)
    return dataclasses.replace(visitor, customer_id=customer_id)

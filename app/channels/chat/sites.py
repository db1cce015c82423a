"""A chat site as the customer's socket needs it: which site a socket opens, whether its page
may open it (`Origin`), and whether a signed-in customer's signature is the site's.

Read on the hot pool when a socket opens (one statement); the admin API (api.py) keeps them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

SITE = """
    SELECT s.id, s.name, s.queue_id, s.identity_secret, s.allowed_origins, s.resume_seconds,
           s.quiet_close_seconds, s.messages_per_minute, s.chats_per_minute
    FROM chat_sites s WHERE s.id = $1
"""


@dataclass(frozen=True, slots=True)
class Site:
    id: uuid.UUID
    name: str
    queue_id: uuid.UUID
    identity_secret: str
    allowed_origins: tuple[str, ...]
    resume_seconds: int
    quiet_close_seconds: int
    messages_per_minute: int
    chats_per_minute: int

    def allows(self, origin: str | None) -> bool:
        """Whether a page of `origin` may open this site's chat: one of its origins exactly
        (scheme, host and port; browsers send it without a path). A socket with no Origin is
        not a browser's page, and is refused too."""
        return origin is not None and origin.rstrip("/").lower() in self.allowed_origins

    def signs(self, customer: str, signature: str) -> bool:
        """Whether `signature` is this site's HMAC-SHA256 of `customer` (hex), compared in
        constant time."""
        return hmac.compare_digest(
            identity_signature(self.identity_secret, customer), signature.lower()
        )

    def contact_of(self, customer: str) -> str:
        """The contact point (kind `chat`) a signed-in customer of this site is known by."""
        return f"{self.name}:{customer}"


def identity_signature(secret: str, customer: str) -> str:
    """What a host site's server computes for its logged-in customer: the hex HMAC-SHA256 of
    their id, keyed with the site's secret (docs/channels.md shows it in a few languages)."""
    return hmac.new(secret.encode(), customer.encode(), hashlib.sha256).hexdigest()


def new_identity_secret() -> str:
    return secrets.token_hex(32)


def normalized_origin(origin: str) -> str:
    """An origin as a browser sends it: lower case, no trailing slash."""
    return origin.strip().rstrip("/").lower()


async def read_site(connection: asyncpg.Connection, site_id: uuid.UUID) -> Site | None:
    row = await connection.fetchrow(SITE, site_id)
    if row is None:
        return None
    return Site(
        id=row["id"],
        name=row["name"],
        queue_id=row["queue_id"],
        identity_secret=row["identity_secret"],
        allowed_origins=tuple(row["allowed_origins"]),
        resume_seconds=row["resume_seconds"],
        quiet_close_seconds=row["quiet_close_seconds"],
        messages_per_minute=row["messages_per_minute"],
        chats_per_minute=row["chats_per_minute"],
    )

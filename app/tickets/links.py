"""The link a step-4 reply carries, through which the customer answers it (accepts or not, and
scores it) once.

The token is 32 random bytes (unguessable; a forged one matches nothing) and is kept only as
its sha256, so a copy of the database opens no form. Rather than a signature over the complaint
and an expiry: a link must also work once and give way to the next reply's, which needs a row
anyway, and a row with a random token needs no key to keep or rotate. A link expires when the
reply is deemed accepted (the policy's days of silence), and a newer reply's link replaces it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.tickets.models import AnswerLink

PATH = "/complaints/answer/"  # the form's page, with the token after it


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(
    session: AsyncSession, complaint_id: uuid.UUID, *, now: datetime, expires_at: datetime
) -> str:
    """A new link's token for the complaint's latest reply; earlier unused links stop working."""
    await session.execute(
        update(AnswerLink)
        .where(AnswerLink.complaint_id == complaint_id, AnswerLink.used_at.is_(None))
        .values(expires_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AnswerLink(
            complaint_id=complaint_id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token


def url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}{PATH}{token}"


async def find(session: AsyncSession, token: str, *, lock: bool = False) -> AnswerLink | None:
    """The link of `token`, used or not, expired or not (the caller says which); None: forged."""
    query = select(AnswerLink).where(AnswerLink.token_hash == token_hash(token))
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)

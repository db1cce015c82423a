"""The append-only event log: one row per state change, written in the change's own transaction.

A trigger (see the migration) sends a NOTIFY on `cc_events` with the new id, which PostgreSQL
delivers only at commit, so listeners never see an event whose change was rolled back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, String, func, insert
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, utcnow

NOTIFY_CHANNEL = "cc_events"
SYSTEM_ACTOR = "system"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "subject_type", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(96))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


async def record_event(
    session: AsyncSession,
    kind: str,
    *,
    subject_type: str,
    subject_id: object,
    actor: str,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append an event to the session's transaction; it becomes visible only with the change.

    A plain INSERT rather than `session.add`: events are never read back in the transaction
    that writes them, and the ORM's bookkeeping per object is most of the cost on hot paths.
    """
    await session.execute(
        insert(Event).values(
            kind=kind,
            subject_type=subject_type,
            subject_id=str(subject_id),
            actor=actor,
            payload=payload or {},
        )
    )

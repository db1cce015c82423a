"""IVR flows with immutable numbered versions, and the dialled numbers mapped to them.

A version's document never changes once saved; only its state moves: draft → published →
retired → published again (a roll back). The database holds "at most one published version
per flow" and "at most one default flow" itself, with partial unique indexes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Index

from app.core.models import Base, Timestamps, UUIDPrimaryKey, utcnow


class VersionState(StrEnum):
    draft = "draft"  # saved, never published
    published = "published"  # the one new calls get
    retired = "retired"  # published once, then replaced; may be published again


class IvrFlow(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "ivr_flows"
    __table_args__ = (
        Index("uq_ivr_flows_name_lower", func.lower(text("name")), unique=True),
        Index(
            "uq_ivr_flows_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    is_default: Mapped[bool] = mapped_column(default=False, server_default="false")
    created_by: Mapped[str] = mapped_column(String(96))


class IvrFlowVersion(Base):
    __tablename__ = "ivr_flow_versions"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        Index(
            "uq_ivr_flow_versions_one_published",
            "flow_id",
            unique=True,
            postgresql_where=text("state = 'published'"),
        ),
    )

    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ivr_flows.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[VersionState] = mapped_column(
        Enum(
            VersionState,
            native_enum=False,
            length=16,
            create_constraint=True,
            name="version_state",
        )
    )
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    published_at: Mapped[datetime | None]


class IvrNumber(Timestamps, Base):
    """A dialled number (E.164) and the flow its calls get."""

    __tablename__ = "ivr_numbers"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ivr_flows.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[str] = mapped_column(String(96))

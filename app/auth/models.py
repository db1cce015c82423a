from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, Timestamps, UUIDPrimaryKey


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    agent = "agent"


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_lower", func.lower(text("username")), unique=True),)

    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, create_constraint=True, name="role")
    )
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")


class AccessToken(UUIDPrimaryKey, Base):
    """A login session: the bearer secret is stored only as its keyed digest."""

    __tablename__ = "access_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]


class GatewayKey(UUIDPrimaryKey, Base):
    """An API key for a machine client (telephony gateway, mail relay), shown once at creation."""

    __tablename__ = "gateway_keys"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class SocketTicket(Base):
    """A one-use pass to open a socket (the agent's desk), asked for over HTTP with a login
    token and valid for seconds, so that the long-lived token never travels in a URL (URLs end
    up in access logs and proxies' logs). Stored, like tokens, only as its keyed digest, in
    PostgreSQL, so a ticket issued by one replica opens a socket on any other."""

    __tablename__ = "socket_tickets"

    ticket_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)

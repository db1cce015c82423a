from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.models import Role
from app.core.inputs import REFUSES_NUL

Username = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$"
    ),
    REFUSES_NUL,
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=200), REFUSES_NUL]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), REFUSES_NUL
]
GatewayKeyName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), REFUSES_NUL
]


class LoginIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "admin", "password": "s3cret-pass"}]}
    )

    username: Annotated[str, StringConstraints(min_length=1, max_length=64), REFUSES_NUL]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200), REFUSES_NUL]


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_at: datetime
    user: UserOut


class SocketTicketOut(BaseModel):
    """A one-use ticket: open the socket with `?ticket=` before `expires_at`."""

    ticket: str
    expires_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"username": "sam", "display_name": "Sam Lee", "role": "supervisor"}]
        }
    )

    username: Username
    display_name: DisplayName
    role: Role
    password: Password | None = Field(
        default=None, description="Left out, a password is generated and returned once."
    )


class UserUpdate(BaseModel):
    display_name: DisplayName | None = None
    role: Role | None = None
    password: Password | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    is_active: bool
    created_at: datetime


class UserCreated(UserOut):
    initial_password: str | None = Field(
        default=None, description="Only when the server generated the password; shown this once."
    )


class GatewayKeyCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "sip-gateway-1"}]})

    name: GatewayKeyName


class GatewayKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class GatewayKeyCreated(GatewayKeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a digest.")

"""Who is calling: a user with a role, or a gateway key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from app.auth.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["user", "gateway"]
    id: uuid.UUID
    name: str
    role: Role | None = None

    @property
    def actor(self) -> str:
        """How the event log names this caller."""
        return f"{self.kind}:{self.id}"

    @property
    def who(self) -> str:
        """What the permission rules know the caller as: its role, or "gateway" for a key."""
        return self.kind if self.role is None else self.role.value

    def has_role(self, *roles: Role) -> bool:
        return self.role is not None and self.role in roles

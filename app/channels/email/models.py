from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, Timestamps, UUIDPrimaryKey


class EmailAddress(UUIDPrimaryKey, Timestamps, Base):
    """A support address mail comes in to (lower case), and the queue its mail goes to. Its
    plus-addressed forms (`support+<reply token>@`) are its too."""

    __tablename__ = "email_addresses"

    address: Mapped[str] = mapped_column(String(320), unique=True)
    queue_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("queues.id", ondelete="RESTRICT"))
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Whether a new thread to this address is answered with an acknowledgement (mail out).
    acknowledge: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Whether a new thread to this address is a complaint as well (docs/complaints.md).
    complaints: Mapped[bool] = mapped_column(default=False, server_default="false")

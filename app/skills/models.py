from __future__ import annotations

from sqlalchemy import String, func, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Index

from app.core.models import Base, Timestamps, UUIDPrimaryKey


class Skill(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "skills"
    __table_args__ = (Index("uq_skills_name_lower", func.lower(text("name")), unique=True),)

    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")

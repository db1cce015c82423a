"""IVR flows: immutable numbered versions (draft, published, retired) and dialled numbers

A flow's versions keep their documents as saved; publishing moves states only. The database
holds "at most one published version per flow" and "at most one default flow" with partial
unique indexes (app/ivr/models.py). A dialled number (E.164) maps to one flow; numbers with
none get the default flow.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 13:28:56
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ivr_flows",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_flows")),
    )
    op.create_index(
        "uq_ivr_flows_name_lower", "ivr_flows", [sa.literal_column("lower(name)")], unique=True
    )
    op.create_index(
        "uq_ivr_flows_one_default",
        "ivr_flows",
        ["is_default"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "ivr_flow_versions",
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "published",
                "retired",
                name="version_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_ivr_flow_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["ivr_flows.id"],
            name=op.f("fk_ivr_flow_versions_flow_id_ivr_flows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flow_id", "version", name=op.f("pk_ivr_flow_versions")),
    )
    op.create_index(
        "uq_ivr_flow_versions_one_published",
        "ivr_flow_versions",
        ["flow_id"],
        unique=True,
        postgresql_where=sa.text("state = 'published'"),
    )
    op.create_table(
        "ivr_numbers",
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["ivr_flows.id"],
            name=op.f("fk_ivr_numbers_flow_id_ivr_flows"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_ivr_numbers")),
    )
    op.create_index(op.f("ix_ivr_numbers_flow_id"), "ivr_numbers", ["flow_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ivr_numbers_flow_id"), table_name="ivr_numbers")
    op.drop_table("ivr_numbers")
    op.drop_index(
        "uq_ivr_flow_versions_one_published",
        table_name="ivr_flow_versions",
        postgresql_where=sa.text("state = 'published'"),
    )
    op.drop_table("ivr_flow_versions")
    op.drop_index(
        "uq_ivr_flows_one_default", table_name="ivr_flows", postgresql_where=sa.text("is_default")
    )
    op.drop_index("uq_ivr_flows_name_lower", table_name="ivr_flows")
    op.drop_table("ivr_flows")

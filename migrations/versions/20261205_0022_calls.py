"""calls: every live call's record; queues: how often a waiting caller hears the figures;
contact points: account numbers (a caller keys one in the IVR to be known)

A call is written when its gateway first tells of it, with the flow version it keeps, the IVR
engine's state between events and its last answer (a retry gets it again); it becomes an
interaction only at enqueue, and one that ends inside the IVR stays a call record with its
path, for containment figures (app/ivr/calls.py).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTACT_KINDS_BEFORE = ("phone", "email", "chat")
CONTACT_KINDS = (*CONTACT_KINDS_BEFORE, "account")


def _contact_kinds(kinds: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_contact_points_contact_kind"), "contact_points", type_="check")
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    op.create_check_constraint(
        op.f("ck_contact_points_contact_kind"), "contact_points", f"kind IN ({listed})"
    )


def upgrade() -> None:
    _contact_kinds(CONTACT_KINDS)
    op.add_column(
        "queues",
        sa.Column("announce_every_seconds", sa.Integer(), server_default="60", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_queues_announce_every_range"),
        "queues",
        "announce_every_seconds BETWEEN 10 AND 600",
    )
    op.create_table(
        "calls",
        sa.Column(
            "gateway",
            sa.Enum(
                "twilio",
                "generic",
                name="gateway",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("call_ref", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=255), nullable=False),
        sa.Column("calling_number", sa.String(length=16), nullable=True),
        sa.Column("dialled", sa.String(length=255), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column(
            "phase",
            sa.Enum(
                "ivr",
                "queued",
                "connecting",
                "talking",
                "ended",
                name="call_phase",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("engine_state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("turn", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "last_answer",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "deliveries",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("learned", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("interaction_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("callback_key", sa.String(length=1), nullable=True),
        sa.Column("announced_position", sa.Integer(), nullable=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_cause", sa.String(length=32), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("turn >= 0", name=op.f("ck_calls_turn_non_negative")),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_calls_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_calls_customer_id_customers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["ivr_flows.id"],
            name=op.f("fk_calls_flow_id_ivr_flows"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_calls_interaction_id_interactions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("gateway", "call_ref", name="uq_calls_gateway_call_ref"),
    )
    op.create_index(op.f("ix_calls_customer_id"), "calls", ["customer_id"], unique=False)
    op.create_index("ix_calls_started_at", "calls", ["started_at"], unique=False)
    op.create_index(
        "ix_calls_interaction_id",
        "calls",
        ["interaction_id"],
        unique=False,
        postgresql_where=sa.text("interaction_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("calls")
    op.drop_constraint(op.f("ck_queues_announce_every_range"), "queues", type_="check")
    op.drop_column("queues", "announce_every_seconds")
    op.execute("DELETE FROM contact_points WHERE kind = 'account'")
    _contact_kinds(CONTACT_KINDS_BEFORE)

"""complaints: the five-step workflow's records, visits, deadlines, notes, corrective actions,
answer links, categories and the deadline policy; and a queue's "complaint owner first"

A complaint's history is the event log; these tables hold its present state and what reports
read quickly (docs/complaints.md). The policy has no row until an admin edits it: until then the
code's default policy (app/tickets/deadlines.py, DEFAULT_POLICY) holds.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_categories",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
        sa.CheckConstraint(
            "kind IN ('complaint', 'root_cause')", name=op.f("ck_complaint_categories_kind_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_categories")),
        sa.UniqueConstraint("kind", "name", name="uq_complaint_categories_kind_name"),
    )
    op.create_table(
        "complaint_numbers",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_complaint_numbers")),
    )
    op.create_table(
        "complaint_policy",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("durations", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reopen_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("answer_days", sa.Integer(), server_default="10", nullable=False),
        sa.Column("warn_minutes", sa.Integer(), server_default="60", nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "answer_days BETWEEN 1 AND 60", name=op.f("ck_complaint_policy_answer_days_range")
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_complaint_policy_one_row")),
        sa.CheckConstraint(
            "reopen_days BETWEEN 0 AND 365", name=op.f("ck_complaint_policy_reopen_days_range")
        ),
        sa.CheckConstraint(
            "warn_minutes BETWEEN 1 AND 10080", name=op.f("ck_complaint_policy_warn_minutes_range")
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_complaint_policy_queue_id_queues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_policy")),
    )
    op.create_table(
        "complaints",
        sa.Column("reference", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("queue_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source_interaction_id", sa.Uuid(), nullable=True),
        sa.Column("raised_by", sa.String(length=96), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("owner_agent_id", sa.Uuid(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("original_message", sa.Text(), nullable=False),
        sa.Column("remedy_sought", sa.Text(), server_default="", nullable=False),
        sa.Column("acknowledgement", sa.Text(), server_default="", nullable=False),
        sa.Column("acknowledged_by", sa.String(length=16), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("rejected_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("assessment", sa.Text(), server_default="", nullable=False),
        sa.Column("reply", sa.Text(), server_default="", nullable=False),
        sa.Column("actions_taken", sa.Text(), server_default="", nullable=False),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), server_default="", nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=True),
        sa.Column("satisfaction", sa.SmallInteger(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("root_cause_id", sa.Uuid(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean(), server_default=sa.text("false"), nullable=False),
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
        sa.CheckConstraint(
            "acknowledged_by IS NULL OR acknowledged_by IN ('mail', 'chat', 'read_out')",
            name=op.f("ck_complaints_acknowledged_by_known"),
        ),
        sa.CheckConstraint(
            "channel IN ('voice', 'email', 'chat', 'callback', 'letter', 'in_person', 'social', 'other')",
            name=op.f("ck_complaints_channel_known"),
        ),
        sa.CheckConstraint(
            "severity IN ('minor', 'major', 'critical')", name=op.f("ck_complaints_severity_known")
        ),
        sa.CheckConstraint(
            "step IN ('intake', 'accept', 'investigate', 'reply', 'improve', 'closed', 'rejected')",
            name=op.f("ck_complaints_step_known"),
        ),
        sa.CheckConstraint(
            "tier IN ('platinum', 'gold', 'iron', 'lead')", name=op.f("ck_complaints_tier_known")
        ),
        sa.CheckConstraint(
            "satisfaction BETWEEN 1 AND 5", name=op.f("ck_complaints_satisfaction_range")
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["complaint_categories.id"],
            name=op.f("fk_complaints_category_id_complaint_categories"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_complaints_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_agent_id"],
            ["agents.id"],
            name=op.f("fk_complaints_owner_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["queue_id"],
            ["queues.id"],
            name=op.f("fk_complaints_queue_id_queues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["root_cause_id"],
            ["complaint_categories.id"],
            name=op.f("fk_complaints_root_cause_id_complaint_categories"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["source_interaction_id"],
            ["interactions.id"],
            name=op.f("fk_complaints_source_interaction_id_interactions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("reference", name=op.f("uq_complaints_reference")),
    )
    op.create_index(
        "ix_complaints_customer_open",
        "complaints",
        ["customer_id"],
        unique=False,
        postgresql_where=sa.text("step NOT IN ('closed', 'rejected')"),
    )
    op.create_index(
        "ix_complaints_owner_open",
        "complaints",
        ["owner_agent_id"],
        unique=False,
        postgresql_where=sa.text("step NOT IN ('closed', 'rejected')"),
    )
    op.create_index("ix_complaints_raised_at", "complaints", ["raised_at"], unique=False)
    op.create_table(
        "complaint_answer_links",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_answer_links_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_answer_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_complaint_answer_links_token_hash")),
    )
    op.create_table(
        "complaint_deadlines",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("clock", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "clock IN ('accept', 'investigate', 'reply', 'improve')",
            name=op.f("ck_complaint_deadlines_clock_known"),
        ),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_deadlines_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_deadlines")),
    )
    op.create_index(
        "ix_complaint_deadlines_complaint",
        "complaint_deadlines",
        ["complaint_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_complaint_deadlines_running",
        "complaint_deadlines",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("ended_at IS NULL AND paused_since IS NULL"),
    )
    op.create_table(
        "complaint_interactions",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("interaction_id", sa.Uuid(), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.String(length=96), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_interactions_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_complaint_interactions_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "complaint_id", "interaction_id", name=op.f("pk_complaint_interactions")
        ),
    )
    op.create_index(
        "ix_complaint_interactions_interaction",
        "complaint_interactions",
        ["interaction_id"],
        unique=False,
    )
    op.create_table(
        "complaint_notes",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("author", sa.String(length=96), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_notes_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_notes")),
    )
    op.create_index(
        "ix_complaint_notes_complaint",
        "complaint_notes",
        ["complaint_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "complaint_visits",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "step IN ('intake', 'accept', 'investigate', 'reply', 'improve', 'closed', 'rejected')",
            name=op.f("ck_complaint_visits_step_known"),
        ),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_visits_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_visits")),
    )
    op.create_index(
        "ix_complaint_visits_complaint", "complaint_visits", ["complaint_id", "id"], unique=False
    )
    op.create_index("ix_complaint_visits_entered", "complaint_visits", ["entered_at"], unique=False)
    op.create_table(
        "corrective_actions",
        sa.Column("complaint_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=96), nullable=True),
        sa.Column("done_note", sa.Text(), server_default="", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_corrective_actions_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrective_actions")),
    )
    op.create_index(
        "ix_corrective_actions_complaint", "corrective_actions", ["complaint_id"], unique=False
    )
    op.create_index(
        "ix_corrective_actions_open",
        "corrective_actions",
        ["due_on"],
        unique=False,
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.add_column(
        "queues",
        sa.Column("complaint_owner_first", sa.Boolean(), server_default="false", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("queues", "complaint_owner_first")
    op.drop_index(
        "ix_corrective_actions_open",
        table_name="corrective_actions",
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.drop_index("ix_corrective_actions_complaint", table_name="corrective_actions")
    op.drop_table("corrective_actions")
    op.drop_index("ix_complaint_visits_entered", table_name="complaint_visits")
    op.drop_index("ix_complaint_visits_complaint", table_name="complaint_visits")
    op.drop_table("complaint_visits")
    op.drop_index("ix_complaint_notes_complaint", table_name="complaint_notes")
    op.drop_table("complaint_notes")
    op.drop_index("ix_complaint_interactions_interaction", table_name="complaint_interactions")
    op.drop_table("complaint_interactions")
    op.drop_index(
        "ix_complaint_deadlines_running",
        table_name="complaint_deadlines",
        postgresql_where=sa.text("ended_at IS NULL AND paused_since IS NULL"),
    )
    op.drop_index("ix_complaint_deadlines_complaint", table_name="complaint_deadlines")
    op.drop_table("complaint_deadlines")
    op.drop_table("complaint_answer_links")
    op.drop_index("ix_complaints_raised_at", table_name="complaints")
    op.drop_index(
        "ix_complaints_owner_open",
        table_name="complaints",
        postgresql_where=sa.text("step NOT IN ('closed', 'rejected')"),
    )
    op.drop_index(
        "ix_complaints_customer_open",
        table_name="complaints",
        postgresql_where=sa.text("step NOT IN ('closed', 'rejected')"),
    )
    op.drop_table("complaints")
    op.drop_table("complaint_policy")
    op.drop_table("complaint_numbers")
    op.drop_table("complaint_categories")

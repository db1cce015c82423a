"""replicas: each server process's lease, and which lease a desk and an offer went through

A replica holds a lease row it renews well inside its time to live; when the lease lapses (the
process was killed, paused or cut off from the database) the desks connected to it leave routing
at once (app/core/lease.py, app/routing/sweeper.py). `agent_presence.replica_id` says which
replica holds an agent's desk, and `offers.replica_id` which replica's desk an offer was written
for: the database itself shows that no offer went to a desk whose replica's lease had lapsed.

Neither column is a foreign key: a lease id is a token the process makes before its row is
written (it serves desks while the database is away), and an offer keeps its lease id as
history after old lapsed leases are pruned.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("desks_released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
    )
    op.add_column("agent_presence", sa.Column("replica_id", sa.Uuid(), nullable=True))
    op.add_column("offers", sa.Column("replica_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("offers", "replica_id")
    op.drop_column("agent_presence", "replica_id")
    op.drop_table("replicas")

"""the rules of the definitions files that depend on tables: gone before the tables go

`interactions_arrive` (app/interactions/arrival.sql) returns the `interactions` row type, and the
view `queues_settings_version` (app/queues/settings_version.sql) reads `queues`: PostgreSQL
keeps a table with such dependents from being dropped. No migration created them (the files
do, after every upgrade: app/core/definitions.py), so this one only drops them on the way down,
before the migrations below it drop the tables; `auth_caller` goes with them, as no release
before this one calls it. Upgrading creates nothing: the files do that once the upgrade is at
head.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 11:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing: the definitions files create these after every upgrade to head."""


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS queues_settings_version")
    op.execute("DROP FUNCTION IF EXISTS interactions_arrive")
    op.execute("DROP FUNCTION IF EXISTS auth_caller")

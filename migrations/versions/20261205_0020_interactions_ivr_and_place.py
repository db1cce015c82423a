"""interactions: what the IVR learned, and when routing may offer one (a callback's place)

`ivr` keeps what the IVR learned about a call (its path, keys, collected digits, whether the
account was verified, self-service done) for the agent's screen pop; `not_before` holds a
voicemail's callback back until its queue opens. A callback that replaces a waiting call keeps
that call's `waiting_since`, which `interactions_arrive` now takes as an argument.

`interactions_arrive` (app/interactions/arrival.sql) takes three arguments more (the IVR's
document, the place, the not-before time): `CREATE OR REPLACE` cannot change a signature, so
the old one is dropped here and the file creates the new one once the upgrade is at head
(app/core/definitions.py). On the way down the new one goes, before the columns it writes;
the older release's own upgrade creates its own.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARRIVE = (
    "interactions_arrive(uuid, text, text, uuid, uuid, integer, jsonb, text, text, timestamptz,"
    " text, jsonb, boolean"
)
OLD_ARRIVE = f"{ARRIVE})"
NEW_ARRIVE = f"{ARRIVE}, jsonb, timestamptz, timestamptz)"


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {OLD_ARRIVE}")
    op.add_column(
        "interactions",
        sa.Column("ivr", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "interactions", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {NEW_ARRIVE}")
    op.drop_column("interactions", "not_before")
    op.drop_column("interactions", "ivr")

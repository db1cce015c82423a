"""agents: the voice endpoint an agent's leg of a call rings (a softphone, a SIP URI, a number)

When an agent accepts a call's offer, the gateway is told to bridge the caller to this endpoint
(app/agents/voice.py reads its shape; app/ivr/twiml.py renders it).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("voice_endpoint", sa.String(length=255), nullable=True))


def downgrade() -> None:
    op.drop_column("agents", "voice_endpoint")

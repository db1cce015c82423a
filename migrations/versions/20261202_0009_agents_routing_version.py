"""agents.routing_version: moves whenever routing could count on the row wrongly

Offers are written against an agent row as routing last read it (a matcher pass, or an arrival
offered at once: app/routing/arrivals.py), and land only while the row is unchanged since.
`updated_at` served as that version, but it also moves when an agent accepts its first offer
(available to busy), which changes nothing routing counts on: at 50 interactions a second most
arrivals refused for a moved row were refused for that alone. `routing_version` moves with what
does matter: every offer written (its writers move it themselves, under the row lock), and,
through the trigger below, capacity, skills (`skills_version`), idle time, and any change of
state other than between available and busy (wrap-up takes no call; away and offline take
nothing). A load that only went down (a completion) is left alone: counting on a higher load
is never over capacity.

The current function and trigger are in app/routing/agent_version.sql (app/core/definitions.py),
reapplied after every upgrade: this is their history, not the rule.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVE = """
CREATE FUNCTION agents_move_routing_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.routing_version := OLD.routing_version + 1;
    RETURN NEW;
END;
$$
"""

TRIGGER = """
CREATE TRIGGER agents_routing_version BEFORE UPDATE ON agents FOR EACH ROW
WHEN (
    OLD.capacity_voice IS DISTINCT FROM NEW.capacity_voice
    OR OLD.capacity_chat IS DISTINCT FROM NEW.capacity_chat
    OR OLD.capacity_email IS DISTINCT FROM NEW.capacity_email
    OR OLD.skills_version IS DISTINCT FROM NEW.skills_version
    OR OLD.idle_since IS DISTINCT FROM NEW.idle_since
    OR (OLD.state IS DISTINCT FROM NEW.state
        AND NOT (OLD.state IN ('available', 'busy') AND NEW.state IN ('available', 'busy')))
)
EXECUTE FUNCTION agents_move_routing_version()
"""


def upgrade() -> None:
    op.add_column(
        "agents",
        sa.Column("routing_version", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute(MOVE)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER agents_routing_version ON agents")
    op.execute("DROP FUNCTION agents_move_routing_version()")
    op.drop_column("agents", "routing_version")
